"""Compare the logits of two runtimes on the same windows: the one comparator of every parity gate.

Every conversion ends with a gate of this kind: ONNX Runtime against PyTorch after the export,
FP16 against FP32 after the conversion, a TensorRT engine against ONNX Runtime after a build, and
any backend against the golden logits stored in the model when it loads on a device. They share
one rule so that a tolerance means the same thing everywhere:

* the tolerance is ``atol + rtol * max|reference|`` (logits have no fixed scale, so a relative
  part keeps one setting meaningful for models with logits of 1 or of 30);
* a window whose reference top-2 margin is within the comparison's precision is a near-tie: its
  argmax is a coin toss, so a flip there is not a defect of what is being gated.

A gate that only says "failed" is useless on a device at 3 a.m., so the report names the worst
window, its difference and both argmaxes. This module lives on the device side (numpy only)
because the device runs the golden gates; ``export`` re-uses it.
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
    #: windows whose argmax differs although the reference is not a near-tie there
    decisive_mismatches: list[int] = field(default_factory=list)
    #: windows whose argmax differs at all
    mismatches: list[int] = field(default_factory=list)
    worst_argmax: tuple[int, int] = (0, 0)

    @property
    def within_tolerance(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    @property
    def near_tie_flips(self) -> int:
        """Argmax flips forgiven as near-ties."""
        return len(self.mismatches) - len(self.decisive_mismatches)

    @property
    def decisive_agreement(self) -> float:
        """Argmax agreement with near-tie flips counted as agreements."""
        return 1.0 - len(self.decisive_mismatches) / self.n

    def passed(self, *, exact_argmax: bool) -> bool:
        """Within tolerance, and the same argmax on every window (``exact_argmax``) or every
        window that is not a near-tie."""
        bad_argmax = self.mismatches if exact_argmax else self.decisive_mismatches
        return self.within_tolerance and not bad_argmax

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


def top2_margins(logits: np.ndarray) -> np.ndarray:
    """Per window, the gap between the best and second-best logit (inf with a single class)."""
    if logits.shape[1] < 2:
        return np.full(logits.shape[0], np.inf)
    top = np.partition(logits, -2, axis=1)[:, -2:]
    margins: np.ndarray = top[:, 1] - top[:, 0]
    return margins


def near_tie_limits(reference: np.ndarray, tolerance: float, near_tie_fraction: float | None) -> np.ndarray:
    """Per window, the top-2 margin at or below which an argmax flip is a near-tie.

    By default twice the tolerance: two logits that may each move by the tolerance can swap. With
    ``near_tie_fraction`` the limit is that share of the window's largest |logit| instead, for
    gates (FP16) whose errors grow with the logits rather than staying within a tolerance.
    """
    if near_tie_fraction is None:
        return np.full(reference.shape[0], 2 * tolerance)
    limits: np.ndarray = near_tie_fraction * np.abs(reference).max(axis=1)
    return limits


def compare_logits(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    atol: float,
    rtol: float = 0.0,
    near_tie_fraction: float | None = None,
    reference_name: str = "reference",
    candidate_name: str = "candidate",
) -> ParityReport:
    """Measure ``candidate`` against ``reference``; never raises on a mismatch (see :func:`check_parity`).

    Raises :class:`ParityError` only when the two cannot be compared (shapes differ or no windows).
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
    decisive = top2_margins(ref) > near_tie_limits(ref, tolerance, near_tie_fraction)
    return ParityReport(
        reference=reference_name,
        candidate=candidate_name,
        n=int(ref.shape[0]),
        max_abs_diff=float(per_window[worst]),
        mean_abs_diff=float(diff.mean()),
        worst_index=worst,
        tolerance=tolerance,
        argmax_agreement=float(1.0 - len(mismatches) / ref.shape[0]),
        decisive_mismatches=[int(i) for i in mismatches if decisive[i]],
        mismatches=[int(i) for i in mismatches],
        worst_argmax=(int(ref_arg[worst]), int(cand_arg[worst])),
    )


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

    With ``exact_argmax`` every window must have the same argmax; without it, only windows that
    are not near-ties must (reduced precision may flip a near-tie, which is not a defect).
    """
    report = compare_logits(
        reference,
        candidate,
        atol=atol,
        rtol=rtol,
        reference_name=reference_name,
        candidate_name=candidate_name,
    )
    if not report.passed(exact_argmax=exact_argmax):
        raise ParityError(f"parity gate failed: {report.summary()}" + (f"; {fix}" if fix else ""))
    log.info("parity gate passed: %s", report.summary())
    return report
