"""What the backend benchmark measures: PyTorch eager, then one column per registered backend and
precision, derived from :data:`runtime.backends.registry.BACKEND_ROWS`.

A backend registered without a profile here is still measured, at FP32 with its default
options; a profile only adds precisions and the options that make the figures comparable
(one intra-op thread on ONNX Runtime's CPU provider, TensorRT's profile sized to the batches).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drsn_edge.bench_backends.measurement import BenchSpec
from runtime.backends.registry import BACKEND_ROWS

TORCH = "pytorch"


def _no_options(spec: BenchSpec, precision: str) -> dict[str, Any]:
    return {}


def _onnxruntime_options(spec: BenchSpec, precision: str) -> dict[str, Any]:
    return {"providers": ["CPUExecutionProvider"], "intra_op_threads": spec.threads, "inter_op_threads": 1}


def _tensorrt_options(spec: BenchSpec, precision: str) -> dict[str, Any]:
    top = max(spec.batches)
    return {"precision": precision, "batch": (1, min(32, top), top), "cache_dir": Path(spec.workdir)}


@dataclass(frozen=True)
class BenchProfile:
    """How the benchmark drives one backend."""

    precisions: tuple[str, ...] = ("fp32",)
    #: the backend turns an FP32 model into FP16 itself (TensorRT's builder); otherwise an FP16
    #: column runs the FP16 ONNX conversion of the model
    builds_fp16: bool = False
    options: Callable[[BenchSpec, str], dict[str, Any]] = field(default=_no_options)


PROFILES: dict[str, BenchProfile] = {
    "onnxruntime": BenchProfile(("fp32", "fp16"), options=_onnxruntime_options),
    "tensorrt": BenchProfile(("fp16",), builds_fp16=True, options=_tensorrt_options),
}


@dataclass(frozen=True)
class Column:
    """One measured configuration: ``<backend>-<precision>``, or PyTorch eager."""

    name: str
    backend: str | None  # registry name; None for PyTorch eager
    precision: str
    profile: BenchProfile = field(default_factory=BenchProfile)


def columns() -> tuple[Column, ...]:
    """PyTorch eager, then the registered backends from the most portable (the fallback) on."""
    found = [Column(TORCH, None, "fp32")]
    for row in reversed(BACKEND_ROWS):
        profile = PROFILES.get(row.name, BenchProfile())
        found += [Column(f"{row.name}-{p}", row.name, p, profile) for p in profile.precisions]
    return tuple(found)


COLUMNS: dict[str, Column] = {c.name: c for c in columns()}
