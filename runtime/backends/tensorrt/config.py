"""Options of the TensorRT backend, importable without TensorRT (``validate-config`` runs anywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from runtime.config_base import StrictModel


class TensorRTConfig(StrictModel):
    """Options of the TensorRT backend."""

    type: Literal["tensorrt"] = Field(
        default="tensorrt", description="Selects the TensorRT backend (NVIDIA GPUs, Jetson)."
    )
    device_id: int = Field(default=0, ge=0, description="CUDA device index to run on.")
    precision: Literal["fp16", "fp32"] = Field(
        default="fp16",
        description="Precision of an engine built from an ONNX model file; ignored for engine files.",
    )
    batch: tuple[int, int, int] = Field(
        default=(1, 8, 32),
        description="Batch sizes (min, opt, max) of the optimisation profile of an engine built from an "
        "ONNX file; max is the largest batch one inference call accepts.",
    )
    workspace_mb: int = Field(
        default=1024, ge=16, description="Builder workspace limit in MiB (on-device builds only)."
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where engines built from an ONNX file are cached; default: beside the ONNX file.",
    )
    timing_cache: Path | None = Field(
        default=None,
        description="Persistent TensorRT timing cache; default: trt-timing.cache in the engine folder.",
    )
    golden_check: Literal["error", "warn", "off"] = Field(
        default="error",
        description="On load, run the golden windows stored in the model and compare with their reference "
        "logits: error refuses a wrong engine, warn only logs, off skips the check.",
    )
    cuda_library: Literal["auto", "cuda-python", "pycuda"] = Field(
        default="auto",
        description="CUDA bindings for the GPU buffers; auto prefers cuda-python, then pycuda.",
    )

    @field_validator("batch")
    @classmethod
    def _ordered(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        lo, opt, hi = value
        if not 1 <= lo <= opt <= hi:
            raise ValueError(f"batch must satisfy 1 <= min <= opt <= max, got {list(value)}")
        return value
