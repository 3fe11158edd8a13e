"""One outbox transaction per inference batch: its events and its results are committed together
before anything is sent, survive a SIGKILL between commit and send, and a full disk degrades
service (events held, results counted as dropped) without losing what was already committed."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.mqtt.outbox import NewMessage, Outbox
from runtime.mqtt.publisher import MqttPublisher
from tests.mqtt.support import Recorder, make_config, wait_until
from tests.mqtt.test_replay import child_publisher
from tests.support.broker import MosquittoBroker

Running = Callable[..., MqttPublisher]
Recorders = Callable[..., Recorder]


def _result(pub: MqttPublisher, n: int) -> NewMessage:
    return NewMessage(pub.topics.predictions, f'{{"n": {n}}}'.encode(), 1, False)


def _kind(topic: str) -> str:
    return "event" if topic.endswith("/event") else "result"


def test_events_and_results_of_a_batch_are_one_commit_events_first(
    tmp_path: Path, running: Running
) -> None:
    commits: list[str] = []
    pub = running(make_config(MosquittoBroker(), tmp_path))  # broker down: no ack deletes commit meanwhile
    pub.outbox.fault_injection = commits.append  # called once before every COMMIT
    receipts, rows = pub.publish_batch([("a", {"n": 0}), ("b", {"n": 0})], [_result(pub, 0)])
    assert commits == ["commit"]  # two events and one result: one transaction, one fsync
    assert [r.seq for r in receipts] == [1, 1] and all(r.row is not None for r in receipts)
    assert rows[0] is not None and rows[0] > max(r.row or 0 for r in receipts)  # events go first
    assert pub.outbox.get_meta("seq/a") == "1"  # the numbers are persisted in the same commit
    assert [m.topic for m in pub.outbox.pending()] == [
        pub.topics.event("a"), pub.topics.event("b"), pub.topics.predictions]
    _, rows = pub.publish_batch([], [_result(pub, 1)])  # no events: the results alone, as enqueue
    assert commits == ["commit"] * 2 and rows[0] is not None and pub.outbox.depth == 4


@pytest.mark.parametrize(("results_sync", "want"), [("normal", 1), ("full", 2)])  # NORMAL=1, FULL=2
def test_results_alone_commit_as_results_synchronous_says_events_and_alerts_as_synchronous(
    tmp_path: Path, running: Running, results_sync: str, want: int
) -> None:
    """A batch without events commits its results at ``results_synchronous`` (normal: no fsync);
    a batch with events, and any other enqueued message (an alert), at ``synchronous``."""
    cfg = make_config(MosquittoBroker(), tmp_path)
    cfg.outbox.synchronous = "full"
    cfg.outbox.results_synchronous = results_sync  # type: ignore[assignment]
    pub = running(cfg)  # broker down: no ack deletes commit meanwhile
    modes: list[int] = []
    db = pub.outbox._db  # read at the commit itself: the mode this transaction commits with
    pub.outbox.fault_injection = lambda _: modes.append(db.execute("PRAGMA synchronous").fetchone()[0])
    pub.publish_batch([], [_result(pub, 0)])
    pub.publish_batch([("a", {"n": 0})], [_result(pub, 1)])
    pub.enqueue([NewMessage(pub.topics.predictions, b"{}", 1, False)])
    assert modes == [want, 2, 2]
    assert pub.outbox.depth == 4


def test_a_batch_killed_between_commit_and_send_replays_in_order(
    tmp_path: Path, recorder: Recorders
) -> None:
    down = MosquittoBroker()  # not started: every committed row is still unsent at the kill
    cfg = make_config(down, tmp_path)
    with child_publisher(cfg, tmp_path, events=20, wait=False, batch=True) as proc:
        os.kill(proc.pid, signal.SIGKILL)
    with down:
        rec = Recorder(down, ("drsn-edge/press-7/+/event", "drsn-edge/press-7/predictions"))
        pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox))
        assert pub.outbox.depth == 40  # 20 batches of one event and one result each
        pub.start()
        try:
            assert rec.wait_for(lambda msgs: len(msgs) >= 40, 15)
            got = [(_kind(m.topic), m.json()["n"]) for m in rec.messages]
            assert got == [(k, n) for n in range(20) for k in ("event", "result")]
            assert [m.json()["seq"] for m in rec.messages if m.topic.endswith("/event")] == list(range(1, 21))
            assert wait_until(lambda: pub.outbox.depth == 0, 10)
        finally:
            pub.close(timeout=1.0)
            pub.outbox.close()
            rec.close()


def test_a_full_disk_holds_the_events_drops_the_results_and_keeps_what_was_committed(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    rec = recorder("drsn-edge/press-7/#")
    down = MosquittoBroker()  # committed while the broker is unreachable: only the outbox holds it
    pub = running(make_config(down, tmp_path))
    pub.publish_batch([("a", {"n": 0})], [_result(pub, 0)])
    assert pub.outbox.depth == 2

    def disk_full(op: str) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    pub.outbox.fault_injection = disk_full
    receipts, rows = pub.publish_batch([("a", {"n": 1})], [_result(pub, 1), _result(pub, 2)])
    assert receipts[0].row is None and receipts[0].seq == 2 and rows == [None, None]
    st = pub.stats()
    assert st.degraded and st.events_held == 1 and st.dropped_write_error == 2 and st.events_lost == 0
    assert pub.outbox.depth == 2 and pub.outbox.get_meta("seq/a") == "1"  # the committed batch is intact
    pub.outbox.fault_injection = None
    pub.publish_batch([("a", {"n": 3})], [_result(pub, 3)])  # writes the held event first, same commit
    assert pub.outbox.depth == 5
    pub.close(timeout=0.5)  # the broker was never reachable: everything stays in the outbox
    pub.outbox.close()
    moved = make_config(broker, tmp_path)  # the same outbox file, now with a reachable broker
    again = running(moved)
    want = [("event", 0), ("result", 0), ("event", 1), ("event", 3), ("result", 3)]
    ours = ("/event", "/predictions")
    assert rec.wait_for(lambda msgs: sum(m.topic.endswith(ours) for m in msgs) >= 5, 15)
    got = [(_kind(m.topic), m.json()["n"]) for m in rec.messages if m.topic.endswith(ours)]
    assert got == want
    assert [m.json()["seq"] for m in rec.messages if m.topic.endswith("/event")] == [1, 2, 3]
    assert wait_until(lambda: again.stats().outbox_depth == 0, 10), again.stats()
