"""The publisher under faults: hostile commands, raising callbacks, a full disk, a hung broker.

All against a real Mosquitto (or, for a broker that never acknowledges, a fake at the socket).
Each test ends by showing that events are still acknowledged: the failure this file guards
against is silence, a daemon that looks connected while nothing leaves the outbox.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.mqtt.config import MqttConfig
from runtime.mqtt.outbox import Outbox
from runtime.mqtt.publisher import MqttPublisher
from tests.mqtt.support import FakeSilentBroker, Recorder, command, listening, make_config, wait_until
from tests.support.broker import MosquittoBroker

Running = Callable[..., MqttPublisher]
Recorders = Callable[..., Recorder]
STATE = {"state": "normal"}


def disk_full(op: str) -> None:
    """Fault injection: the outbox's commit fails exactly as SQLite reports a full disk."""
    raise sqlite3.OperationalError("database or disk is full")


def delivered(pub: MqttPublisher, rec: Recorder, sensor: str, n: int, timeout: float = 10.0) -> list[int]:
    """Wait until ``n`` events of ``sensor`` arrived and the outbox is empty; their seqs."""
    topic = pub.topics.event(sensor)
    assert rec.wait_for(lambda msgs: sum(m.topic == topic for m in msgs) >= n, timeout), rec.topics()
    assert wait_until(lambda: pub.stats().outbox_depth == 0, timeout), pub.stats()
    return [m.json()["seq"] for m in rec.on(topic)]


def _pinging_handler(pings: list[str], failure: BaseException) -> Callable[[dict[str, Any]], None]:
    """A command handler that notes ``ping`` (to know the link listens) and raises ``failure`` otherwise."""

    def handler(cmd: dict[str, Any]) -> None:
        if cmd["action"] == "ping":
            pings.append("ping")
            return
        raise failure

    return handler


