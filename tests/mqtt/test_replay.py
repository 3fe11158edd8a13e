"""Nothing is lost: broker outages, a broker down at start, a publisher killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime.mqtt.config import MqttConfig
from runtime.mqtt.outbox import Outbox
from runtime.mqtt.publisher import MqttPublisher
from tests.mqtt.support import PersistentBroker, Received, Recorder, make_config, wait_until
from tests.support.broker import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def child_publisher(
    cfg: MqttConfig, tmp_path: Path, events: int, wait: bool, batch: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """A real publisher in a child process; yields once it printed READY, kills it at exit."""
    cfg_path = tmp_path / "child.json"
    cfg_path.write_text(cfg.model_dump_json())
    args = [sys.executable, "-m", "tests.mqtt.child_publisher", str(cfg_path), str(events)]
    args += ["wait"] if wait else []
    args += ["batch"] if batch else []
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            proc.kill()
            raise AssertionError(f"child publisher failed: {line}{proc.communicate()[1]}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def first_occurrences(messages: list[Received]) -> list[dict[str, object]]:
    """Event documents deduplicated by id, in arrival order of their first copy."""
    seen: set[object] = set()
    docs = []
    for m in messages:
        doc = m.json()
        if doc["id"] not in seen:
            seen.add(doc["id"])
            docs.append(doc)
    return docs


def test_last_will_is_offline_when_the_process_is_killed(broker: MosquittoBroker, tmp_path: Path) -> None:
    rec = Recorder(broker)
    try:
        cfg = make_config(broker, tmp_path)
        status = f"{cfg.topic_prefix}/{cfg.device_id}/status"
        with child_publisher(cfg, tmp_path, events=3, wait=True) as proc:
            rec.wait_topic(status, b"online")
            os.kill(proc.pid, signal.SIGKILL)
            rec.wait_topic(status, b"offline")
        late = Recorder(broker, (status,))
        assert late.wait_topic(status).payload == b"offline" and late.on(status)[0].retain
        late.close()
        assert len(rec.on(f"{cfg.topic_prefix}/{cfg.device_id}/spindle/event")) == 3
    finally:
        rec.close()


def test_broker_outage_mid_stream_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    with PersistentBroker() as broker:
        rec = Recorder(broker, ("+/+/+/event",), client_id="outage-recorder", clean=False)
        cfg = make_config(broker, tmp_path, max_inflight=8)
        pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox))
        pub.start()
        assert wait_until(lambda: pub.connected)
        total = 300
        stream = threading.Thread(target=_stream_events, args=(pub, total, 0.004))
        stream.start()
        assert wait_until(lambda: len(rec.messages) >= 60)
        broker.stop()
        time.sleep(1.5)
        broker.start()
        stream.join(30)
        try:
            assert rec.wait_for(lambda msgs: len({m.json()["id"] for m in msgs}) >= total, timeout=15)
            docs = first_occurrences(rec.messages)
            assert [d["seq"] for d in docs] == list(range(1, total + 1))  # no gap, in order
            assert [d["n"] for d in docs] == list(range(total))
            duplicates = len(rec.messages) - total
            assert duplicates <= cfg.max_inflight  # only what was in flight when the broker went away
            assert wait_until(lambda: pub.outbox.depth == 0)
            assert pub.stats().connection_losses >= 1
        finally:
            pub.close(timeout=1.0)
            pub.outbox.close()
            rec.close()


def _stream_events(pub: MqttPublisher, total: int, period: float) -> None:
    for n in range(total):
        pub.publish_event("spindle", {"state": "fault", "n": n})
        time.sleep(period)


def test_start_does_not_wait_for_a_broker_that_is_down(tmp_path: Path) -> None:
    broker = MosquittoBroker()  # allocated, not started yet
    cfg = make_config(broker, tmp_path)
    pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox))
    try:
        t0 = time.monotonic()
        pub.start()
        receipts = [pub.publish_event("spindle", {"state": "fault", "n": n}) for n in range(5)]
        pub.publish_state("spindle", {"state": "healthy"})
        pub.publish_state("spindle", {"state": "fault"})
        assert time.monotonic() - t0 < 0.5
        assert all(r.row is not None for r in receipts) and not pub.connected
        assert wait_until(lambda: "cannot connect" in (pub.stats().last_error or ""))
        with broker:
            rec = Recorder(broker, ("+/+/+/event", "+/+/+/state"))
            events = pub.topics.event("spindle")
            assert rec.wait_for(lambda msgs: sum(m.topic == events for m in msgs) >= 5, timeout=10)
            assert [m.json()["n"] for m in rec.on(events)] == list(range(5))
            assert [m.json() for m in rec.on(pub.topics.state("spindle"))] == [{"state": "fault"}]
            rec.close()
    finally:
        pub.close(timeout=0.5)
        pub.outbox.close()


def test_rows_of_a_killed_publisher_replay_in_order_after_restart(
    tmp_path: Path, recorder: Callable[..., Recorder]
) -> None:
    down = MosquittoBroker()
    cfg = make_config(down, tmp_path)
    with child_publisher(cfg, tmp_path, events=40, wait=False) as proc:
        os.kill(proc.pid, signal.SIGKILL)
    with down:
        rec = Recorder(down, ("+/+/+/event",))
        pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox))
        assert pub.outbox.depth == 40
        pub.start()
        try:
            assert rec.wait_for(lambda msgs: len(msgs) >= 40)
            assert [m.json()["n"] for m in rec.messages] == list(range(40))
            assert [m.json()["seq"] for m in rec.messages] == list(range(1, 41))
            assert wait_until(lambda: pub.outbox.depth == 0)
            assert pub.publish_event("spindle", {"state": "healthy"}).seq == 41
        finally:
            pub.close(timeout=1.0)
            pub.outbox.close()
            rec.close()


def test_a_full_outbox_drops_the_oldest_events_and_counts_them(tmp_path: Path) -> None:
    broker = MosquittoBroker()  # down while the events are accepted
    cfg = make_config(broker, tmp_path, outbox={"path": str(tmp_path / "o.db"), "max_messages": 5})
    pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox))
    try:
        for n in range(8):
            pub.publish_event("spindle", {"state": "fault", "n": n})
        assert pub.stats().dropped_full == 3 and pub.stats().outbox_depth == 5
        with broker:
            rec = Recorder(broker, ("+/+/+/event",))
            pub.start()
            assert rec.wait_for(lambda msgs: len(msgs) >= 5)
            assert [m.json()["seq"] for m in rec.messages] == [4, 5, 6, 7, 8]  # the gap shows the loss
            rec.close()
    finally:
        pub.close(timeout=0.5)
        pub.outbox.close()
