"""Inference backends, chosen by name from an explicit table and imported only when used.

The table :data:`BACKENDS` maps a backend name to ``"module:Class"``; nothing registers itself
on import, so the set of backends never depends on import order. Each backend module keeps its
config class beside its implementation and imports its optional package (onnxruntime,
tensorrt) only when a model is loaded, so that validating a config or reading a model's
metadata works on any device.

Backend constructor convention: ``Backend(model_path, metadata, config)`` where ``config`` is
that backend's config class (or None for its defaults).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError

from runtime.artifact import ModelMetadata, read_engine_file, read_onnx_metadata
from runtime.backends.base import Backend
from runtime.backends.onnxruntime import OnnxRuntimeConfig
from runtime.backends.tensorrt import TensorRTConfig
from runtime.config_base import StrictModel
from runtime.errors import BackendUnavailableError, ConfigError, ModelFileError

log = logging.getLogger(__name__)

#: backend name -> "module:Class"; the only place a backend is declared
BACKENDS: dict[str, str] = {
    "onnxruntime": "runtime.backends.onnxruntime:OnnxRuntimeBackend",
    "tensorrt": "runtime.backends.tensorrt:TensorRTBackend",
}

#: backend name -> (package it needs, drsn-edge extra that installs it)
REQUIREMENTS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime", "ort"),
    "tensorrt": ("tensorrt", "trt"),
}

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")


class AutoBackendConfig(StrictModel):
    """Let the model file and the installed packages pick the backend."""

    type: Literal["auto"] = Field(
        default="auto",
        description="TensorRT for .engine/.plan files, and for .onnx files when tensorrt is installed; "
        "ONNX Runtime otherwise.",
    )
    onnxruntime: OnnxRuntimeConfig = Field(
        default_factory=lambda: OnnxRuntimeConfig(), description="Options used when ONNX Runtime is picked."
    )
    tensorrt: TensorRTConfig = Field(
        default_factory=lambda: TensorRTConfig.model_validate({}),
        description="Options used when TensorRT is picked.",
    )


BackendConfig = Annotated[
    Union[AutoBackendConfig, OnnxRuntimeConfig, TensorRTConfig],  # noqa: UP007 - pydantic needs a runtime Union
    Field(discriminator="type"),
]
AnyBackendConfig = Union[AutoBackendConfig, OnnxRuntimeConfig, TensorRTConfig]  # noqa: UP007

_CONFIG_CLASSES: dict[str, type[StrictModel]] = {
    "onnxruntime": OnnxRuntimeConfig,
    "tensorrt": TensorRTConfig,
}


def is_installed(package: str) -> bool:
    """True when ``package`` can be imported, without importing it (tensorrt takes seconds)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def require(kind: str) -> None:
    """Raise :class:`BackendUnavailableError` naming the extra when ``kind``'s package is missing."""
    package, extra = REQUIREMENTS[kind]
    if not is_installed(package):
        raise BackendUnavailableError(
            f"the {kind} backend needs the {package} package, which is not installed; install it with "
            f"`pip install 'drsn-edge[{extra}]'`"
            + (" (on Jetson, TensorRT comes with JetPack)" if kind == "tensorrt" else "")
        )


def backend_class(kind: str) -> type[Backend]:
    """Import and return the backend class registered under ``kind``."""
    if kind not in BACKENDS:
        raise ConfigError(f"unknown backend {kind!r}; choose one of {sorted(BACKENDS)} or 'auto'")
    module_name, _, class_name = BACKENDS[kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise BackendUnavailableError(
            f"the {kind} backend is not part of this drsn-edge installation; reinstall drsn-edge"
        ) from exc
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{BACKENDS[kind]} is not a Backend subclass")
    return cls


def open_model(path: str | Path) -> ModelMetadata:
    """Read the metadata of an ONNX file or a drsn-edge engine file without loading the model."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return read_onnx_metadata(p)
    if suffix in ENGINE_SUFFIXES:
        return read_engine_file(p, with_engine=False)[0]
    raise ModelFileError(
        f"{p}: unknown model file type {p.suffix!r}; use an ONNX file ({', '.join(ONNX_SUFFIXES)}) or a "
        f"drsn-edge engine ({', '.join(ENGINE_SUFFIXES)})"
    )


def resolve_kind(model_path: str | Path, kind: str = "auto") -> str:
    """Turn ``auto`` into a concrete backend name for this file and this device."""
    suffix = Path(model_path).suffix.lower()
    if kind != "auto":
        if kind not in BACKENDS:
            raise ConfigError(f"unknown backend {kind!r}; choose one of {sorted(BACKENDS)} or 'auto'")
        if kind == "onnxruntime" and suffix in ENGINE_SUFFIXES:
            raise ConfigError(
                f"{model_path} is a TensorRT engine, which ONNX Runtime cannot run; point the config at the "
                "ONNX file or choose backend type tensorrt"
            )
        return kind
    if suffix in ENGINE_SUFFIXES:
        return "tensorrt"
    if suffix in ONNX_SUFFIXES:
        return "tensorrt" if is_installed("tensorrt") else "onnxruntime"
    raise ModelFileError(
        f"{model_path}: cannot pick a backend for a {suffix or 'suffix-less'} file; "
        "use an .onnx, .engine or .plan file"
    )


def _config_for(kind: str, config: AnyBackendConfig | None, options: dict[str, Any]) -> StrictModel:
    """Build the chosen backend's config from a config object or keyword options."""
    if isinstance(config, AutoBackendConfig):
        config = getattr(config, kind)
    if config is not None:
        if options:
            raise ConfigError("pass backend options either as config= or as keywords, not both")
        if config.type != kind:
            raise ConfigError(f"a {config.type} config cannot configure the {kind} backend")
        return config
    try:
        return _CONFIG_CLASSES[kind].model_validate({"type": kind, **options})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(
            f"invalid {kind} backend option {'.'.join(map(str, err['loc']))}: {err['msg']}; see "
            f"`drsn-edge validate-config` for the accepted options"
        ) from exc


def create_backend(
    model_path: str | Path,
    kind: str = "auto",
    *,
    config: AnyBackendConfig | None = None,
    metadata: ModelMetadata | None = None,
    **options: Any,
) -> Backend:
    """Create (not load) the backend for ``model_path``.

    ``kind`` is a name from :data:`BACKENDS` or ``"auto"``; a ``config`` object, when given,
    decides the kind instead. Keyword ``options`` are validated into the backend's config class.
    Call ``load()`` on the thread that will run inference (TensorRT requires it).
    """
    if config is not None:
        if kind not in ("auto", config.type):
            raise ConfigError(f"backend kind {kind!r} contradicts the {config.type!r} config")
        kind = config.type
    chosen = resolve_kind(model_path, kind)
    require(chosen)
    backend_config = _config_for(chosen, config, options)
    meta = metadata if metadata is not None else open_model(model_path)
    cls = backend_class(chosen)
    log.info("backend %s selected for %s", chosen, Path(model_path).name)
    return cls(model_path, meta, backend_config)  # type: ignore[call-arg]


__all__ = [
    "BACKENDS",
    "AutoBackendConfig",
    "Backend",
    "BackendConfig",
    "OnnxRuntimeConfig",
    "TensorRTConfig",
    "backend_class",
    "create_backend",
    "open_model",
    "resolve_kind",
]
