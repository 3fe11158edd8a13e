"""The SQLite outbox: order, acks, bounds, drop counters, metadata, threads and SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from runtime.errors import ConfigError
from runtime.mqtt.outbox import NewMessage, Outbox

REPO = Path(__file__).resolve().parents[2]


def put_ok(ob: Outbox, topic: str, payload: bytes, retain: bool = False) -> int:
    row = ob.put(topic, payload, qos=1, retain=retain)
    assert row is not None
    return row


def test_pending_is_insertion_order_and_ack_deletes(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        ids = [put_ok(ob, f"t/{i}", f"p{i}".encode(), retain=i == 2) for i in range(5)]
        assert ids == sorted(ids) and len(set(ids)) == 5
        rows = ob.pending(10)
        assert [r.topic for r in rows] == [f"t/{i}" for i in range(5)]
        assert rows[2].retain and not rows[1].retain and rows[0].payload == b"p0"
        assert ob.ack(ids[1]) and not ob.ack(ids[1])
        assert ob.ack_many([ids[0], ids[3], 10_000]) == 2
        assert [r.id for r in ob.pending(10)] == [ids[2], ids[4]]
        assert [r.id for r in ob.pending(10, after_id=ids[2])] == [ids[4]]
        assert len(ob) == ob.depth == 2


def test_ids_are_never_reused_after_the_table_empties(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        first = put_ok(ob, "t", b"1")
        ob.ack(first)
        assert ob.put("t", b"2") == first + 1


def test_drop_oldest_keeps_the_newest_and_counts_persist(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, max_messages=3) as ob:
        for i in range(5):
            ob.put("t", str(i).encode())
        assert [r.payload for r in ob.pending(10)] == [b"2", b"3", b"4"]
        assert ob.dropped.full == 2 and ob.dropped.total == 2
    with Outbox(path, max_messages=3) as again:
        assert again.dropped.full == 2 and len(again) == 3


def test_drop_newest_refuses_new_messages(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_messages=2, drop_policy="drop_newest") as ob:
        results = [ob.put("t", str(i).encode()) for i in range(4)]
        assert results[2] is None and results[3] is None and None not in results[:2]
        assert [r.payload for r in ob.pending(10)] == [b"0", b"1"]
        assert ob.dropped.full == 2


def test_messages_older_than_max_age_expire(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_age_s=0.2) as ob:
        ob.put("t", b"old")
        time.sleep(0.3)
        assert ob.expire() == 1
        ob.put("t", b"new")
        assert [r.payload for r in ob.pending(10)] == [b"new"] and ob.dropped.expired == 1


def test_meta_is_committed_with_the_message(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as ob:
        ob.put_many([NewMessage("a", b"1"), NewMessage("b", b"2")], meta={"seq/a": "7"})
        ob.set_meta("other", "x")
        assert ob.get_meta("missing", "d") == "d"
    with Outbox(path) as ob:
        assert ob.get_meta("seq/a") == "7" and ob.get_meta("other") == "x"
        assert [r.topic for r in ob.pending(5)] == ["a", "b"]


def test_puts_and_acks_from_two_threads_lose_nothing(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", synchronous="normal") as ob:
        done = threading.Event()
        acked: list[int] = []

        def acker() -> None:
            after = 0
            while not done.is_set() or ob.pending(1, after):
                rows = ob.pending(50, after)
                if rows:
                    after = rows[-1].id
                    ob.ack_many(r.id for r in rows)
                    acked.extend(r.id for r in rows)

        t = threading.Thread(target=acker)
        t.start()
        ids = [put_ok(ob, "t", str(i).encode()) for i in range(400)]
        done.set()
        t.join(10)
        assert acked == ids and len(ob) == 0


def test_survives_sigkill_right_after_put(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    code = textwrap.dedent(f"""
        import os, signal
        from runtime.mqtt.outbox import Outbox
        ob = Outbox({str(path)!r}, synchronous="normal")
        for i in range(50):
            ob.put("drsn-edge/d/s/event", str(i).encode(), meta={{"seq/s": str(i + 1)}})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert Path(f"{path}-wal").exists()  # the data lives in the WAL: nothing was checkpointed
    with Outbox(path) as ob:
        assert [r.payload for r in ob.pending(100)] == [str(i).encode() for i in range(50)]
        assert ob.get_meta("seq/s") == "50"


def test_results_commit_without_fsync_and_still_survive_sigkill(tmp_path: Path) -> None:
    """put_many(durable=False) (outbox.results_synchronous: normal) commits at synchronous=NORMAL
    even in a synchronous=full outbox, and a kill right after loses none of its rows."""
    path = tmp_path / "o.db"
    code = textwrap.dedent(f"""
        import os, signal
        from runtime.mqtt.outbox import NewMessage, Outbox
        ob = Outbox({str(path)!r}, synchronous="full")
        modes = []
        ob.fault_injection = lambda _: modes.append(ob._db.execute("PRAGMA synchronous").fetchone()[0])
        ob.put("drsn-edge/d/s/event", b"event")
        for i in range(20):
            ob.put_many([NewMessage("drsn-edge/d/predictions", str(i).encode())], durable=False)
        ob.put("drsn-edge/d/s/event", b"event 2")
        assert modes == [2] + [1] * 20 + [2], modes  # FULL, then NORMAL for the results, FULL again
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Outbox(path) as ob:
        got = [r.payload for r in ob.pending(100)]
    assert got == [b"event"] + [str(i).encode() for i in range(20)] + [b"event 2"]


def test_second_process_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path):
        code = f"from runtime.mqtt.outbox import Outbox; Outbox({str(path)!r})"
        args = [sys.executable, "-c", code]
        proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "in use by another process" in proc.stderr and "mqtt.outbox.path" in proc.stderr


def test_a_file_that_is_not_an_outbox_is_refused_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ConfigError, match="move the file aside"):
        Outbox(path)


def test_closed_outbox_says_so(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.close()
    ob.close()
    with pytest.raises(ConfigError, match="closed"):
        ob.put("t", b"x")


def test_last_id_is_the_highest_committed_row_across_failures_and_restarts(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "o.db"
    with Outbox(path) as box:
        assert box.last_id == 0
        rows = box.put_many([NewMessage("t/a", b"1"), NewMessage("t/a", b"2")])
        assert box.last_id == rows[-1]

        def full(op: str) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        box.fault_injection = full
        with pytest.raises(sqlite3.OperationalError):
            box.put_many([NewMessage("t/a", b"3")])
        assert box.last_id == rows[-1]  # a rolled-back row is not there to send
        box.fault_injection = None
        box.ack_many(rows)  # deleting keeps the watermark where it was
        assert box.last_id == rows[-1] and box.depth == 0
        last = box.put("t/a", b"4")
    with Outbox(path) as again:
        assert again.last_id == last
