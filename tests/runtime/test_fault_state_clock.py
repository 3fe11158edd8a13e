"""Durations run on the local clock, and a silent sensor is put in ``no_data`` (issue 10, defect 6).

A frame ``t0`` one hour back once suppressed a real fault for 25 s, and a step forward skipped
the minimum duration: ``min_duration_s`` ran on the sender's timestamps.
"""

from __future__ import annotations

import numpy as np

from runtime.fault_state import NO_DATA, UNKNOWN, FaultStateConfig, FaultStateTracker

CLASSES = ["normal", "inner_race", "outer_race"]
NORMAL = np.array([0.9, 0.05, 0.05], np.float32)
INNER = np.array([0.05, 0.9, 0.05], np.float32)


def _tracker(min_duration_s: float) -> FaultStateTracker:
    cfg = FaultStateConfig(history=3, min_windows=3, enter_threshold=0.6, exit_threshold=0.4,
                           min_duration_s=min_duration_s)
    return FaultStateTracker("s1", CLASSES, "normal", cfg)


def _feed(tr: FaultStateTracker, probs: np.ndarray, n: int, ts: list[float], now: list[float],
          step: float = 0.1, ts_step: float = 0.1) -> list[str]:
    states = []
    for _ in range(n):
        ts[0] += ts_step
        now[0] += step
        change = tr.update(probs, ts[0], now=now[0])
        if change is not None:
            states.append(change.to_state)
    return states


def test_a_sender_clock_one_hour_back_does_not_hold_a_fault_back() -> None:
    tr = _tracker(min_duration_s=1.0)
    ts, now = [1.7e9], [100.0]
    assert _feed(tr, NORMAL, 15, ts, now) == ["normal"]
    ts[0] -= 3600.0  # the gateway's clock steps back an hour as the fault starts
    got = _feed(tr, INNER, 20, ts, now)  # 2 s of local time, 0.1 s per window
    assert got == ["inner_race"]
    assert tr.snapshot().since is not None and tr.snapshot().since < 1.7e9, "events keep the sender's label"


def test_a_sender_clock_step_forward_does_not_skip_the_minimum_duration() -> None:
    tr = _tracker(min_duration_s=1.0)
    ts, now = [1.7e9], [100.0]
    assert _feed(tr, NORMAL, 15, ts, now) == ["normal"]
    changes = []
    for i in range(8):  # 0.8 s of local time while the sender's clock leaps an hour per window
        ts[0] += 3600.0
        now[0] += 0.1
        change = tr.update(INNER, ts[0], now=now[0])
        if change is not None:
            changes.append((i, change.to_state))
    assert changes == [], "the minimum duration is 1 s of local time, whatever the sender says"
    assert _feed(tr, INNER, 5, ts, now) == ["inner_race"]


def test_without_a_local_clock_the_window_timestamps_still_decide() -> None:
    tr = _tracker(min_duration_s=1.0)
    for i in range(30):
        change = tr.update(INNER, 1000.0 + 0.1 * i)
        if change is not None:
            break
    assert change is not None and change.ts >= 1000.0 + 1.0


def test_no_data_is_entered_once_and_left_when_windows_return() -> None:
    tr = _tracker(min_duration_s=0.0)
    ts, now = [1.7e9], [0.0]
    assert _feed(tr, INNER, 4, ts, now) == ["inner_race"]
    seq = tr.seq
    change = tr.mark_no_data(ts[0] + 30, "no windows for 30 s")
    assert change is not None and (change.from_state, change.to_state) == ("inner_race", NO_DATA)
    assert change.seq == seq + 1 and change.fault is None and change.reason == "no windows for 30 s"
    snap = tr.snapshot()
    assert snap.state == NO_DATA and snap.class_index is None and snap.fault is None and tr.no_data
    assert tr.mark_no_data(ts[0] + 60) is None, "a silent sensor gives one event, not one per tick"
    back = tr.update(NORMAL, ts[0] + 61, now=61.0)
    assert back is not None and (back.from_state, back.to_state, back.reason) == (NO_DATA, UNKNOWN,
                                                                                  "data resumed")
    assert not tr.no_data and tr.state == UNKNOWN
    ts[0] += 61
    now[0] = 61.0
    assert _feed(tr, NORMAL, 3, ts, now) == ["normal"], "the warm-up starts over after a silence"
    assert tr.seq == seq + 3, "no_data, unknown, normal: the event chain has no gap"


def test_a_reset_while_in_no_data_leaves_it() -> None:
    tr = _tracker(min_duration_s=0.0)
    tr.mark_no_data(1.0)
    change = tr.reset(2.0, "model reloaded")
    assert change is not None and (change.from_state, change.to_state) == (NO_DATA, UNKNOWN)
    assert not tr.no_data
