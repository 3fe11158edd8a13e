"""A durable, bounded FIFO of MQTT messages in SQLite: what the broker has not acknowledged yet.

An event counts as accepted once :meth:`Outbox.put` returns, because the row is committed by
then; it leaves the outbox only when the publisher sees the broker's PUBACK and calls
:meth:`Outbox.ack`. A broker outage or a daemon crash (even ``SIGKILL``) therefore loses
nothing, and a restart replays the remaining rows in insertion order.

Design choices:

* WAL journal with one connection behind a lock: the daemon thread puts while the MQTT thread
  acks. A lock file (``<path>.lock``) makes a second daemon pointed at the same file fail at start
  instead of double-publishing. Once a sender runs, a second connection checkpoints the WAL
  from its own thread (:mod:`runtime.mqtt.outbox_checkpoint`), so no commit waits for one.
* ``AUTOINCREMENT`` ids never repeat, even after the table empties, so "publish everything after
  id N" stays correct for the lifetime of the file.
* Bounds (count and age) are enforced on write with a counted, persisted drop policy, so an
  outage of weeks cannot fill the disk and the loss is visible in metrics.
* A small key/value table lets the daemon persist per-sensor sequence numbers in the *same*
  transaction as the event that uses them (see ``put(..., meta=...)``).
* A write that fails (disk full, I/O error) rolls back completely, counters included, and raises
  ``sqlite3.Error``; the publisher then holds the events in memory. A corrupt file found at
  start is moved aside (see :mod:`runtime.mqtt.outbox_file`) and reported in ``moved_aside``.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from runtime.errors import ConfigError
from runtime.mqtt.outbox_checkpoint import WalCheckpointer
from runtime.mqtt.outbox_file import MovedAside, lock_outbox, open_or_replace, unlock_outbox
from runtime.mqtt.outbox_recent import Message, RecentRows

if TYPE_CHECKING:
    from runtime.mqtt.config import OutboxConfig

log = logging.getLogger(__name__)

DropPolicy = Literal["drop_oldest", "drop_newest"]
_DROPPED_FULL = "outbox.dropped.full"
_DROPPED_EXPIRED = "outbox.dropped.expired"
_EXPIRE_CHECK_S = 1.0
__all__ = ["DropCounts", "DropPolicy", "Message", "NewMessage", "Outbox"]

_RECENT_ROWS = 256  # newest rows kept in memory for the sender (runtime.mqtt.outbox_recent)



class NewMessage(NamedTuple):
    """A message to store: what :meth:`Outbox.put_many` takes."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class DropCounts:
    """Messages discarded unsent since the outbox file was created."""

    full: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.full + self.expired


