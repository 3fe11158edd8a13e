"""A broker outage in the middle of a stream loses no event, duplicates none, and keeps their order.

Two simulated machines change condition every second or so, so the fault state changes several
times; the broker is stopped until events are waiting in the outbox, then restarted on the same
port. The subscriber has a persistent session on a broker with persistence, so it gets everything
the broker accepted, including what was published while the subscriber itself was reconnecting.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from tests.daemon.support import Subscriber, base_config, retained, topic, unique_events
from tests.support.broker import MosquittoBroker, mosquitto_binary

PLANS = {
    "press-a": [(1.0, "inner_race"), (2.0, "normal"), (3.0, "outer_race"), (4.0, "normal"), (5.0, "ball"),
                (6.0, "normal")],
    "press-b": [(1.5, "outer_race"), (3.5, "normal"), (5.5, "inner_race")],
}
SECONDS = 7.0


@pytest.fixture
def persistent_broker() -> Iterator[MosquittoBroker]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed; `apt-get install mosquitto`")
    with MosquittoBroker(persistence=True) as b:
        yield b


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def is_subsequence(wanted: list[str], seen: list[str]) -> bool:
    """Each planned condition was entered, in order (a window spanning a step may add a brief state)."""
    it = iter(seen)
    return all(any(x == w for x in it) for w in wanted)


@pytest.mark.slow
def test_every_event_arrives_once_per_id_in_order_across_a_broker_restart(
    tmp_path: Path, persistent_broker: MosquittoBroker
) -> None:
    b = persistent_broker
    sensors = [{"id": sid, "condition": "normal",
                "schedule": [{"at_s": t, "condition": c} for t, c in plan]} for sid, plan in PLANS.items()]
    source = {"type": "synthetic", "pacing": "realtime", "duration_s": SECONDS, "chunk": 512,
              "sensors": sensors}
    steady = {"history": 6, "min_windows": 3, "enter_threshold": 0.7, "exit_threshold": 0.4}
    daemon = Daemon(validate_config_dict(base_config(b.host, b.port, tmp_path, [source], fault_state=steady)))
    sub = Subscriber(b.host, b.port, (topic("+", "event"),), client_id="scada-historian", clean=False)
    try:
        daemon.start()
        sub.wait_for(lambda s: len(s.events("press-a")) >= 2, 10, "the first events of press-a")

        b.stop()
        t_down = time.time()
        pub = daemon.publisher
        assert pub is not None
        wait(lambda: pub.stats().outbox_depth >= 3, 10, "events to pile up in the outbox")
        time.sleep(max(0.0, 3.0 - (time.time() - t_down)))  # an outage of several seconds
        assert not pub.stats().connected
        b.start()
        t_up = time.time()

        wait(lambda: all(s.finished.is_set() for s in daemon.sources), 15, "the simulated run to end")
        daemon.stop()  # drains every window and flushes the outbox
        produced = daemon.metrics.snapshot()["events"]["by_sensor"]
        for sid in PLANS:
            sub.wait_for(lambda s, sid=sid: len(unique_events(s.events(sid))) >= produced[sid], 10,
                         f"all {produced[sid]:.0f} events of {sid}")
    finally:
        daemon.stop()
        sub.close()

    during_outage = 0
    for sid, plan in PLANS.items():
        events = unique_events(sub.events(sid))
        assert len(events) == produced[sid] >= len(plan) + 1  # unknown -> normal, then one per step
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "seq must rise by one per event"
        assert all(a["to"] == b_["from"] for a, b_ in itertools.pairwise(events)), "a change is missing"
        assert is_subsequence([c for _, c in plan], [e["to"] for e in events]), "a step was not detected"
        during_outage += sum(t_down <= e["ts"] <= t_up for e in events)
        state = retained(b.host, b.port, topic(sid, "state")).json()
        assert state["state"] == events[-1]["to"] and state["seq"] == events[-1]["seq"]
    assert during_outage >= 2, "the outage should have held back some events"
