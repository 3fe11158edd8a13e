"""The one pass over a grid of windows (:meth:`StateArray.advance_quiet_grid`, the usual batch
shape) leaves every number exactly as the general one pass (:meth:`StateArray.advance_quiet`)
does: same rows left for the step, same rings, sums and columns to the bit; and the steady pass
(:meth:`StateArray.advance_steady`) either does exactly what the grid pass does or nothing."""

from __future__ import annotations

import copy

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.fault_state import FaultStateConfig, FaultStateTracker, step_rows
from runtime.state_array import StateArray

CLASSES = ["normal", "ball", "inner_race", "outer_race"]
CONFIGS = [
    FaultStateConfig(history=5, min_windows=5),
    FaultStateConfig(history=3, min_windows=2, enter_threshold=0.5, exit_threshold=0.4, min_duration_s=0.3),
    FaultStateConfig(history=4, min_windows=1, enter_threshold=0.6, exit_threshold=0.45),
    FaultStateConfig(history=2, min_windows=1),
]


def _probs(rng: np.random.Generator, shape: tuple[int, ...], cls: np.ndarray, jump: float) -> np.ndarray:
    """Probabilities leaning on ``cls`` (broadcast over ``shape``), now and then on another class."""
    logits = rng.normal(0.0, 1.0, (*shape, len(CLASSES)))
    lean = np.where(rng.random(shape) < jump, rng.integers(0, len(CLASSES), shape), cls)
    np.put_along_axis(logits, lean[..., None], np.take_along_axis(logits, lean[..., None], -1) + 5.0, -1)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _history(rng: np.random.Generator, cfg: FaultStateConfig, sensors: int, most: int, jump: float
             ) -> tuple[list[FaultStateTracker], StateArray, np.ndarray, float]:
    """Trackers of ``sensors`` rows in one state array after up to ``most`` random windows each
    (each row's usual class, left with probability ``jump`` per window); the last window's time."""
    trackers = [FaultStateTracker(f"s{s}", CLASSES, "normal", cfg) for s in range(sensors)]
    array = trackers[0].new_array()
    for t in trackers:
        t.move_to(array)
    cls = rng.integers(0, len(CLASSES), sensors)
    ts = 100.0
    for _ in range(int(rng.integers(0, most))):
        ts += 0.1
        step_rows(trackers, _probs(rng, (sensors,), cls, jump), [ts] * sensors, [ts] * sensors)
    return trackers, array, cls, ts


def _warm_array(rng: np.random.Generator, cfg: FaultStateConfig,
                sensors: int) -> tuple[StateArray, np.ndarray]:
    """A state array of ``sensors`` rows after a random history each: some in a state, some pending,
    some in no_data, rings at every position; returns it and each row's usual class."""
    trackers, array, cls, ts = _history(rng, cfg, sensors, 12, 0.3)
    for s in np.flatnonzero(rng.random(sensors) < 0.15):
        trackers[int(s)].mark_no_data(ts)
    return array, cls


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cfg=st.sampled_from(CONFIGS), sensors=st.integers(1, 9),
       rounds=st.integers(1, 6), jump=st.sampled_from([0.0, 0.05, 0.5]), busy=st.booleans())
def test_the_grid_pass_equals_the_general_pass(seed: int, cfg: FaultStateConfig, sensors: int, rounds: int,
                                               jump: float, busy: bool) -> None:
    rng = np.random.default_rng(seed)
    array, cls = _warm_array(rng, cfg, sensors)
    other = copy.deepcopy(array)
    rows = rng.permutation(sensors).astype(np.int64)  # the batch's sensors in any order
    grid_probs = _probs(rng, (rounds, sensors), cls[rows][None, :], jump)
    busy_grid = rng.random((rounds, sensors)) < 0.2 if busy else None
    # the same windows as the general pass takes them: round by round, each row once per round
    members = [np.arange(r * sensors, (r + 1) * sensors) for r in range(rounds)]
    rank = np.repeat(np.arange(rounds), sensors)
    left = other.advance_quiet(np.tile(rows, rounds), grid_probs.reshape(-1, len(CLASSES)), rank, members,
                               None if busy_grid is None else busy_grid.reshape(-1))
    noisy = array.advance_quiet_grid(rows, grid_probs, busy_grid)
    want = left.reshape(rounds, sensors)
    assert (want == want[:1]).all()  # a row's windows are left together
    if noisy is None:
        assert not want.any()
    else:
        np.testing.assert_array_equal(noisy, want[0])
    for name in ("hist", "sums", "num"):
        np.testing.assert_array_equal(getattr(array, name), getattr(other, name), err_msg=name)


