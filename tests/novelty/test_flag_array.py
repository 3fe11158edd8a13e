"""Novelty flags of many sensors stepped as one array decide as the plain per-window rule."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from runtime.novelty.smoothing import FlagArray, NoveltyFlag, SmoothingSpec


def _reference(spec: SmoothingSpec, scores: np.ndarray) -> list[bool]:
    """The rule written out: mean of the last `history` scores, enter/exit, min_windows in a row."""
    recent: deque[float] = deque(maxlen=spec.history)
    flagged, pending, out = False, 0, []
    for s in scores:
        recent.append(float(s))
        if len(recent) == spec.history:
            mean = sum(recent) / len(recent)
            wants = mean >= (spec.exit if flagged else spec.enter)
            if wants == flagged:
                pending = 0
            else:
                pending += 1
                if pending >= spec.min_windows:
                    flagged, pending = wants, 0
        out.append(flagged)
    return out


@pytest.mark.parametrize("spec", [SmoothingSpec(10.0, 9.0, history=5, min_windows=3),
                                  SmoothingSpec(10.0, 6.0, history=1, min_windows=1),
                                  SmoothingSpec(10.0, 10.0, history=3, min_windows=2)])
def test_one_array_step_per_round_matches_each_sensors_own_rule(spec: SmoothingSpec) -> None:
    rng = np.random.default_rng(7)
    sensors, windows = 6, 400
    # scores that wander across the thresholds: runs of familiar and unfamiliar windows
    level = np.repeat(rng.choice([4.0, 9.5, 14.0], size=(sensors, windows // 20)), 20, axis=1)
    scores = level + rng.normal(0, 1.5, size=(sensors, windows))
    flags = [NoveltyFlag(spec) for _ in range(sensors)]
    shared = FlagArray(spec, capacity=2)  # grows while the flags move in
    for f in flags:
        f.move_to(shared)
    rows = np.array([f.row for f in flags])
    got = np.array([shared.step(rows, scores[:, w]) for w in range(windows)]).T
    for s in range(sensors):
        expected = _reference(spec, scores[s])
        assert got[s].tolist() == expected
        assert flags[s].flagged == expected[-1]
        assert flags[s].smoothed == pytest.approx(np.mean(scores[s][-spec.history:]))
    assert got.any() and not got.all()  # the flags really moved


def test_a_single_flag_follows_the_rule_too() -> None:
    spec = SmoothingSpec(10.0, 8.0, history=4, min_windows=2)
    scores = np.concatenate([np.full(10, 3.0), np.full(10, 12.0), np.full(10, 9.0), np.full(10, 2.0)])
    flag = NoveltyFlag(spec)
    assert [flag.update(s) for s in scores] == _reference(spec, scores)


def _state(a: FlagArray) -> list[np.ndarray]:
    """The rule's columns (not ``calm``, which only step_quiet sets)."""
    return [getattr(a, name)[: a.rows].copy() for name in a._COLUMNS if name != "calm"]


@pytest.mark.parametrize(("spec", "offset"), [(SmoothingSpec(10.0, 9.0, history=5, min_windows=3), 0.0),
                                              (SmoothingSpec(10.0, 6.0, history=2, min_windows=1), 0.0),
                                              (SmoothingSpec(-1.0, -2.0, history=4, min_windows=2), -11.0)])
@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [3, 0, 4, 1, 2]])  # rows as a slice, and gathered
def test_several_windows_in_one_quiet_pass_leave_what_the_steps_leave(
        spec: SmoothingSpec, offset: float, order: list[int]) -> None:
    """step_quiet either leaves exactly the arrays of one step per window (and no flag moved),
    or refuses and leaves them untouched; both happen on scores that cross the thresholds."""
    rng = np.random.default_rng(11)
    sensors, batches = 5, 300
    # familiar spells (no flag can move) between unfamiliar ones, the same for every sensor
    spells = rng.choice([4.0, 9.5, 14.0], p=[0.6, 0.2, 0.2], size=batches // 15)
    level = offset + np.repeat(spells, 15)[None, :]
    one, quiet = FlagArray(spec), FlagArray(spec)
    for _ in range(sensors):
        one.add_row(), quiet.add_row()
    rows = np.array(order)
    taken = refused = flips = calm_taken = 0
    for b in range(batches):
        m = int(rng.integers(1, spec.history + 3))  # sometimes more windows than the history
        scores = level[:, b] + rng.normal(0, 1.0, size=(m, sensors))
        before = _state(quiet)
        calm = bool(quiet.calm[rows].all())  # the short way: full histories, nothing pending
        if quiet.step_quiet(rows, scores):
            taken += 1
            calm_taken += calm
            for r in range(m):
                assert not one.step(rows, scores[r]).any()
            for got, want in zip(_state(quiet), _state(one), strict=True):
                np.testing.assert_array_equal(got, want)
        else:
            refused += 1
            for got, want in zip(_state(quiet), before, strict=True):
                np.testing.assert_array_equal(got, want)
            for r in range(m):  # the rounds' way, on both, to carry on from the same state
                was = one.flagged[rows].copy()
                flips += int((one.step(rows, scores[r]) != was).sum())
                quiet.step(rows, scores[r])
        np.testing.assert_array_equal(quiet.smoothed[:sensors], one.smoothed[:sensors])
    assert taken > 50 and refused > 50 and calm_taken > 20
    assert flips > 0  # flags did move, in the refused batches
