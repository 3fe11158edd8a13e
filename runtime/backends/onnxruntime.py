"""ONNX Runtime backend: the fallback wherever TensorRT is absent (CPU, or CUDA with onnxruntime-gpu).

It runs the exported FP32 ONNX file and the FP16 ONNX file alike: an FP16 export keeps FP32
inputs and outputs (casts live inside the graph), and should a file declare FP16 inputs anyway,
the batch is cast once here so callers always hand in and get back float32.

``onnxruntime`` is imported inside :meth:`OnnxRuntimeBackend._load`, so importing this module
(and validating its config) works on a device that has only TensorRT.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from runtime.artifact import ModelMetadata
from runtime.backends.base import Backend
from runtime.config_base import StrictModel
from runtime.errors import BackendUnavailableError, ConfigError, ModelFileError

log = logging.getLogger(__name__)

_OPT_LEVELS = {
    "disabled": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


class OnnxRuntimeConfig(StrictModel):
    """Options of the ONNX Runtime backend."""

    type: Literal["onnxruntime"] = Field(
        default="onnxruntime",
        description="Selects the ONNX Runtime backend (CPU, or CUDA with onnxruntime-gpu).",
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
        min_length=1,
        description="Execution providers in order of preference; those not available in the installed "
        "onnxruntime are skipped (with a log line), so one config serves CPU and GPU devices.",
    )
    intra_op_threads: int = Field(
        default=0,
        ge=0,
        description="Threads used inside one operator; 0 lets ONNX Runtime pick one per physical core. "
        "Lower it to leave cores for the sensor sources and the MQTT client.",
    )
    inter_op_threads: int = Field(
        default=0,
        ge=0,
        description="Threads running independent operators in parallel; 0 or 1 keeps sequential "
        "execution, which is fastest for the chain-shaped DRSN graphs.",
    )
    graph_optimization: Literal["disabled", "basic", "extended", "all"] = Field(
        default="all", description="ONNX Runtime graph optimisation level; lower it only to debug numerics."
    )


def select_providers(requested: list[str], available: list[str]) -> list[str]:
    """Keep the requested providers that this onnxruntime build offers, in the requested order.

    A config written for a GPU box must still start on a CPU-only device, so unavailable providers
    are dropped with a log line; only an empty result is an error.
    """
    chosen = [p for p in requested if p in available]
    skipped = [p for p in requested if p not in available]
    if skipped:
        log.info("onnxruntime: skipping unavailable providers %s (available: %s)", skipped, available)
    if not chosen:
        raise ConfigError(
            f"none of the configured onnxruntime providers {requested} is available in this installation "
            f"(available: {available}); add one of those to backend.providers"
        )
    return chosen


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            "the onnxruntime backend needs the onnxruntime package; install it with "
            "`pip install 'drsn-edge[ort]'` (or onnxruntime-gpu for CUDA)"
        ) from exc
    return onnxruntime


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX model with ONNX Runtime; input and output names come from the session itself."""

    name = "onnxruntime"

    def __init__(
        self, model_path: str | Path, metadata: ModelMetadata, config: OnnxRuntimeConfig | None = None
    ) -> None:
        super().__init__(model_path, metadata)
        self.config = config if config is not None else OnnxRuntimeConfig()
        self._session: Any = None
        self._input_name = metadata.input.name
        self._output_name = metadata.output_name
        self._features_name: str | None = None
        self._input_dtype: type[np.floating[Any]] = np.float32
        self.providers: list[str] = []

    def _load(self) -> None:
        ort = _import_onnxruntime()
        if not self.model_path.is_file():
            raise ModelFileError(
                f"model file {self.model_path} does not exist; check the model path in your config"
            )
        providers = select_providers(self.config.providers, list(ort.get_available_providers()))
        try:
            session = ort.InferenceSession(
                str(self.model_path), sess_options=self._session_options(ort), providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
            raise ModelFileError(
                f"{self.model_path} could not be loaded by ONNX Runtime ({type(exc).__name__}: {exc}); "
                "the file is corrupt or not an ONNX model: re-export it with `drsn-edge export`"
            ) from exc
        self._bind_io(session)
        self._session = session
        self.providers = list(session.get_providers())
        log.info("onnxruntime: loaded %s with providers %s", self.model_path.name, self.providers)

    def _session_options(self, ort: Any) -> Any:
        cfg = self.config
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = cfg.intra_op_threads
        opts.inter_op_num_threads = cfg.inter_op_threads
        if cfg.inter_op_threads > 1:
            opts.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        level = _OPT_LEVELS[cfg.graph_optimization]
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        return opts

    def _bind_io(self, session: Any) -> None:
        """Take IO names and input dtype from the session and check them against the metadata."""
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise ModelFileError(
                f"{self.model_path} has {len(inputs)} inputs and {len(outputs)} outputs; a drsn-edge model "
                "has one input (the windows) and a logits output: re-export it with `drsn-edge export`"
            )
        inp = inputs[0]
        static = [d if isinstance(d, int) else None for d in inp.shape[1:]]
        if len(static) != len(self.sample_shape) or any(
            d is not None and d != want for d, want in zip(static, self.sample_shape, strict=True)
        ):
            raise ModelFileError(
                f"{self.model_path}: the graph input {inp.name} has shape {inp.shape} but the metadata says "
                f"(N, {', '.join(map(str, self.sample_shape))}); the file was changed after export: "
                "re-export it"
            )
        self._input_name = inp.name
        self._input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        names = [o.name for o in outputs]
        self._output_name = self.metadata.output_name if self.metadata.output_name in names else names[0]
        out = outputs[names.index(self._output_name)]
        width = out.shape[-1] if out.shape else None
        if isinstance(width, int) and width != self.num_classes:
            raise ModelFileError(
                f"{self.model_path}: the graph output {out.name} has shape {out.shape}, {width} classes, but "
                f"the metadata names {self.num_classes} classes {self.metadata.classes}; the graph and its "
                "metadata do not belong together: re-export the model"
            )
        wanted = self.metadata.features_name
        self._features_name = wanted if wanted is not None and wanted in names else None
        self.has_features = self._features_name is not None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        x = batch if self._input_dtype is np.float32 else batch.astype(self._input_dtype)
        out = self._session.run([self._output_name], {self._input_name: x})[0]
        return np.asarray(out, dtype=np.float32)

    def _infer_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = batch if self._input_dtype is np.float32 else batch.astype(self._input_dtype)
        logits, features = self._session.run([self._output_name, self._features_name], {self._input_name: x})
        return np.asarray(logits, dtype=np.float32), np.asarray(features, dtype=np.float32)

    def _close(self) -> None:
        self._session = None
