"""Inference backends, chosen by name from an explicit table and imported only when used.

:data:`runtime.backends.registry.BACKEND_ROWS` holds one row per backend; the names, the config
unions, the ``auto`` config, the requirement messages and the suffix rules here all derive from
it. Nothing registers itself on import, so the set of backends never depends on import order.
Each backend module keeps its config class beside its implementation and imports its optional
package (onnxruntime, tensorrt) only when a model is loaded, so that validating a config or
reading a model's metadata works on any device.

Backend constructor convention: ``Backend(model_path, metadata, config)`` where ``config`` is
that backend's config class (or None for its defaults).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypeAlias, Union

from pydantic import Field, ValidationError, create_model

from runtime.artifact import ModelMetadata, read_engine_file, read_onnx_metadata
from runtime.backends.base import Backend
from runtime.backends.onnxruntime import OnnxRuntimeConfig
from runtime.backends.registry import BACKEND_ROWS, ENGINE_SUFFIXES, ONNX_SUFFIXES, ROWS, BackendRow
from runtime.backends.tensorrt.config import TensorRTConfig
from runtime.config_base import StrictModel
from runtime.errors import BackendUnavailableError, ConfigError, ModelFileError

log = logging.getLogger(__name__)

#: backend name -> "module:Class" (derived from the registry rows)
BACKENDS: dict[str, str] = {row.name: row.implementation for row in BACKEND_ROWS}

#: backend name -> (package it needs, drsn-edge extra that installs it)
REQUIREMENTS: dict[str, tuple[str, str]] = {row.name: (row.package, row.extra) for row in BACKEND_ROWS}

_CONFIG_CLASSES: dict[str, type[StrictModel]] = {row.name: row.config for row in BACKEND_ROWS}


def _auto_description() -> str:
    order = ", ".join(f"{row.name} ({'/'.join(row.suffixes)})" for row in BACKEND_ROWS)
    return (
        f"The first installed backend that runs the model file, in this order: {order}; when none is "
        "installed, the last one that runs it (its error names the extra to install)."
    )


class _BackendConfig(Protocol):
    """What the code needs of any backend config (for the type checker; pydantic sees the union)."""

    @property
    def type(self) -> str: ...


if TYPE_CHECKING:

    class AutoBackendConfig(StrictModel):
        """Let the model file and the installed packages pick the backend."""

        type: Literal["auto"] = "auto"

    AnyBackendConfig: TypeAlias = _BackendConfig
    BackendConfig: TypeAlias = _BackendConfig
else:
    AutoBackendConfig = create_model(
        "AutoBackendConfig",
        __base__=StrictModel,
        __doc__="Let the model file and the installed packages pick the backend.",
        __module__=__name__,
        type=(Literal["auto"], Field(default="auto", description=_auto_description())),
        **{
            row.name: (
                row.config,
                Field(
                    default_factory=partial(row.config.model_validate, {}),
                    description=f"Options used when {row.title} is picked.",
                ),
            )
            for row in BACKEND_ROWS
        },
    )
    AnyBackendConfig = Union[tuple([AutoBackendConfig, *(row.config for row in BACKEND_ROWS)])]  # noqa: UP007
    BackendConfig = Annotated[AnyBackendConfig, Field(discriminator="type")]


def is_installed(package: str) -> bool:
    """True when ``package`` can be imported, without importing it (tensorrt takes seconds)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def require(kind: str) -> None:
    """Raise :class:`BackendUnavailableError` naming the extra when ``kind``'s package is missing."""
    row = ROWS[kind]
    if not is_installed(row.package):
        raise BackendUnavailableError(
            f"the {kind} backend needs the {row.package} package, which is not installed; install it with "
            f"`pip install 'drsn-edge[{row.extra}]'`" + row.install_hint
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
    runs_it = [row for row in BACKEND_ROWS if suffix in row.suffixes]
    if kind != "auto":
        if kind not in BACKENDS:
            raise ConfigError(f"unknown backend {kind!r}; choose one of {sorted(BACKENDS)} or 'auto'")
        if runs_it and ROWS[kind] not in runs_it:
            raise ConfigError(_cannot_run(model_path, ROWS[kind], runs_it))
        return kind
    if not runs_it:
        known = sorted({s for row in BACKEND_ROWS for s in row.suffixes})
        raise ModelFileError(
            f"{model_path}: cannot pick a backend for a {suffix or 'suffix-less'} file; "
            f"use an {', '.join(known)} file"
        )
    installed = [row for row in runs_it if is_installed(row.package)]
    return (installed or runs_it)[0 if installed else -1].name


def _cannot_run(model_path: str | Path, row: BackendRow, runs_it: list[BackendRow]) -> str:
    what = "a TensorRT engine" if Path(model_path).suffix.lower() in ENGINE_SUFFIXES else "a model file"
    others = " or ".join(r.name for r in runs_it)
    return (
        f"{model_path} is {what}, which {row.title} cannot run; point the config at a "
        f"{'/'.join(row.suffixes)} file or choose backend type {others}"
    )


def _config_for(kind: str, config: AnyBackendConfig | None, options: dict[str, Any]) -> Any:
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
