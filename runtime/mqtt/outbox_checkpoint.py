"""Checkpointing the outbox's WAL from a thread of its own, so that a commit never does it.

SQLite checkpoints a WAL inside the commit that crosses ``wal_autocheckpoint`` pages: with
``synchronous=NORMAL`` that commit copies about 1,000 pages into the database and syncs both
files, which on the inference thread (where the result path commits every batch) made the slowest
commits: p99 0.7-3.8 ms and 8-15 ms for the slowest 1 % on this VM's disk, against 0.2-0.4 ms and
1.1-2.5 ms with the checkpoint moved off the commit (an 8 KB write every millisecond, alternating
runs: docs/results/bench-daemon-qos1/wal_checkpoint_bench.py).

While a :class:`WalCheckpointer` runs, the outbox's connection has automatic checkpoints off and
this thread runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a connection of its own once
:data:`COMMITS` commits were made since the last one (looked at every :data:`EVERY_S`), or
:data:`IDLE_S` after the last one: PASSIVE never blocks a writer. Not after every commit: a WAL
copied completely is written again from its start, in place, so a young outbox would never need
new disk space and a full disk would be noticed (and events held in memory) only later.

A writer restarts the WAL from its start only when every frame has been copied, which a
checkpoint running beside steady writes never sees; so once the WAL passes
:data:`RESTART_PAGES` the remaining few frames are copied under the outbox's lock (no commit in
between), and the next commit starts the WAL anew. Stopping restores automatic checkpoints.
Failures are logged (throttled) and retried; the thread never ends on its own.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from runtime.mqtt.throttle import LogThrottle, clip

log = logging.getLogger(__name__)
_throttle = LogThrottle(log, interval_s=60.0)

EVERY_S = 0.1
COMMITS = 250  # about SQLite's own 1,000 pages for the result path's commits of 3-4 pages
IDLE_S = 60.0
RESTART_PAGES = 1000  # SQLite's own wal_autocheckpoint default
AUTOCHECKPOINT = 1000


class WalCheckpointer:
    """A thread that checkpoints the WAL of ``path``; ``db`` and ``lock`` are the outbox's own,
    ``commits()`` counts the outbox's commits so far."""

    def __init__(self, path: Path, db: sqlite3.Connection, lock: threading.Lock,
                 commits: Callable[[], int]) -> None:
        self.path = path
        self._db = db
        self._lock = lock
        self._commits = commits
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: checkpoints that failed (each retried on the next round)
        self.failures = 0

    def start(self) -> None:
        """Turn the commit's own checkpoints off and start the thread (idempotent; caller holds ``lock``)."""
        if self._thread is not None:
            return
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and give checkpoints back to the commits (caller must NOT hold ``lock``)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(10.0)
        with self._lock:
            try:
                self._db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT}")
            except sqlite3.Error as exc:  # closed meanwhile: nothing left to checkpoint
                log.debug("restoring automatic checkpoints failed: %s", exc)

    def _run(self) -> None:
        try:
            own = sqlite3.connect(str(self.path), timeout=0.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.error("cannot open a checkpoint connection to the outbox %s (%s); commits checkpoint "
                      "the WAL themselves", self.path, exc)
            with self._lock:
                self._db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT}")
            return
        try:
            done, at = self._commits(), time.monotonic()
            while not self._stop.wait(EVERY_S):
                n = self._commits()
                if n - done >= COMMITS or (n > done and time.monotonic() - at >= IDLE_S):
                    done, at = n, time.monotonic()
                    self.checkpoint(own)
        finally:
            own.close()

    def checkpoint(self, own: sqlite3.Connection) -> None:
        """One round: copy what the WAL holds beside the writers, finish under their lock when large."""
        try:
            _, frames, _ = own.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
            if frames >= RESTART_PAGES:
                with self._lock:  # a few frames were added while we copied: copy them with no writer
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception as exc:  # a failing disk, a closed outbox: retried next round, never fatal
            self.failures += 1
            _throttle.warning("checkpoint", "outbox %s: WAL checkpoint failed (%s); retrying, %d failures "
                              "so far", self.path, clip(str(exc)), self.failures)
