"""Commit latency with SQLite's own WAL checkpoints (inside a commit) against checkpoints from a
second connection in another thread (what runtime.mqtt.outbox_checkpoint does), for an 8 KB
result written every millisecond and acknowledged rows deleted every 50 ms, synchronous=NORMAL;
the thread checkpoints once 250 results were written since its last checkpoint.

``python wal_checkpoint_bench.py`` (pin it: ``taskset -c 1``); prints wall-clock commit times.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import threading
import time

PAYLOAD = os.urandom(4000).hex().encode()
SCHEMA = ("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
          "payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL)")


def run(mode: str, n: int = 3000) -> None:
    path = os.path.join(tempfile.mkdtemp(), "o.db")
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if mode == "in-commit":
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if mode == "thread":
        db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(SCHEMA)
    stop, lock, ids, commits = threading.Event(), threading.Lock(), [], [0]

    def acks_and_checkpoints() -> None:
        own = None
        if mode == "thread":
            own = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        done = 0
        while not stop.wait(0.05):
            with lock:
                rows, ids[:] = list(ids), []
                if rows:
                    db.execute("BEGIN IMMEDIATE")
                    db.executemany("DELETE FROM messages WHERE id = ?", [(x,) for x in rows])
                    db.execute("COMMIT")
            if own is not None and commits[0] - done >= 250:  # as runtime.mqtt.outbox_checkpoint
                done = commits[0]
                frames = own.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0][1]
                if frames >= 1000:
                    with lock:
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    t = threading.Thread(target=acks_and_checkpoints)
    t.start()
    walls = []
    for _ in range(n):
        t0 = time.perf_counter()
        with lock:
            db.execute("BEGIN IMMEDIATE")
            cur = db.execute("INSERT INTO messages (topic, payload, qos, retain, created) "
                             "VALUES (?, ?, ?, ?, ?)", ("d/predictions", PAYLOAD, 1, 0, time.time()))
            db.execute("COMMIT")
            ids.append(cur.lastrowid)
            commits[0] += 1
        walls.append(time.perf_counter() - t0)
        time.sleep(0.001)
    stop.set()
    t.join()
    walls.sort()

    def ms(q: float) -> float:
        return 1e3 * walls[int(q * (len(walls) - 1))]

    slowest = 1e3 * statistics.mean(walls[-n // 100:])
    wal_mb = os.path.getsize(path + "-wal") / 1e6
    print(f"{mode:9s}: commit wall ms p50 {ms(0.5):.3f} p99 {ms(0.99):.3f} p99.9 {ms(0.999):.3f} "
          f"max {1e3 * walls[-1]:.2f}; mean of the slowest 1 % {slowest:.2f}; WAL {wal_mb:.1f} MB")


if __name__ == "__main__":
    for m in ("in-commit", "thread", "in-commit", "thread"):
        run(m)
