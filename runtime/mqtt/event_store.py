"""Committing events to the outbox, and holding them in memory while the outbox cannot be written.

A full disk or an I/O error must degrade service, not lose alerts. The fault state has already
moved on when an event is made, so an event that cannot be committed must not be dropped: it is
held in memory, in order, behind any already held, and every later commit attempt (each new
event, and the publisher's worker once per second) writes the held ones first. Memory is bounded
(``outbox.memory_max_messages``); past it the oldest held events are lost and counted, which is
the only way this class loses an event. Held events are lost too if the process dies before the
disk recovers: they were never durable.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runtime.mqtt.outbox import NewMessage, Outbox
from runtime.mqtt.throttle import LogThrottle, clip

log = logging.getLogger(__name__)
_throttle = LogThrottle(log, interval_s=60.0)

#: called with the sensor of every event that reached the disk (not those refused by drop_newest)
CommittedHook = Callable[[list[str]], None]


@dataclass(frozen=True)
class PendingEvent:
    """An encoded event and the sequence number to persist with it."""

    sensor: str
    seq: int
    message: NewMessage


class EventStore:
    """The publisher's way into the outbox for events; the caller serialises calls (one lock)."""

    def __init__(self, outbox: Outbox, max_held: int, on_committed: CommittedHook | None = None) -> None:
        self.outbox = outbox
        self.max_held = max_held
        self.on_committed = on_committed
        self.held: deque[PendingEvent] = deque()
        #: events dropped from memory because the outbox stayed unwritable for too long
        self.lost = 0
        #: failed attempts to commit (each one an outbox transaction rolled back)
        self.write_errors = 0
        #: the error of the last failed commit while failing, None once a commit succeeds again
        self.failing: str | None = None
        #: errors of the committed hook (metrics code), counted like callback errors
        self.hook_errors = 0

    @property
    def degraded(self) -> bool:
        """Events are waiting in memory, or the last write failed."""
        return bool(self.held) or self.failing is not None

    def put(self, batch: Sequence[PendingEvent]) -> list[int | None]:
        """Commit ``batch`` after any held events; the outbox rows of ``batch`` (None: held or refused)."""
        return self.put_with(batch, ())[0]

    def put_with(self, batch: Sequence[PendingEvent],
                 extra: Sequence[NewMessage]) -> tuple[list[int | None], list[int | None] | None]:
        """Commit ``batch`` after any held events and ``extra`` (other durable messages, such as a
        batch's results) after it, all in ONE transaction: one fsync for everything a batch makes.

        Returns the rows of ``batch`` (None: held or refused) and of ``extra``; ``extra``'s rows are
        None when the transaction failed: unlike events those are not held (the caller counts them).
        """
        self._hold(batch)
        rows = self.flush(extra)
        if rows is None:
            return [None] * len(batch), None
        extra_rows = rows[len(rows) - len(extra):] if extra else []
        rows = rows[: len(rows) - len(extra)]
        if not batch:
            return [], extra_rows
        n = min(len(batch), len(rows))
        return [None] * (len(batch) - n) + rows[len(rows) - n:], extra_rows

    def flush(self, extra: Sequence[NewMessage] = ()) -> list[int | None] | None:
        """Write every held event (then ``extra``) in one transaction; the rows, or None if the outbox
        is still failing."""
        if not self.held and not extra:
            return []
        items = list(self.held)
        meta = {f"seq/{p.sensor}": str(p.seq) for p in items}  # the last seq of each sensor wins
        try:
            rows = self.outbox.put_many([p.message for p in items] + list(extra), meta=meta)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
            return None
        self.held.clear()
        if self.failing is not None and items:
            log.warning("outbox %s is writable again; %d held events written", self.outbox.path, len(items))
        self.failing = None
        self._report([p.sensor for p, row in zip(items, rows, strict=False) if row is not None])
        return rows

    def _hold(self, batch: Sequence[PendingEvent]) -> None:
        self.held.extend(batch)
        excess = len(self.held) - self.max_held
        if excess > 0:
            for _ in range(excess):
                self.held.popleft()
            self.lost += excess
            _throttle.error(
                "lost", "outbox %s not writable and %d events held in memory (mqtt.outbox."
                "memory_max_messages): %d oldest events lost so far; free disk space on its filesystem",
                self.outbox.path, self.max_held, self.lost,
            )

    def _failed(self, exc: BaseException) -> None:
        self.write_errors += 1
        first = self.failing is None
        self.failing = f"{type(exc).__name__}: {clip(str(exc), 200)}"
        if first:
            log.error(
                "cannot write the outbox %s (%s); holding events in memory (at most %d) and retrying "
                "every second. States are still published; free space on its filesystem",
                self.outbox.path, self.failing, self.max_held,
            )
        else:
            _throttle.warning(
                "still", "outbox %s still not writable (%s); %d events held in memory, %d lost",
                self.outbox.path, self.failing, len(self.held), self.lost,
            )

    def _report(self, sensors: list[str]) -> None:
        hook = self.on_committed
        if hook is None or not sensors:
            return
        try:
            hook(sensors)
        except Exception as exc:  # metrics must not turn a committed event into a failed one
            self.hook_errors += 1
            log.error("on_committed hook failed: %s", clip(str(exc)))