def test_the_grid_pass_takes_quiet_rows_and_leaves_the_others_untouched() -> None:
    # the property above could pass with every row left alone: show both outcomes occur here
    cfg = FaultStateConfig(history=4, min_windows=1, enter_threshold=0.6, exit_threshold=0.45)
    trackers = [FaultStateTracker(f"s{s}", CLASSES, "normal", cfg) for s in range(3)]
    array = trackers[0].new_array()
    for t in trackers:
        t.move_to(array)
    normal = np.array([0.94, 0.02, 0.02, 0.02], np.float32)
    for _ in range(4):
        step_rows(trackers, np.stack([normal] * 3), [1.0] * 3, [1.0] * 3)
    assert [t.snapshot().state for t in trackers] == ["normal"] * 3
    ball = np.array([0.02, 0.94, 0.02, 0.02], np.float32)
    before = array.num.copy()
    grid = np.stack([np.stack([normal, ball, normal])] * 4)  # row 1 turns to ball, rows 0 and 2 stay
    noisy = array.advance_quiet_grid(np.arange(3), grid)
    assert noisy is not None and noisy.tolist() == [False, True, False]
    np.testing.assert_array_equal(array.num[1], before[1])  # the noisy row is the step's to take
    assert [t.snapshot().windows for t in trackers] == [8, 4, 8]
    assert array.advance_quiet_grid(np.array([0, 2]), grid[:, [0, 2]]) is None  # all quiet: None


def _steady_array(rng: np.random.Generator, cfg: FaultStateConfig,
                  sensors: int) -> tuple[StateArray, np.ndarray]:
    """Like :func:`_warm_array`, but mostly long runs of one class per row (the rows are then
    steady, the case the steady pass takes), with now and then a jump, a pending change or a
    silence in a few rows."""
    trackers, array, cls, ts = _history(rng, cfg, sensors, 16, 0.02)
    if rng.random() < 0.2:
        trackers[int(rng.integers(sensors))].mark_no_data(ts)
    return array, cls


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cfg=st.sampled_from(CONFIGS), sensors=st.integers(1, 9),
       rounds=st.integers(1, 6), jump=st.sampled_from([0.0, 0.02, 0.3]), consecutive=st.booleans())
def test_the_steady_pass_equals_the_grid_pass_or_changes_nothing(seed: int, cfg: FaultStateConfig,
                                                                 sensors: int, rounds: int, jump: float,
                                                                 consecutive: bool) -> None:
    rng = np.random.default_rng(seed)
    array, cls = _steady_array(rng, cfg, sensors + 2)
    if consecutive:  # rows 1 .. sensors as a slice (a view), else in any order as an index array
        rows = np.arange(1, sensors + 1)
        at: slice | np.ndarray = slice(1, sensors + 1)
    else:
        rows = rng.permutation(sensors + 2)[:sensors].astype(np.intp)
        at = rows
    probs = _probs(rng, (rounds, sensors), cls[rows][None, :], jump)
    before = copy.deepcopy(array)
    other = copy.deepcopy(array)
    took = array.advance_steady(at, probs)
    if took:
        assert other.advance_quiet_grid(rows, probs) is None  # steady rows are quiet rows
    else:
        other = before  # nothing may have moved
    for name in ("hist", "sums", "num"):
        np.testing.assert_array_equal(getattr(array, name), getattr(other, name), err_msg=name)
