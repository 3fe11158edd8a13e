"""A daemon whose outbox cannot be written for a while (fault injection hook): degraded, never lossy.

The same scenario as the tmpfs test in test_reliability_mqtt.py, in process and without root:
the outbox's fault injection hook fails every commit exactly as SQLite reports a full disk.
Also checks what Prometheus shows meanwhile (``degraded``) and that ``events`` counts only
committed events.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from pathlib import Path

import pytest

from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from tests.daemon.support import Subscriber, base_config, retained, topic, unique_events
from tests.daemon.test_reliability_mqtt import changing, synthetic
from tests.support.broker import MosquittoBroker


def disk_full(op: str) -> None:
    """Fault injection: every outbox commit fails as on a full disk."""
    raise sqlite3.OperationalError("database or disk is full")


def wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_commits_failing_for_a_while_degrade_service_and_lose_nothing(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    cfg = base_config(broker.host, broker.port, tmp_path, [synthetic(changing("fan", 0.5, 12))])
    daemon = Daemon(validate_config_dict(cfg))
    sub = Subscriber(broker.host, broker.port)
    try:
        daemon.start()
        sub.wait_for(lambda s: len(s.events("fan")) >= 1, 15, "a first event")
        assert daemon.outbox is not None and daemon.publisher is not None
        pub = daemon.publisher
        daemon.outbox.fault_injection = disk_full
        t_fail = time.time()
        wait(lambda: pub.stats().events_held >= 2, 15, "events held in memory")
        wait(lambda: daemon.metrics.snapshot()["degraded"] == 1.0, 5, "the degraded gauge")
        held_snapshot = daemon.metrics.snapshot()
        daemon.outbox.fault_injection = None
        t_back = time.time()
        wait(lambda: not pub.stats().degraded and pub.stats().outbox_depth == 0, 10, "the catch-up")
        wait(lambda: daemon.metrics.snapshot()["degraded"] == 0.0, 5, "the degraded gauge to clear")
        states_meanwhile = [m for m in sub.on(topic("fan", "state")) if t_fail < m.t < t_back]
    finally:
        daemon.stop()
    snap = daemon.metrics.snapshot()
    sub.wait_for(lambda s: len(unique_events(s.events("fan"))) >= snap["events"]["by_sensor"]["fan"], 10,
                 "every committed event")
    sub.close()
    events = unique_events(sub.events("fan"))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(a["to"] == b["from"] for a, b in itertools.pairwise(events))
    assert snap["events"]["by_sensor"]["fan"] == len(events)
    # while failing, the held events were not counted as published
    assert held_snapshot["events"]["by_sensor"]["fan"] < len(events)
    assert snap["events_lost"] == 0 and snap["outbox_dropped"]["by_reason"] == {
        "full": 0.0, "expired": 0.0, "write_error": 0.0}
    assert states_meanwhile, "states must keep being published while the outbox cannot be written"
    assert retained(broker.host, broker.port, topic("fan", "state")).json()["seq"] == events[-1]["seq"]


@pytest.mark.slow
def test_outbox_drops_during_an_outage_are_visible_in_prometheus(tmp_path: Path) -> None:
    from urllib.request import urlopen

    from runtime.mqtt.local_broker import free_port

    cfg = base_config("127.0.0.1", free_port(), tmp_path, [synthetic(changing("fan", 0.3, 20))])  # no broker
    cfg["mqtt"]["outbox"]["max_messages"] = 2
    cfg["metrics"] = {"prometheus_port": 0, "prometheus_addr": "127.0.0.1"}
    daemon = Daemon(validate_config_dict(cfg))
    try:
        daemon.start()
        port = daemon.metrics.port

        def scrape() -> str:
            with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return str(r.read().decode())

        wait(lambda: 'drsn_edge_outbox_dropped_total{reason="full"} 0.0' not in scrape(), 20,
             "a drop to show up while the broker is unreachable")
        text = scrape()
    finally:
        daemon.stop()
    for name in ("drsn_edge_events_lost_total 0.0", "drsn_edge_callback_errors_total 0.0",
                 "drsn_edge_degraded 0.0", 'drsn_edge_outbox_dropped_total{reason="expired"} 0.0'):
        assert name in text, name
    assert "drsn_edge_broker_connected 0.0" in text