class Outbox:
    """Durable FIFO of messages awaiting acknowledgement. Thread-safe."""

    _last: int  # highest id inserted, and committed (see last_id)
    _last_committed: int

    def __init__(
        self,
        path: str | Path,
        max_messages: int = 100_000,
        max_age_s: float | None = 7 * 24 * 3600.0,
        drop_policy: DropPolicy = "drop_oldest",
        *,
        synchronous: Literal["normal", "full"] = "full",
    ) -> None:
        if max_messages <= 0:
            raise ConfigError(f"outbox max_messages must be positive, got {max_messages}")
        if drop_policy not in ("drop_oldest", "drop_newest"):
            raise ConfigError(f"unknown outbox drop_policy {drop_policy!r}; use drop_oldest or drop_newest")
        self.path = Path(path)
        self.max_messages = max_messages
        self.max_age_s = max_age_s
        self.drop_policy: DropPolicy = drop_policy
        self._lock = threading.Lock()
        self._closed = False
        #: fault injection hook for tests: called with "commit" before every COMMIT; raising from
        #: it fails the write exactly as a full disk does (sqlite3.OperationalError)
        self.fault_injection: Callable[[str], None] | None = None
        self.moved_aside: MovedAside | None
        self._lockfile = lock_outbox(self.path)
        try:
            self._db, self.moved_aside = open_or_replace(self.path, synchronous)
        except BaseException:
            unlock_outbox(self._lockfile)
            raise
        #: WAL checkpoints off the commit path, once a sender runs (runtime.mqtt.outbox_checkpoint)
        self._commits = 0  # transactions committed (the checkpoint thread's clock)
        self._checkpointer = WalCheckpointer(self.path, self._db, self._lock, lambda: self._commits)
        self._synchronous = synchronous.upper()
        self._sync_now = self._synchronous
        self._next_expire_check = 0.0
        self._recent = RecentRows(_RECENT_ROWS, 0)
        self._reload_counters()
        if self._count:
            log.info("outbox %s holds %d unsent messages from an earlier run", self.path, self._count)

    @classmethod
    def from_config(cls, cfg: OutboxConfig) -> Outbox:
        return cls(cfg.path, cfg.max_messages, cfg.max_age_s, cfg.drop_policy, synchronous=cfg.synchronous)

    # -- writing -----------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, *,
            meta: Mapping[str, str] | None = None) -> int | None:
        """Store a message durably and return its id (``None``: refused by ``drop_newest``).

        The row and the optional ``meta`` updates are committed in one transaction before this
        returns, so a sequence number saved in ``meta`` can never run ahead of its event.
        """
        return self.put_many([NewMessage(topic, payload, qos, retain)], meta=meta)[0]

    def put_many(self, messages: Sequence[NewMessage], *, meta: Mapping[str, str] | None = None,
                 durable: bool = True) -> list[int | None]:
        """Store several messages in one transaction (one fsync), in order; ids as in :meth:`put`.

        Batching matters on eMMC storage, where each commit costs milliseconds: a daemon that
        classifies 64 sensors per batch commits their events together. ``durable=False`` commits
        with ``synchronous=NORMAL`` (no fsync): the rows survive a crash of the process, not
        necessarily a power cut (used for per-window results, ``results_synchronous: normal``).
        """
        now = time.time()
        ids: list[int | None] = []
        stored: list[Message] = []
        with self._lock:
            with self._transaction(durable):
                self._expire_if_due(now)
                for m in messages:
                    ids.append(self._insert(m, now, stored))
                self._set_meta_locked(meta)
            self._recent.committed(stored)  # only now: the sender may read them from memory
        return ids

    def _insert(self, m: NewMessage, now: float, stored: list[Message]) -> int | None:
        if self._count >= self.max_messages:
            if self.drop_policy == "drop_newest":
                self._count_drops(full=1)
                return None
            self._drop_oldest(self._count - self.max_messages + 1)
        payload, qos, retain = bytes(m.payload), int(m.qos), bool(m.retain)
        cur = self._db.execute(
            "INSERT INTO messages (topic, payload, qos, retain, created) VALUES (?, ?, ?, ?, ?)",
            (m.topic, payload, qos, int(retain), now),
        )
        self._count += 1
        row = int(cur.lastrowid or 0)
        self._last = max(self._last, row)
        stored.append(Message(row, m.topic, payload, qos, retain, now))
        return row

    def ack(self, message_id: int) -> bool:
        """Delete an acknowledged message; ``False`` if it was already gone (dropped or acked)."""
        return self.ack_many((message_id,)) == 1

    def ack_many(self, message_ids: Iterable[int]) -> int:
        """Delete several acknowledged messages in one transaction; return how many existed."""
        ids = [(int(i),) for i in message_ids]
        if not ids:
            return 0
        with self._lock:
            with self._transaction(durable=False):
                before = self._db.total_changes
                self._db.executemany("DELETE FROM messages WHERE id = ?", ids)
                removed = self._db.total_changes - before
                self._count -= removed
            self._recent.deleted(i for (i,) in ids)
            return removed

    def expire(self) -> int:
        """Drop messages older than ``max_age_s`` now; return how many. Called by housekeeping."""
        with self._lock, self._transaction():
            return self._expire(time.time())

    # -- reading -----------------------------------------------------------------------------

    def pending(self, limit: int = 100, after_id: int = 0) -> list[Message]:
        """Up to ``limit`` stored messages with ``id > after_id``, oldest first.

        The newest rows come from memory (:mod:`runtime.mqtt.outbox_recent`), older ones from the file.
        """
        with self._lock:
            self._check_open()
            recent = self._recent.after(int(after_id), int(limit))
            if recent is not None:
                return recent
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, created FROM messages "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (int(after_id), int(limit)),
            ).fetchall()
        return [Message(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def __len__(self) -> int:
        return self._committed

    @property
    def depth(self) -> int:
        """Messages waiting for acknowledgement (for metrics): committed rows only, updated at COMMIT
        (read without the lock: a transaction in progress or rolled back must not show its rows)."""
        return self._committed

    @property
    def last_id(self) -> int:
        """The highest id committed so far (0: none): a sender that has sent every row up to it has
        nothing new to read, without a query (read without the lock, like :attr:`depth`)."""
        return self._last_committed

    @property
    def dropped(self) -> DropCounts:
        """Messages discarded unsent, persisted across restarts."""
        return self._dropped

    # -- key/value ---------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """Read a persisted value (e.g. a sensor's last event sequence number)."""
        with self._lock:
            self._check_open()
            value = self._meta(key)
        return default if value is None else value

    def set_meta(self, key: str, value: str) -> None:
        """Persist a value durably (committed before returning)."""
        with self._lock, self._transaction():
            self._set_meta_locked({key: value})

    # -- lifecycle ---------------------------------------------------------------------------

    def start_checkpoints(self) -> None:
        """Checkpoint the WAL from a thread of its own from now on instead of inside commits (the
        publisher calls this when it starts: commits on the inference thread then never stall on
        a checkpoint's copy and syncs)."""
        with self._lock:
            self._check_open()
            self._checkpointer.start()

    def stop_checkpoints(self) -> None:  # the publisher's close; idempotent
        self._checkpointer.stop()

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close. Idempotent."""
        self._checkpointer.stop()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.debug("outbox checkpoint at close failed: %s", exc)
            self._db.close()
            unlock_outbox(self._lockfile)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (caller holds self._lock) -------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"outbox {self.path} is closed; create a new Outbox to use it again")

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[None]:
        """One write transaction; ``durable=False`` skips the fsync of ``synchronous=full``.

        Deleting acknowledged rows need not survive a power cut: losing a delete only re-sends
        an event (a duplicate, which QoS 1 allows), so acks do not pay for an fsync. The next
        durable commit syncs the WAL, and with it any earlier deletes.
        """
        self._check_open()
        wanted = self._synchronous if durable else "NORMAL"
        if wanted != self._sync_now:
            self._db.execute(f"PRAGMA synchronous={wanted}")
            self._sync_now = wanted
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            if self.fault_injection is not None:
                self.fault_injection("commit")
            self._db.execute("COMMIT")
            self._commits += 1
            self._committed = self._count
            self._last_committed = self._last
        except BaseException:
            # SQLite may already have rolled back (SQLITE_FULL at COMMIT does); then ROLLBACK fails
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            with contextlib.suppress(sqlite3.Error):  # counters must match the file, not the attempt
                self._reload_counters()
            raise

    def _reload_counters(self) -> None:
        self._count = int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        self._committed = self._count
        self._last = self._last_committed = int(
            self._db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0])
        self._recent.reset(self._last + 1)  # the file is the truth again
        full, expired = self._meta(_DROPPED_FULL), self._meta(_DROPPED_EXPIRED)
        self._dropped = DropCounts(int(full or 0), int(expired or 0))

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta_locked(self, meta: Mapping[str, str] | None) -> None:
        if meta:
            self._db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(str(k), str(v)) for k, v in meta.items()],
            )

    def _drop_oldest(self, n: int) -> None:
        cur = self._db.execute(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)", (n,)
        )
        self._count -= cur.rowcount
        self._recent.reset(self._last + 1)  # rows deleted without their ids
        self._count_drops(full=cur.rowcount)

    def _expire_if_due(self, now: float) -> None:
        if self.max_age_s is not None and now >= self._next_expire_check:
            self._next_expire_check = now + _EXPIRE_CHECK_S
            self._expire(now)

    def _expire(self, now: float) -> int:
        """Delete expired rows from the head of the queue.

        Looks at the oldest row first (an index lookup) so the common case, nothing expired,
        costs no table scan on the put path.
        """
        if self.max_age_s is None:
            return 0
        cutoff = now - self.max_age_s
        head = self._db.execute("SELECT created FROM messages ORDER BY id LIMIT 1").fetchone()
        if head is None or head[0] >= cutoff:
            return 0
        cur = self._db.execute("DELETE FROM messages WHERE created < ?", (cutoff,))
        self._count -= cur.rowcount
        self._recent.reset(self._last + 1)  # rows deleted without their ids
        self._count_drops(expired=cur.rowcount)
        return int(cur.rowcount)

    def _count_drops(self, full: int = 0, expired: int = 0) -> None:
        before = self._dropped
        after = DropCounts(before.full + full, before.expired + expired)
        self._set_meta_locked({_DROPPED_FULL: str(after.full), _DROPPED_EXPIRED: str(after.expired)})
        self._dropped = after
        if full and _crosses_report_point(before.full, after.full):
            log.warning(
                "outbox %s is full (%d messages): %d dropped so far by %s; the broker has been unreachable "
                "for long, raise outbox.max_messages or fix the broker connection",
                self.path, self.max_messages, after.full, self.drop_policy,
            )
        if expired and _crosses_report_point(before.expired, after.expired):
            log.warning(
                "outbox %s: %d messages dropped so far for being older than %.0f s; raise outbox.max_age_s "
                "or fix the broker connection", self.path, after.expired, self.max_age_s or 0.0,
            )


def _crosses_report_point(before: int, after: int) -> bool:
    """Log the first drop, then once per power of ten, so a long outage does not flood the log."""
    if before == 0:
        return after > 0
    return len(str(after)) > len(str(before))
