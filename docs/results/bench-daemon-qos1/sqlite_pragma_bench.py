"""Thread CPU of one 8 KB result commit (synchronous=NORMAL, WAL) for two page sizes, with SQLite's
automatic checkpoints on (1,000 pages) and off, acknowledged rows deleted every 20 commits.

``taskset -c 1 python sqlite_pragma_bench.py``: which pragmas would make the outbox's commit cheaper.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time

PAYLOAD = os.urandom(4000).hex().encode()
SCHEMA = ("CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
          "payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, created REAL NOT NULL)")


def run(page: int, autocheckpoint: int, n: int = 3000) -> None:
    db = sqlite3.connect(os.path.join(tempfile.mkdtemp(), "o.db"), isolation_level=None)
    for pragma in (f"page_size={page}", "locking_mode=EXCLUSIVE", "journal_mode=WAL", "synchronous=NORMAL",
                   f"wal_autocheckpoint={autocheckpoint}"):
        db.execute(f"PRAGMA {pragma}")
    db.execute(SCHEMA)
    ids: list[int] = []
    put = worst = 0.0
    t0 = time.thread_time()
    for i in range(n):
        a = time.thread_time()
        db.execute("BEGIN IMMEDIATE")
        cur = db.execute("INSERT INTO messages (topic, payload, qos, retain, created) VALUES (?, ?, ?, ?, ?)",
                         ("d/predictions", PAYLOAD, 1, 0, time.time()))
        db.execute("COMMIT")
        took = time.thread_time() - a
        put, worst = put + took, max(worst, took)
        ids.append(int(cur.lastrowid or 0))
        if i % 20 == 19:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM messages WHERE id = ?", [(x,) for x in ids])
            db.execute("COMMIT")
            ids = []
    total = time.thread_time() - t0
    print(f"page {page:6d} autocheckpoint {autocheckpoint:5d}: commit {1e6 * put / n:6.1f} us CPU "
          f"(worst {1e3 * worst:.1f} ms), with the deletes {1e6 * total / n:6.1f} us per result")


if __name__ == "__main__":
    for size in (4096, 16384):
        for ck in (1000, 0):
            run(size, ck)
