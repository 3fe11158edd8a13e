"""Run an ONNX model with ONNX Runtime on the CPU: the reference every export gate measures against.

CPU only and all graph optimisations on, because that is what a CI runner and the fallback
backend on a device both do; a gate measured elsewhere would not predict either.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from runtime.errors import BackendUnavailableError, ModelFileError

log = logging.getLogger(__name__)


def cpu_session(model: str | Path | onnx.ModelProto | bytes, *, threads: int = 1) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU provider; unloadable models raise ModelFileError."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailableError(
            "export gates need onnxruntime; install it with `pip install 'drsn-edge[export]'`"
        ) from exc
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    source: str | bytes
    if isinstance(model, onnx.ModelProto):
        source = model.SerializeToString()
    elif isinstance(model, bytes):
        source = model
    else:
        source = str(model)
    try:
        return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises Fail/InvalidGraph/... without a common base
        raise ModelFileError(
            f"ONNX Runtime cannot load the model ({type(exc).__name__}: {exc}); re-export it with drsn-edge"
        ) from exc


def run_logits(session: Any, windows: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Logits (float32, (N, classes)) for ``windows``, in batches to bound memory."""
    inp = session.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    x = np.asarray(windows)
    outs = [
        session.run(None, {inp.name: np.ascontiguousarray(x[i : i + batch_size], dtype=dtype)})[0]
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outs).astype(np.float32)


def run_outputs(session: Any, windows: np.ndarray, *, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Every output of the model (logits, and features when exported) as float32, by output name."""
    inp = session.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    names = [o.name for o in session.get_outputs()]
    x = np.asarray(windows)
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for i in range(0, len(x), batch_size):
        outs = session.run(names, {inp.name: np.ascontiguousarray(x[i : i + batch_size], dtype=dtype)})
        for name, value in zip(names, outs, strict=True):
            parts[name].append(value)
    return {n: np.concatenate(v).astype(np.float32) for n, v in parts.items()}


def onnx_logits(
    model: str | Path | onnx.ModelProto | bytes, windows: np.ndarray, *, batch_size: int = 64
) -> np.ndarray:
    """One-shot helper: load ``model`` on the CPU and return its logits for ``windows``."""
    return run_logits(cpu_session(model), windows, batch_size=batch_size)
