"""One row per backend: everything the rest of the code knows about a backend derives from it.

A row names the backend, its config class (validated anywhere, so it lives beside the
implementation but imports no optional package), the implementation as ``"module:Class"``
(imported only when a model is loaded), the package it needs and the drsn-edge extra that
installs it, and the model file suffixes it runs. The config unions, the ``auto`` config, the
requirement messages, the suffix rules of ``auto`` and the backend benchmark all read
:data:`BACKEND_ROWS`; adding a backend (OpenVINO, say) is one new file plus one row here.

Rows are in order of preference: ``auto`` picks the first installed backend that runs the model
file, and the last one that runs it (whose error then names its extra) when none is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.backends.onnxruntime import OnnxRuntimeConfig
from runtime.backends.tensorrt.config import TensorRTConfig
from runtime.config_base import StrictModel

#: model file suffixes and what they hold (the readers live in :mod:`runtime.artifact`)
ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")


@dataclass(frozen=True)
class BackendRow:
    """What the code knows about one backend."""

    #: the config's ``type`` and the key users write
    name: str
    #: human name for messages and the docs
    title: str
    config: type[StrictModel]
    #: ``"module:Class"`` of the :class:`~runtime.backends.base.Backend` subclass
    implementation: str
    #: importable package the backend needs, and the drsn-edge extra that installs it
    package: str
    extra: str
    #: model file suffixes it runs
    suffixes: tuple[str, ...]
    #: appended to the "not installed" message
    install_hint: str = ""


BACKEND_ROWS: tuple[BackendRow, ...] = (
    BackendRow(
        name="tensorrt",
        title="TensorRT",
        config=TensorRTConfig,
        implementation="runtime.backends.tensorrt.backend:TensorRTBackend",
        package="tensorrt",
        extra="trt",
        suffixes=(*ONNX_SUFFIXES, *ENGINE_SUFFIXES),
        install_hint=" (on Jetson, TensorRT comes with JetPack)",
    ),
    BackendRow(
        name="onnxruntime",
        title="ONNX Runtime",
        config=OnnxRuntimeConfig,
        implementation="runtime.backends.onnxruntime:OnnxRuntimeBackend",
        package="onnxruntime",
        extra="ort",
        suffixes=ONNX_SUFFIXES,
    ),
)

ROWS: dict[str, BackendRow] = {row.name: row for row in BACKEND_ROWS}