def test_a_deeply_nested_command_leaves_event_delivery_running(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    got: list[dict[str, Any]] = []
    rec = recorder("drsn-edge/press-7/+/event")
    pub = running(make_config(broker, tmp_path), on_command=got.append)
    listening(pub, broker, lambda: bool(got))
    attack = b"[" * 1000 + b"]" * 1000  # the 2 KB message that once ended paho's network thread
    for payload in (attack, b"\xff" * 5000, b'{"action": "reload"}'):
        command(pub, broker, payload)
    assert wait_until(lambda: [c for c in got if c["action"] != "ping"] == [{"action": "reload"}])
    for i in range(5):
        pub.publish_event("spindle", {"i": i})
    assert delivered(pub, rec, "spindle", 5) == [1, 2, 3, 4, 5]
    st = pub.stats()
    assert st.connected and st.callback_errors == 0 and st.connection_losses == 0


def test_a_raising_command_handler_is_counted_and_delivery_goes_on(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    pings: list[str] = []
    handler = _pinging_handler(pings, RuntimeError("handler bug"))
    rec = recorder("drsn-edge/press-7/+/event")
    pub = running(make_config(broker, tmp_path), on_command=handler)
    listening(pub, broker, lambda: bool(pings))
    for _ in range(3):
        command(pub, broker, b'{"action": "reload"}')
    assert wait_until(lambda: pub.stats().callback_errors == 3)
    pub.publish_event("spindle", {"i": 1})
    assert delivered(pub, rec, "spindle", 1) == [1]


def test_a_handler_that_exits_neither_ends_the_worker_nor_the_connection(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    """Commands are handled on the MQTT worker (it runs paho's loop): a handler raising SystemExit,
    which escapes every ``except Exception`` (as RecursionError once escaped paho's own thread),
    is counted as a callback error and events keep flowing on the same connection."""
    pings: list[str] = []
    handler = _pinging_handler(pings, SystemExit("escapes every 'except Exception'"))
    rec = recorder("drsn-edge/press-7/+/event")
    pub = running(make_config(broker, tmp_path), on_command=handler)
    listening(pub, broker, lambda: bool(pings))
    command(pub, broker, b'{"action": "reload"}')
    assert wait_until(lambda: pub.stats().callback_errors == 1, 5), pub.stats()
    pub.publish_event("spindle", {"i": 1})
    assert delivered(pub, rec, "spindle", 1) == [1]
    assert pub.alive and pub.stats().connects == 1 and pub.failure is None


def test_disk_full_holds_events_in_memory_publishes_states_and_catches_up(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    committed: list[str] = []
    rec = recorder("drsn-edge/press-7/#")
    pub = running(make_config(broker, tmp_path), on_committed=committed.extend)
    assert wait_until(lambda: pub.connected)
    pub.publish_event("a", {"i": 0})
    assert wait_until(lambda: pub.stats().outbox_depth == 0, 15), pub.stats()  # acked before the disk fills
    pub.outbox.fault_injection = disk_full
    receipts = [pub.publish_event(s, {"i": i}) for i in range(1, 4) for s in ("a", "b")]
    assert [r.row for r in receipts] == [None] * 6 and [r.seq for r in receipts] == [2, 1, 3, 2, 4, 3]
    pub.publish_state("a", {"state": "ball"})
    rec.wait_topic(pub.topics.state("a"), b'{"state":"ball"}')  # states need no disk
    st = pub.stats()
    assert st.degraded and st.events_held == 6 and st.outbox_depth == 0 and st.events_lost == 0
    assert pub.outbox.get_meta("seq/a") == "1"  # nothing of the failed attempts reached the file
    pub.outbox.fault_injection = None  # space is back: the worker writes the held events by itself
    assert delivered(pub, rec, "a", 4) == [1, 2, 3, 4]
    assert delivered(pub, rec, "b", 3) == [1, 2, 3]
    # the PUBACKs and the degraded flag settle on the worker thread, after the recorder saw the messages
    assert wait_until(lambda: not pub.stats().degraded and pub.stats().outbox_depth == 0, 15), pub.stats()
    st = pub.stats()
    assert st.events_held == 0 and st.outbox_write_errors >= 1
    assert sorted(committed) == ["a"] * 4 + ["b"] * 3  # counted once each, when on disk
    assert pub.outbox.get_meta("seq/a") == "4" and pub.outbox.get_meta("seq/b") == "3"


def test_events_beyond_the_memory_bound_are_lost_oldest_first_and_counted(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    rec = recorder("drsn-edge/press-7/+/event")
    cfg = make_config(broker, tmp_path, outbox={"path": str(tmp_path / "o.db"), "memory_max_messages": 3})
    pub = running(cfg)
    assert wait_until(lambda: pub.connected)
    pub.outbox.fault_injection = disk_full
    for i in range(5):
        pub.publish_event("a", {"i": i})
    assert pub.stats().events_lost == 2 and pub.stats().events_held == 3
    pub.outbox.fault_injection = None
    assert delivered(pub, rec, "a", 3) == [3, 4, 5]  # the gap in seq shows the loss to subscribers


def test_a_hung_broker_is_detected_by_missing_pubacks_and_delivery_resumes(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    rec = recorder("drsn-edge/press-7/+/event")
    pub = running(make_config(broker, tmp_path, ack_timeout_s=1.0))
    assert wait_until(lambda: pub.connected)
    broker.pause()
    try:
        pub.publish_event("a", {"i": 1})
        assert wait_until(lambda: pub.stats().stalled_connections == 1, 6), pub.stats()
        assert "no PUBACK" in (pub.stats().last_error or "")
    finally:
        broker.resume()
    assert set(delivered(pub, rec, "a", 1, timeout=15)) == {1}  # twice if the old link's copy got through
    assert pub.failure is None


def test_a_broker_that_never_acknowledges_makes_the_publisher_give_up(tmp_path: Path) -> None:
    fake = FakeSilentBroker()
    cfg = MqttConfig.model_validate({
        "host": fake.host, "port": fake.port, "device_id": "press-7", "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.2, "ack_timeout_s": 0.5, "max_stalled_connections": 2,
        "outbox": {"path": str(tmp_path / "o.db"), "synchronous": "normal"},
    })
    pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox))
    pub.start()
    try:
        pub.publish_event("a", {"i": 1})
        assert wait_until(lambda: pub.failure is not None, 10), pub.stats()
        assert fake.connects == 2 and pub.stats().stalled_connections == 2
        assert "2 MQTT connections in a row made no progress" in (pub.failure or "")
        assert pub.outbox.depth == 1  # still stored for the next start
    finally:
        pub.close(timeout=0.5)
        pub.outbox.close()
        fake.close()


def test_stop_on_a_full_disk_counts_the_held_events_as_lost(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    cfg = make_config(broker, tmp_path)
    pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox))
    pub.start()
    pub.outbox.fault_injection = disk_full
    pub.publish_event("a", {"i": 1})
    pub.close(timeout=0.5)
    pub.outbox.close()
    assert pub.stats().events_lost == 1 and pub.stats().events_held == 0


def test_commands_can_be_switched_off(broker: MosquittoBroker, tmp_path: Path, running: Running) -> None:
    got: list[dict[str, Any]] = []
    seen = threading.Event()
    pub = running(make_config(broker, tmp_path, commands={"enabled": False}),
                  on_command=lambda c: (got.append(c), seen.set()))
    assert wait_until(lambda: pub.connected)
    for _ in range(10):  # for a second: a subscription made late would still catch one
        command(pub, broker, b'{"action": "reload"}')
        time.sleep(0.1)
    assert not seen.wait(0.3) and got == []


def test_only_allowed_actions_reach_the_handler(
    broker: MosquittoBroker, tmp_path: Path, running: Running
) -> None:
    got: list[str] = []
    pub = running(make_config(broker, tmp_path, commands={"allow": ["ping", "reload"]}),
                  on_command=lambda c: got.append(c["action"]))
    listening(pub, broker, lambda: bool(got))
    for action in ("shutdown", "reload"):
        command(pub, broker, f'{{"action": "{action}"}}'.encode())
    assert wait_until(lambda: "reload" in got)
    time.sleep(0.2)
    assert [a for a in got if a != "ping"] == ["reload"]


def test_paho_looping_after_the_socket_closed_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from runtime.mqtt.connection import build_client
    from runtime.mqtt.topics import Topics

    cfg = MqttConfig.model_validate({"device_id": "press-7", "outbox": {"path": str(tmp_path / "o.db")}})
    client = build_client(cfg, Topics(cfg.topic_prefix, cfg.device_id), None)
    caplog.set_level(logging.DEBUG)
    client.loop(0.01)  # what paho's thread does once more after disconnect() closed the socket
    records = [r for r in caplog.records if "Client is not connected" in r.getMessage()]
    assert records and all(r.levelno == logging.DEBUG for r in records)
