"""The daemon-side envelope monitor: ring buffer, event enrichment, corroboration, own alerts."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from runtime.diagnostics.config import DiagnosticsConfig
from runtime.diagnostics.monitor import EnvelopeMonitor, SampleRing, fault_type_of_class
from runtime.errors import ConfigError
from runtime.signals.simulator import BearingSimulator

FS = 12000.0


class Sinks:
    """Collects what the monitor publishes (the daemon's publisher stands behind these in production)."""

    def __init__(self, healthy: bool = True) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.states: list[str] = []
        self.alerts: list[tuple[str, dict[str, Any]]] = []
        self.healthy = healthy
        self.done = threading.Event()

    def kwargs(self) -> dict[str, Any]:
        return {
            "publish_events": self._events,
            "publish_state": self.states.append,
            "publish_alert": lambda s, p: self.alerts.append((s, p)),
            "is_healthy": lambda s: self.healthy,
        }

    def _events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        self.events.extend(events)
        self.done.set()


def _monitor(condition: str, sinks: Sinks, **cfg: Any) -> EnvelopeMonitor:
    config = DiagnosticsConfig(bearing="6205", rpm=1797, **cfg)
    mon = EnvelopeMonitor.build({"s1": config}, {"s1": FS}, **sinks.kwargs())
    mon.feed("s1", BearingSimulator(condition, sample_rate=FS, rpm=1797, seed=2).generate(int(2 * FS)))
    mon.start()
    return mon


def test_the_ring_keeps_the_latest_samples_in_order() -> None:
    ring = SampleRing(5)
    ring.push(np.arange(3))
    assert ring.snapshot().tolist() == [0, 1, 2]
    ring.push(np.arange(3, 9))
    assert ring.snapshot().tolist() == [4, 5, 6, 7, 8]
    ring.push(np.array([9.0]))
    assert ring.snapshot().tolist() == [5, 6, 7, 8, 9]


def test_class_names_map_to_fault_types() -> None:
    assert [fault_type_of_class(c) for c in ("IR007", "OR014@6", "B021", "ball", "normal", "imbalance")] == [
        "inner_race",
        "outer_race",
        "ball",
        "ball",
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("condition", "cls", "corroborated"),
    [
        ("inner_race", "IR007", True),
        ("outer_race", "IR007", False),
        ("inner_race", "imbalance", "not_applicable"),
    ],
)
def test_a_fault_entry_event_carries_the_evidence(condition: str, cls: str, corroborated: object) -> None:
    sinks = Sinks()
    mon = _monitor(condition, sinks)
    mon.submit("s1", {"to": cls, "seq": 1}, cls, entered_fault=True)
    mon.close()
    ((sensor, payload),) = sinks.events
    assert sensor == "s1" and payload["corroborated"] == corroborated
    assert payload["envelope"]["verdict"] == condition
    assert payload["envelope"]["harmonics_found"] >= 2 and payload["envelope"]["prominence_db"] > 10
    assert payload["alert"] is True  # corroboration not required
    assert mon.state_fields("s1")["envelope"]["verdict"] == condition and sinks.states == ["s1"]


def test_required_corroboration_marks_an_unconfirmed_fault_as_no_alert() -> None:
    sinks = Sinks()
    mon = _monitor("outer_race", sinks, require_corroboration=True)
    mon.submit("s1", {"to": "IR007", "seq": 1}, "IR007", entered_fault=True)
    mon.submit("s1", {"to": "normal", "seq": 2}, "normal", entered_fault=False)
    mon.close()
    assert [p["seq"] for _, p in sinks.events] == [1, 2]  # in order
    assert sinks.events[0][1]["corroborated"] is False and sinks.events[0][1]["alert"] is False
    assert sinks.events[1][1]["corroborated"] == "not_applicable" and "envelope" not in sinks.events[1][1]


def test_a_failed_analysis_still_publishes_the_event() -> None:
    sinks = Sinks()
    config = DiagnosticsConfig(bearing="6205", rpm=1797)
    mon = EnvelopeMonitor.build({"s1": config}, {"s1": FS}, **sinks.kwargs())
    mon.start()  # the ring is still empty: too short to analyse
    mon.submit("s1", {"to": "IR007", "seq": 1}, "IR007", entered_fault=True)
    mon.close()
    ((_, payload),) = sinks.events
    assert "too short" in payload["envelope"]["error"] and payload["corroborated"] == "not_applicable"
    assert mon.stats.errors == 1


def test_a_strong_signature_the_classifier_does_not_see_raises_one_alert() -> None:
    sinks = Sinks(healthy=True)
    mon = _monitor("outer_race", sinks, alert_unseen=True, every_s=5)
    now = time.monotonic()
    mon.supervise(now + 6)
    mon.supervise(now + 12)  # same signature again: no second alert
    mon.close()
    assert len(sinks.alerts) == 1 and sinks.alerts[0][1]["fault_type"] == "outer_race"
    assert mon.stats.analyses == 2


def test_a_dead_worker_is_restarted_by_supervision() -> None:
    sinks = Sinks()
    mon = _monitor("inner_race", sinks)
    mon._jobs.put(None)  # the worker ends as if it had died
    assert mon._worker is not None
    mon._worker.join(5)
    mon.supervise()
    assert mon.stats.restarts == 1
    mon.submit("s1", {"to": "IR007", "seq": 1}, "IR007", entered_fault=True)
    mon.close()
    assert sinks.events and sinks.events[0][1]["corroborated"] is True


@pytest.mark.parametrize(
    ("cfg", "words"),
    [
        ({"bearing": "6309", "rpm": 1797}, "catalogue holds"),
        ({"bearing": "6205", "rpm": 0}, "positive"),
        (
            {"bearing": {"n_elements": 9, "element_diameter_mm": 40, "pitch_diameter_mm": 39}, "rpm": 1797},
            "smaller",
        ),
        ({"bearing": "6205"}, "rpm"),
    ],
)
def test_bad_diagnostics_config_is_refused(cfg: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        DiagnosticsConfig(**cfg)


def test_a_buffer_too_short_says_the_length_needed() -> None:
    with pytest.raises(ConfigError, match=r"needs at least 0\.47 s \(5589 samples\)"):
        DiagnosticsConfig(bearing="6205", rpm=1797, seconds=0.2).buffer_samples(FS)


def test_route_takes_only_the_diagnosed_sensors_events() -> None:
    from runtime.fault_state import StateChange

    def change(sensor: str, to: str, fault: bool) -> StateChange:
        return StateChange(sensor, 1, f"id-{sensor}", "normal", to, 1, fault, 0.9, 0.0, None, "entered")

    sinks = Sinks()
    mon = _monitor("inner_race", sinks)
    events = [("s1", {"to": "IR007", "seq": 1}), ("other", {"to": "OR007@6", "seq": 1})]
    rest = mon.route(events, [change("s1", "IR007", True), change("other", "OR007@6", True)])
    mon.close()
    assert rest == [("other", {"to": "OR007@6", "seq": 1})]
    assert [s for s, _ in sinks.events] == ["s1"] and sinks.events[0][1]["corroborated"] is True


def test_a_flapping_state_reuses_recent_evidence_instead_of_analysing_again() -> None:
    sinks = Sinks()
    mon = _monitor("inner_race", sinks, reuse_s=10)
    for seq in (1, 2, 3):  # three fault entries on the same ring content
        mon.submit("s1", {"to": "IR007", "seq": seq}, "IR007", entered_fault=True)
    mon.close()
    assert mon.stats.analyses == 1 and mon.stats.reused == 2
    assert [p["envelope"]["ts"] for _, p in sinks.events] == [sinks.events[0][1]["envelope"]["ts"]] * 3
    assert all(p["corroborated"] is True for _, p in sinks.events)
