"""The outbox's newest rows kept in memory, so that the sender reads what was just committed
without a query.

When every inference batch's results go out at QoS 1, the MQTT worker sends each row right
after the inference thread committed it; reading it back (a SELECT, a row object, a copy of
the payload) cost as much as a fifth of the worker's time per message. The outbox stays the
record: rows enter this cache only after their transaction committed, and the cache holds
exactly the stored rows with ``id >= floor``, so a read it answers is the read the database
would answer. Anything older (replay after a reconnect or a restart) is read from the file.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One stored message; ``id`` grows with insertion order and is never reused."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created: float


class RecentRows:
    """Invariant: ``rows`` holds every stored message with ``id >= floor``, in id order.

    The caller (the outbox, under its lock) reports commits, deletes and anything that deletes
    rows it cannot name (drops, expiry, a failed transaction) as :meth:`reset`.
    """

    def __init__(self, capacity: int, next_id: int) -> None:
        self.capacity = capacity
        self.floor = next_id
        self.rows: dict[int, Message] = {}

    def committed(self, messages: Iterable[Message]) -> None:
        """Rows of a transaction that committed (ids above every stored one)."""
        for m in messages:
            if m.id >= self.floor:
                self.rows[m.id] = m
        excess = len(self.rows) - self.capacity
        if excess > 0:  # the oldest leave memory; reads at or below them go to the file
            for i in list(itertools.islice(self.rows, excess)):
                del self.rows[i]
            self.floor = next(iter(self.rows))

    def deleted(self, ids: Iterable[int]) -> None:
        """Rows deleted by id (acknowledged)."""
        for i in ids:
            self.rows.pop(i, None)

    def reset(self, next_id: int) -> None:
        """Forget everything: rows were deleted in ways the cache does not follow."""
        self.rows.clear()
        self.floor = next_id

    def after(self, after_id: int, limit: int) -> list[Message] | None:
        """Up to ``limit`` stored messages with ``id > after_id``, oldest first; None if older rows
        than the cache holds might qualify (read the file)."""
        if after_id < self.floor - 1:
            return None
        out: list[Message] = []
        if limit <= 0:
            return out
        for i, m in self.rows.items():
            if i > after_id:
                out.append(m)
                if len(out) >= limit:
                    break
        return out
