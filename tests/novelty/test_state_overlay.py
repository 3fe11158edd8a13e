"""The novelty overlay on the fault state: ``unfamiliar``/``anomalous`` laid over the class state,
with the closest class, and the class decided meanwhile restored when it lifts."""

from __future__ import annotations

import numpy as np

from runtime.fault_state import ANOMALOUS, NO_DATA, UNFAMILIAR, FaultStateConfig, FaultStateTracker

CLASSES = ["normal", "ball", "inner_race"]
CFG = FaultStateConfig(history=2, min_windows=2, enter_threshold=0.6, exit_threshold=0.4)
NORMAL = np.array([0.98, 0.01, 0.01])
BALL = np.array([0.01, 0.98, 0.01])


def _tracker() -> FaultStateTracker:
    t = FaultStateTracker("s", CLASSES, "normal", CFG)
    for ts in (1.0, 2.0):
        t.update(NORMAL, ts)
    assert t.state == "normal"
    return t


def test_unfamiliar_is_entered_once_and_carries_the_closest_class() -> None:
    t = _tracker()
    change = t.set_novelty(UNFAMILIAR, 1, 0.99, 9.5, ts=3.0)
    assert change is not None
    assert (change.from_state, change.to_state, change.class_index, change.fault) == ("normal", UNFAMILIAR,
                                                                                      None, None)
    assert (change.closest_class, change.closest_probability, change.novelty_score) == ("ball", 0.99, 9.5)
    assert t.set_novelty(UNFAMILIAR, 1, 0.98, 9.7, ts=4.0) is None  # still unfamiliar: no second event
    snap = t.snapshot()
    assert (snap.state, snap.class_index, snap.closest_class, snap.novelty_score) == (UNFAMILIAR, None,
                                                                                     "ball", 9.7)
    assert snap.since == 3.0 and snap.seq == change.seq


def test_class_changes_under_the_overlay_are_silent_and_restored_when_it_lifts() -> None:
    t = _tracker()
    t.set_novelty(UNFAMILIAR, 1, 0.99, 9.5, ts=3.0)
    assert [t.update(BALL, ts) for ts in (4.0, 5.0, 6.0)] == [None, None, None]
    assert t.state == UNFAMILIAR
    back = t.set_novelty(None, 1, 0.99, 2.0, ts=7.0)
    assert back is not None
    assert (back.from_state, back.to_state, back.class_index, back.fault) == (UNFAMILIAR, "ball", 1, True)
    assert back.closest_class is None
    assert t.state == "ball" and t.snapshot().closest_class is None


def test_anomalous_gives_way_to_unfamiliar_and_no_data_clears_both() -> None:
    t = _tracker()
    assert t.set_novelty(ANOMALOUS, 0, 0.97, 40.0, ts=3.0) is not None
    change = t.set_novelty(UNFAMILIAR, 0, 0.97, 9.0, ts=4.0)
    assert change is not None and (change.from_state, change.to_state) == (ANOMALOUS, UNFAMILIAR)
    gone = t.mark_no_data(ts=5.0)
    assert gone is not None and (gone.from_state, gone.to_state) == (UNFAMILIAR, NO_DATA)
    assert t.set_novelty(UNFAMILIAR, 0, 0.97, 9.0, ts=6.0) is None  # no overlay while no data
    assert t.state == NO_DATA


def test_reset_leaves_the_overlay_with_an_event() -> None:
    t = _tracker()
    t.set_novelty(UNFAMILIAR, 1, 0.99, 9.5, ts=3.0)
    change = t.reset(ts=4.0, reason="model reloaded")
    assert change is not None and (change.from_state, change.to_state) == (UNFAMILIAR, "unknown")
