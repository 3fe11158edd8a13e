"""Compare the logits of two runtimes on the same windows, with explicit tolerances.

Every export step ends with a gate of this kind: ONNX Runtime against PyTorch after the export,
FP16 against FP32 after the conversion, the TensorRT engine against ONNX Runtime after a build.
A gate that only says "failed" is useless on a device at 3 a.m., so the report names the worst
window, its difference and both argmaxes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from runtime.errors import ParityError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParityReport:
    """How far ``candidate`` logits are from ``reference`` logits on the same ``n`` windows."""

    reference: str
    candidate: str
    n: int
    max_abs_diff: float
    mean_abs_diff: float
    worst_index: int
    tolerance: float
    argmax_agreement: float
    #: windows whose argmax differs although the reference's top-2 margin exceeds the tolerance
    decisive_mismatches: list[int] = field(default_factory=list)
    #: windows whose argmax differs at all
    mismatches: list[int] = field(default_factory=list)
    worst_argmax: tuple[int, int] = (0, 0)

    @property
    def within_tolerance(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def summary(self) -> str:
        """One line for logs and error messages."""
        ref_arg, cand_arg = self.worst_argmax
        return (
            f"{self.candidate} vs {self.reference} on {self.n} windows: max |diff| {self.max_abs_diff:.3g} "
            f"(tolerance {self.tolerance:.3g}) at window {self.worst_index} "
            f"(argmax {ref_arg} vs {cand_arg}), "
            f"mean |diff| {self.mean_abs_diff:.3g}, argmax agreement {100 * self.argmax_agreement:.2f}% "
            f"({len(self.mismatches)} differ, {len(self.decisive_mismatches)} beyond a near-tie)"
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-able figures for the model metadata."""
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "n": self.n,
            "max_abs_diff": float(self.max_abs_diff),
            "mean_abs_diff": float(self.mean_abs_diff),
            "tolerance": float(self.tolerance),
            "argmax_agreement": float(self.argmax_agreement),
            "mismatches": len(self.mismatches),
        }


def compare_logits(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    atol: float,
    rtol: float = 0.0,
    reference_name: str = "reference",
    candidate_name: str = "candidate",
) -> ParityReport:
    """Measure ``candidate`` against ``reference``; never raises on a mismatch (see :func:`check_parity`).

    The tolerance is ``atol + rtol * max|reference|``: logits have no fixed scale, so a relative
    part keeps one setting meaningful for models with logits of 1 or of 30.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim != 2 or ref.shape[0] == 0:
        raise ParityError(
            f"cannot compare {candidate_name} logits of shape {cand.shape} with {reference_name} logits of "
            f"shape {ref.shape}; both must be (N, classes) with N >= 1: the two models differ in "
            "their outputs"
        )
    diff = np.abs(ref - cand)
    per_window = diff.max(axis=1)
    worst = int(per_window.argmax())
    tolerance = float(atol + rtol * np.abs(ref).max())
    ref_arg, cand_arg = ref.argmax(axis=1), cand.argmax(axis=1)
    mismatches = np.flatnonzero(ref_arg != cand_arg)
    margins = top2_margins(ref)
    decisive = [int(i) for i in mismatches if margins[i] > 2 * tolerance]
    return ParityReport(
        reference=reference_name,
        candidate=candidate_name,
        n=int(ref.shape[0]),
        max_abs_diff=float(per_window[worst]),
        mean_abs_diff=float(diff.mean()),
        worst_index=worst,
        tolerance=tolerance,
        argmax_agreement=float(1.0 - len(mismatches) / ref.shape[0]),
        decisive_mismatches=decisive,
        mismatches=[int(i) for i in mismatches],
        worst_argmax=(int(ref_arg[worst]), int(cand_arg[worst])),
    )


def top2_margins(logits: np.ndarray) -> np.ndarray:
    """Per window, the gap between the best and second-best logit (inf with a single class).

    A window whose gap is within the precision of the comparison is a near-tie: its argmax is a
    coin toss, and a flip there is not a defect of the runtime or conversion being gated.
    """
    if logits.shape[1] < 2:
        return np.full(logits.shape[0], np.inf)
    top = np.partition(logits, -2, axis=1)[:, -2:]
    margins: np.ndarray = top[:, 1] - top[:, 0]
    return margins


def check_parity(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    atol: float,
    rtol: float = 0.0,
    exact_argmax: bool = True,
    reference_name: str = "reference",
    candidate_name: str = "candidate",
    fix: str = "",
) -> ParityReport:
    """Gate: raise :class:`ParityError` unless the logits agree within tolerance.

    With ``exact_argmax`` every window must have the same argmax; without it, only windows whose
    reference margin is larger than twice the tolerance must (reduced precision may flip a
    near-tie, which is not a defect of the conversion).
    """
    report = compare_logits(
        reference,
        candidate,
        atol=atol,
        rtol=rtol,
        reference_name=reference_name,
        candidate_name=candidate_name,
    )
    bad_argmax = report.mismatches if exact_argmax else report.decisive_mismatches
    if not report.within_tolerance or bad_argmax:
        raise ParityError(f"parity gate failed: {report.summary()}" + (f"; {fix}" if fix else ""))
    log.info("parity gate passed: %s", report.summary())
    return report
