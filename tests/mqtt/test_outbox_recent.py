"""The outbox answers reads of its newest rows from memory: every answer must equal the file's."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from runtime.mqtt.outbox import NewMessage, Outbox
from runtime.mqtt.outbox_recent import Message, RecentRows


def _from_file(ob: Outbox, after_id: int, limit: int) -> list[Message]:
    """The same read straight from the SQLite file (the outbox's own connection: it holds the lock)."""
    rows = ob._db.execute(
        "SELECT id, topic, payload, qos, retain, created FROM messages WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, limit)).fetchall()
    return [Message(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]


def test_reads_from_memory_equal_reads_from_the_file_through_puts_acks_drops_and_failures(
    tmp_path: Path,
) -> None:
    rng = random.Random(7)
    ob = Outbox(tmp_path / "o.db", max_messages=300, synchronous="normal")
    served = 0
    failing = False

    def fail(_: str) -> None:
        if failing:
            raise sqlite3.OperationalError("database or disk is full")

    ob.fault_injection = fail
    for step in range(1500):
        op = rng.random()
        failing = rng.random() < 0.05
        try:
            if op < 0.5:
                ob.put_many([NewMessage(f"t/{step}/{i}", bytes([step % 256]) * rng.randint(1, 50))
                             for i in range(rng.randint(1, 4))], durable=rng.random() < 0.5)
            elif op < 0.8:
                stored = _from_file(ob, 0, 10_000)
                ob.ack_many(m.id for m in rng.sample(stored, min(len(stored), rng.randint(0, 6))))
            elif op < 0.85:
                ob.expire()
        except sqlite3.OperationalError:
            pass  # a failed transaction: the file is unchanged, and so must be every answer
        failing = False
        last = ob.last_id
        for after_id in {0, max(0, last - rng.randint(0, 40)), last}:
            limit = rng.randint(1, 64)
            got = ob.pending(limit, after_id)
            assert got == _from_file(ob, after_id, limit), (step, after_id, limit)
            served += after_id >= ob._recent.floor - 1
    assert served > 1000  # most reads were answered from memory, and every one of them was right
    assert ob.dropped.full > 0  # and drop_oldest ran (a delete the cache cannot follow by id)
    ob.close()


def test_the_cache_forgets_its_oldest_rows_beyond_capacity() -> None:
    cache = RecentRows(capacity=3, next_id=1)
    cache.committed(Message(i, "t", b"", 1, False, 0.0) for i in range(1, 6))
    assert list(cache.rows) == [3, 4, 5] and cache.floor == 3
    assert cache.after(1, 10) is None  # row 2 may be stored: only the file can say
    assert [m.id for m in cache.after(2, 10) or []] == [3, 4, 5]
    cache.deleted([4])
    assert [m.id for m in cache.after(3, 1) or []] == [5]


@pytest.mark.parametrize("reopen", [False, True])
def test_rows_from_an_earlier_run_are_read_from_the_file(tmp_path: Path, reopen: bool) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as ob:
        ob.put_many([NewMessage("t/a", b"1"), NewMessage("t/b", b"2")])
    with Outbox(path) as ob:
        if not reopen:
            assert [m.payload for m in ob.pending(10)] == [b"1", b"2"]
        ob.put_many([NewMessage("t/c", b"3")])
        assert [m.payload for m in ob.pending(10)] == [b"1", b"2", b"3"]
        assert [m.payload for m in ob.pending(10, after_id=2)] == [b"3"]
