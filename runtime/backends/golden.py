"""A model proves itself before it serves: its graph must match its metadata, and it must reproduce
the golden windows that the metadata carries.

A model file whose graph disagrees with its metadata (3 output classes where the metadata names
4, another window length) or whose weights are not the ones exported would otherwise be accepted
and fail every batch, or worse, answer wrongly. Every backend runs this gate right after loading,
on the inference thread, at start and on every reload; a failure is a :class:`ModelFileError` or
:class:`ParityError` whose message carries the figures, so the daemon refuses the model (and keeps
the old one on reload).

The comparison is the project's one comparator (:mod:`runtime.parity`). Tolerances by the
precision of the stored weights: FP32 models must match the golden logits within
``1e-2 + 1e-2 x max|logit|`` (as a TensorRT FP32 engine must; room for other kernels and TF32,
far below what a different model produces) with near-tie argmax flips forgiven. FP16 models are
judged as the FP16 export gate judges them, on argmaxes: at least 99.5 % decisive agreement with
the FP32 golden logits, near-ties being windows whose top-2 margin is within 2 % of the largest
|logit|.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from runtime.errors import ModelFileError, ParityError
from runtime.parity import ParityReport, compare_logits

if TYPE_CHECKING:
    from runtime.backends.base import Backend

log = logging.getLogger(__name__)

FP32_TOLERANCE = (1e-2, 1e-2)
FP16_NEAR_TIE_FRACTION = 0.02
FP16_MIN_AGREEMENT = 0.995


def golden_gate(backend: Backend) -> ParityReport | None:
    """Run the metadata's golden windows through a loaded backend; raise unless they match.

    Returns the report, or None (with a warning) for a model without golden windows.
    """
    name = backend.model_path.name
    golden = backend.metadata.golden
    if golden is None:
        log.warning("%s carries no golden windows; it serves without proving its outputs", name)
        return None
    windows, reference = golden.arrays()
    if tuple(windows.shape[1:]) != backend.sample_shape or reference.shape[1] != backend.num_classes:
        raise ModelFileError(
            f"{name}: the golden windows are {tuple(windows.shape)} with {reference.shape[1]} logits, "
            "but the "
            f"metadata describes inputs (N, {', '.join(map(str, backend.sample_shape))}) and "
            f"{backend.num_classes} classes; the metadata was edited after export: re-export the model"
        )
    logits = run_windows(backend, windows)
    report = _judge(reference, logits, backend.metadata.precision, f"{backend.name} ({name})")
    log.info("%s proved itself on %d golden windows: %s", name, report.n, report.summary())
    return report


def run_windows(backend: Backend, windows: np.ndarray) -> np.ndarray:
    """Logits of ``windows`` from a loaded backend, in batches it accepts, checked against the class
    count (the golden gates of every backend and the TensorRT post-build gate use it)."""
    name = backend.model_path.name
    step = backend.max_batch or len(windows)
    parts = []
    for i in range(0, len(windows), step):
        x = backend.check_input(windows[i : i + step])
        out = np.asarray(backend._infer(x), dtype=np.float32)
        if out.size != x.shape[0] * backend.num_classes:
            per_window = out.size / x.shape[0]
            raise ModelFileError(
                f"{name}: the graph outputs {per_window:g} values per window (output shape "
                f"{tuple(out.shape)}) but the metadata names {backend.num_classes} classes "
                f"{backend.metadata.classes}; the graph and its metadata do not belong together: "
                "re-export the model"
            )
        parts.append(out.reshape(x.shape[0], backend.num_classes))
    return np.concatenate(parts)


def _judge(reference: np.ndarray, logits: np.ndarray, precision: str, candidate: str) -> ParityReport:
    if not np.isfinite(logits).all():
        bad = int(np.count_nonzero(~np.isfinite(logits).all(axis=1)))
        raise ParityError(f"{candidate} gives NaN/inf logits on {bad} of {len(logits)} golden windows; "
                          "the model or the device's kernels are broken: re-export or use another backend")
    fix = ("the model does not reproduce its own golden windows: the weights or graph were changed after "
           "export, or this backend computes it wrongly; re-export the model or try another backend")
    if precision == "fp16":
        report = compare_logits(reference, logits, atol=0.0, near_tie_fraction=FP16_NEAR_TIE_FRACTION,
                                reference_name="golden logits", candidate_name=candidate)
        if report.decisive_agreement < FP16_MIN_AGREEMENT:
            raise ParityError(
                f"golden gate failed: decisive argmax agreement {100 * report.decisive_agreement:.1f}% "
                f"< {100 * FP16_MIN_AGREEMENT:.1f}% ({report.summary()}); {fix}")
        return report
    atol, rtol = FP32_TOLERANCE
    report = compare_logits(reference, logits, atol=atol, rtol=rtol,
                            reference_name="golden logits", candidate_name=candidate)
    if not report.passed(exact_argmax=False):
        raise ParityError(f"golden gate failed: {report.summary()}; {fix}")
    return report
