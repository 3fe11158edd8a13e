"""The parity report and gate: tolerances, worst window, near-ties."""

from __future__ import annotations

import numpy as np
import pytest

from export.parity import check_parity, compare_logits
from runtime.errors import ParityError


def _logits(seed: int = 0, n: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 4)) * 3).astype(np.float32)


def test_report_names_the_worst_window_and_its_argmaxes() -> None:
    ref = _logits()
    cand = ref.copy()
    cand[7, ref[7].argmin()] += 50.0  # lifts a losing class far above the winner
    report = compare_logits(ref, cand, atol=1e-3)
    assert report.worst_index == 7 and report.max_abs_diff == pytest.approx(50.0)
    assert report.mismatches == [7] and report.decisive_mismatches == [7]
    assert report.argmax_agreement == pytest.approx(19 / 20)
    assert report.worst_argmax == (int(ref[7].argmax()), int(ref[7].argmin()))
    with pytest.raises(ParityError, match="at window 7") as err:
        check_parity(ref, cand, atol=1e-3, fix="do this")
    assert "do this" in str(err.value)


def test_relative_tolerance_scales_with_the_logits() -> None:
    ref = _logits() * 100
    cand = ref * (1 + 1e-4)
    with pytest.raises(ParityError):
        check_parity(ref, cand, atol=1e-3)
    report = check_parity(ref, cand, atol=1e-3, rtol=1e-3)
    assert report.tolerance == pytest.approx(1e-3 + 1e-3 * np.abs(ref).max(), rel=1e-6)


def test_near_ties_may_flip_only_when_argmax_need_not_be_exact() -> None:
    ref = np.array([[1.0, 1.001, 0.0], [5.0, 0.0, 0.0]], np.float32)
    cand = np.array([[1.001, 1.0, 0.0], [5.0, 0.0, 0.0]], np.float32)
    report = check_parity(ref, cand, atol=0.01, exact_argmax=False)
    assert report.mismatches == [0] and report.decisive_mismatches == []
    with pytest.raises(ParityError):
        check_parity(ref, cand, atol=0.01, exact_argmax=True)


def test_shape_mismatch_is_a_parity_error() -> None:
    with pytest.raises(ParityError, match="shape"):
        compare_logits(np.zeros((3, 4)), np.zeros((3, 5)), atol=1.0)
