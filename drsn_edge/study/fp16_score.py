"""The FP16-ONNX accuracy of a trained model: what the device would score on the same windows.

The best checkpoint of a run is exported to ONNX (:func:`export.onnx_export.onnx_from_checkpoint`,
gated against PyTorch), converted to FP16 (:func:`runtime.onnx_tools.fp16.fp16_from_onnx`, gated on the
checkpoint's golden windows), and the FP16 file is then scored with ONNX Runtime on every test
window. The export gates answer "is the conversion faithful"; this answers "what accuracy does
the deployed model reach at this noise level", which is the figure the study reports.

A failed gate does not stop a study: the run's row records the reason instead of a number.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import DrsnEdgeError

log = logging.getLogger(__name__)


@dataclass
class Fp16Model:
    """An exported pair of files and an ONNX Runtime session on the FP16 one."""

    fp32_path: Path
    fp16_path: Path
    session: Any

    def score(
        self, x: np.ndarray, y: np.ndarray, reference_pred: np.ndarray | None = None
    ) -> dict[str, float]:
        """FP16 accuracy on ``(x, y)``; with FP32 predictions, also the share of windows they agree on."""
        from runtime.onnx_tools.ort_run import run_logits

        pred = run_logits(self.session, x).argmax(1)
        out = {"fp16_accuracy": float(np.mean(pred == y)) if len(y) else 0.0}
        if reference_pred is not None and len(pred):
            out["fp16_agreement"] = float(np.mean(pred == reference_pred))
        return out


def export_fp16(ckpt_path: Path, out_dir: Path | None = None) -> Fp16Model | str:
    """Export ``ckpt_path`` to FP32 and FP16 ONNX beside it; return the model, or why it failed."""
    from drsn_edge.training.checkpoint import build_model
    from export.onnx_export import onnx_from_checkpoint
    from runtime.onnx_tools.fp16 import fp16_from_onnx
    from runtime.onnx_tools.ort_run import cpu_session

    folder = out_dir or ckpt_path.parent
    fp32, fp16 = folder / f"{ckpt_path.stem}.onnx", folder / f"{ckpt_path.stem}_fp16.onnx"
    printed = io.StringIO()
    try:
        # The gates print their figures and the converter warns about every tiny weight it rounds;
        # both would break the study's progress bar, and the figures are kept in the files' metadata.
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            onnx_from_checkpoint(ckpt_path, fp32, build_model=build_model)
            fp16_from_onnx(fp32, fp16)
    except DrsnEdgeError as exc:
        log.warning("FP16 export of %s failed: %s", ckpt_path, exc)
        return f"{type(exc).__name__}: {exc}"
    log.debug("%s", printed.getvalue().strip())
    return Fp16Model(fp32, fp16, cpu_session(fp16, threads=1))
