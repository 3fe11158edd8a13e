"""FaultStateTracker: warm-up, hysteresis, minimum duration, k-of-n votes, event identity."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from runtime.errors import ConfigError, DataError
from runtime.fault_state import UNKNOWN, FaultStateConfig, FaultStateTracker, StateChange

CLASSES = ["normal", "inner_race", "outer_race"]


def _p(fault: float, cls: int = 1) -> np.ndarray:
    """Probabilities with ``fault`` on class ``cls`` and the rest on 'normal'."""
    p = np.zeros(3, dtype=np.float32)
    p[cls] = fault
    p[0] += 1.0 - fault
    return p


def _tracker(start_seq: int = 0, **cfg: object) -> FaultStateTracker:
    return FaultStateTracker("pump-1", CLASSES, "normal", FaultStateConfig(**cfg), start_seq=start_seq)


def _feed(
    t: FaultStateTracker, fault_probs: list[float], dt: float = 0.1, t0: float = 0.0
) -> list[StateChange]:
    events = []
    for i, f in enumerate(fault_probs):
        e = t.update(_p(f), t0 + i * dt)
        if e is not None:
            events.append(e)
    return events


def test_unknown_until_min_windows_then_a_class() -> None:
    t = _tracker(min_windows=4, history=4)
    assert [t.update(_p(0.05), i) for i in range(3)] == [None, None, None]
    assert t.state == UNKNOWN and t.snapshot().fault is None
    e = t.update(_p(0.05), 3)
    assert e is not None and (e.from_state, e.to_state, e.seq, e.fault) == (UNKNOWN, "normal", 1, False)
    snap = t.snapshot()
    assert (snap.state, snap.class_index, snap.since, snap.windows) == ("normal", 0, 3, 4)
    assert snap.confidence == pytest.approx(0.95)


def test_no_class_confident_enough_stays_unknown() -> None:
    t = _tracker(min_windows=1, history=1, enter_threshold=0.8, exit_threshold=0.5)
    assert _feed(t, [0.5, 0.4, 0.6]) == []
    assert t.state == UNKNOWN


def test_hysteresis_prevents_flapping_around_the_threshold() -> None:
    hovering = [0.45, 0.55] * 20  # the fault probability wobbles across 0.5
    flappy = _tracker(min_windows=1, history=1, enter_threshold=0.5, exit_threshold=0.5)
    calm = _tracker(min_windows=1, history=1, enter_threshold=0.7, exit_threshold=0.3)
    assert len(_feed(flappy, [0.0, *hovering])) > 20
    assert [e.to_state for e in _feed(calm, [0.0, *hovering])] == ["normal"]
    # once in the fault state, the same wobble does not leave it either
    more = _feed(calm, [0.9, *hovering, 0.1], t0=10.0)
    assert [(e.from_state, e.to_state) for e in more] == [("normal", "inner_race"), ("inner_race", "normal")]


def test_min_duration_filters_short_bursts() -> None:
    t = _tracker(min_windows=1, history=1, min_duration_s=1.0)
    assert [e.ts for e in _feed(t, [0.0] * 5, dt=0.25)] == [1.0]  # leaving 'unknown' is debounced too
    burst = _feed(t, [0.9] * 9 + [0.0], dt=0.1, t0=1.0)  # 0.8 s of fault evidence, then gone
    assert burst == [] and t.state == "normal"
    lasting = _feed(t, [0.9] * 15, dt=0.1, t0=5.0)
    assert len(lasting) == 1 and lasting[0].to_state == "inner_race"
    assert lasting[0].ts == pytest.approx(6.0)  # published once the evidence had lasted 1 s


def test_mean_smoothing_needs_sustained_evidence() -> None:
    t = _tracker(min_windows=5, history=5, enter_threshold=0.7, exit_threshold=0.5)
    _feed(t, [0.0] * 5)
    assert _feed(t, [1.0, 1.0, 1.0], t0=1.0) == []  # mean over 5 is 0.6: not yet
    assert [e.to_state for e in _feed(t, [1.0], t0=2.0)] == ["inner_race"]  # mean 0.8


def test_k_of_n_votes() -> None:
    t = _tracker(smoothing="vote", history=5, votes=3, min_windows=5, exit_threshold=0.5)
    _feed(t, [0.0] * 5)
    assert _feed(t, [0.9, 0.0, 0.9, 0.0, 0.0], t0=1.0) == []  # 2 of 5 votes
    events = _feed(t, [0.9, 0.9], t0=2.0)  # the last five now hold 3 fault votes
    assert [e.to_state for e in events] == ["inner_race"] and events[0].confidence == pytest.approx(0.6)
    assert events[0].ts == pytest.approx(2.1)


def test_other_fault_class_is_a_change_of_state() -> None:
    t = _tracker(min_windows=1, history=1)
    t.update(_p(0.0), 0.0)
    t.update(_p(0.9, cls=1), 1.0)
    e = t.update(_p(0.95, cls=2), 2.0)
    assert e is not None
    assert (e.from_state, e.to_state, e.class_index, e.fault) == ("inner_race", "outer_race", 2, True)
    assert e.since == 1.0


def test_seq_is_monotonic_continues_after_restart_and_ids_are_unique() -> None:
    t = _tracker(start_seq=41, min_windows=1, history=1, enter_threshold=0.5, exit_threshold=0.5)
    events = _feed(t, [0.0, 0.9] * 25)
    seqs = [e.seq for e in events]
    assert seqs == list(range(42, 42 + len(events))) and len(events) == 50
    assert len({e.id for e in events}) == len(events)
    assert t.seq == seqs[-1] and t.snapshot().seq == seqs[-1]
    last = events[-1]
    assert (last.sensor_id, last.to_state, t.snapshot().state) == ("pump-1", "inner_race", "inner_race")


def test_reset_returns_to_unknown_with_an_event() -> None:
    t = _tracker(min_windows=2, history=2)
    _feed(t, [0.0, 0.0])
    e = t.reset(5.0, reason="stale")
    assert e is not None
    assert (e.from_state, e.to_state, e.reason, e.fault) == ("normal", UNKNOWN, "stale", None)
    assert t.reset(6.0) is None
    assert t.update(_p(0.0), 7.0) is None  # warm-up starts over


def test_bad_probabilities_and_healthy_class_are_rejected() -> None:
    t = _tracker()
    with pytest.raises(DataError, match="3 finite"):
        t.update(np.ones(2), 0.0)
    with pytest.raises(DataError):
        t.update(np.array([np.nan, 0.5, 0.5]), 0.0)
    with pytest.raises(ConfigError, match="healthy"):
        FaultStateTracker("x", CLASSES, "ok")


def test_config_validation_and_descriptions() -> None:
    with pytest.raises(ValidationError, match="votes"):
        FaultStateConfig(smoothing="vote", history=3, votes=4)
    with pytest.raises(ValidationError, match="exit_threshold"):
        FaultStateConfig(enter_threshold=0.6, exit_threshold=0.8)
    with pytest.raises(ValidationError):
        FaultStateConfig(window=5)  # type: ignore[call-arg]
    assert FaultStateConfig(history=5).required_votes == 3 and FaultStateConfig(history=6).required_votes == 4
    for name, field in FaultStateConfig.model_fields.items():
        assert field.description, name
