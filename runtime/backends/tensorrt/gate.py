"""After a build: run the engine against ONNX Runtime on the model's golden windows.

The gate uses the same backend the daemon will use, so it also proves that the engine loads and
that its IO binding works, not only that TensorRT produced bytes. The reference is ONNX Runtime
on the very ONNX file TensorRT parsed (FP16 for a strongly typed FP16 build), so the tolerance
only has to absorb TensorRT's kernel choices.
"""

from __future__ import annotations

import logging
from pathlib import Path

from runtime.artifact import ModelMetadata
from runtime.backends.golden import run_windows
from runtime.backends.tensorrt.backend import TensorRTBackend
from runtime.backends.tensorrt.config import TensorRTConfig
from runtime.backends.tensorrt.trt import ENGINE_TOLERANCES
from runtime.onnx_tools.ort_run import onnx_logits
from runtime.parity import ParityReport, check_parity

log = logging.getLogger(__name__)


def gate_engine(
    engine_path: Path, reference_onnx: Path, meta: ModelMetadata, *, precision: str, device_id: int = 0
) -> ParityReport | None:
    """Compare engine and ONNX Runtime logits; raise ParityError beyond the precision's tolerance.

    Returns None (with a warning) when the model carries no golden windows.
    """
    if meta.golden is None:
        log.warning(
            "%s carries no golden windows; the engine was not checked against ONNX Runtime", engine_path
        )
        return None
    windows, _ = meta.golden.arrays()
    reference = onnx_logits(reference_onnx, windows)
    config = TensorRTConfig(device_id=device_id, golden_check="off")
    with TensorRTBackend(engine_path, meta, config) as backend:
        logits = run_windows(backend, windows)
    atol, rtol = ENGINE_TOLERANCES[precision]
    return check_parity(
        reference,
        logits,
        atol=atol,
        rtol=rtol,
        exact_argmax=False,
        reference_name=f"onnxruntime ({reference_onnx.name})",
        candidate_name=f"tensorrt ({engine_path.name})",
        fix="the engine was discarded; try precision fp32, or report the TensorRT version and GPU",
    )
