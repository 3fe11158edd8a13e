"""The parity report and gate: tolerances, worst window, near-ties."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.errors import ParityError
from runtime.parity import check_parity, compare_logits


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


def test_near_tie_fraction_judges_each_window_by_its_own_scale() -> None:
    """Worked by hand: with 2% of each window's largest |logit|, a margin of 0.05 at scale 3 is a
    near-tie (limit 0.06) while the same margin at scale 1 is not (limit 0.02)."""
    ref = np.array([[3.0, 2.95], [1.0, 0.95], [4.0, 0.0]], np.float32)
    cand = np.array([[2.95, 3.0], [0.95, 1.0], [4.0, 0.0]], np.float32)
    report = compare_logits(ref, cand, atol=0.0, near_tie_fraction=0.02)
    assert report.mismatches == [0, 1] and report.decisive_mismatches == [1]
    assert report.near_tie_flips == 1
    assert report.argmax_agreement == pytest.approx(1 / 3)
    assert report.decisive_agreement == pytest.approx(2 / 3)
    assert not report.passed(exact_argmax=False)
    # the default rule (twice the tolerance: 0.12 here) forgives both flips
    loose = compare_logits(ref, cand, atol=0.06)
    assert loose.decisive_mismatches == [] and loose.passed(exact_argmax=False)
    assert not loose.passed(exact_argmax=True)


def test_passed_needs_the_tolerance_as_well_as_the_argmax() -> None:
    ref = _logits()
    report = compare_logits(ref, ref + 0.5, atol=0.1)
    assert report.mismatches == [] and not report.passed(exact_argmax=False)
    assert compare_logits(ref, ref + 0.05, atol=0.1).passed(exact_argmax=True)
