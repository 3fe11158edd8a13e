"""The publisher's acknowledgement ledger: when each outbox row was accepted, which PUBACKs arrived,
which rows may leave the outbox, and who is told.

Split from :mod:`runtime.mqtt.publisher` (lifecycle and the daemon-side calls) because it is the
one place where an outbox row ends: a row is deleted only after the broker's PUBACK for exactly
that message, and a delete the disk refuses is retried rather than forgotten (a re-send is a
duplicate, never a loss). Runs on the MQTT worker thread, except :meth:`AckLedger.accepted`.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from runtime.mqtt.link import Link, Sent
from runtime.mqtt.outbox import Outbox
from runtime.mqtt.receipts import Ack
from runtime.mqtt.supervisor import Supervisor
from runtime.mqtt.throttle import LogThrottle, clip

log = logging.getLogger("runtime.mqtt.publisher")
_throttle = LogThrottle(log)

AckHook = Callable[[Ack], None]

#: acknowledged rows are deleted together, at most this often while PUBACKs keep coming (an idle
#: link deletes at once); a crash in between only re-sends them, which QoS 1 allows
DELETE_EVERY_S = 0.05
_DELETE_AT_MOST = 512  # rows per delete transaction before the time is up


class AckLedger:
    """Accept times, PUBACK processing and row deletion for one publisher.

    ``hook()`` returns the publisher's current ``on_acked`` (it may be set after construction).
    """

    def __init__(self, outbox: Outbox, sup: Supervisor, max_inflight: int,
                 hook: Callable[[], AckHook | None]) -> None:
        self.outbox = outbox
        self.sup = sup
        self.max_inflight = max_inflight
        self.hook = hook
        self.acked = 0
        self.rejected = 0
        self.unconfirmed: list[int] = []  # acked rows whose delete failed; retried
        self.to_delete: list[int] = []  # acked rows waiting for the next (coalesced) delete
        self._delete_due = 0.0
        self._lock = threading.Lock()
        self._put_info: dict[int, tuple[float, str | None]] = {}  # row -> (accept time, event id)

    def accepted(self, rows: list[int | None], ids: list[str | None], t_put: float) -> None:
        """Daemon thread: remember when rows entered the outbox, for the ack latency."""
        with self._lock:
            for row, event_id in zip(rows, ids, strict=True):
                if row is not None:
                    self._put_info[row] = (t_put, event_id)
            excess = len(self._put_info) - (self.outbox.max_messages + self.max_inflight)
            if excess > 0:  # rows the outbox dropped unsent
                for row in list(itertools.islice(self._put_info, excess)):
                    del self._put_info[row]

    def drain(self, link: Link) -> None:
        """Apply the PUBACKs paho reported: delete acked rows in one transaction, then report them."""
        acked: list[tuple[Sent, float]] = []
        acks = self.sup.acks
        while acks:
            generation, mid, t_ack, ok = acks.popleft()
            if generation != link.generation:
                continue
            if link.qos0[mid]:  # the write of a QoS 0 message, not a PUBACK
                link.qos0[mid] -= 1
                if not link.qos0[mid]:
                    del link.qos0[mid]
                continue
            link.last_progress = max(link.last_progress, t_ack)
            self.sup.stalls = 0
            sent = link.inflight.pop(mid, None)
            if sent is None:
                link.control.discard(mid)
            elif ok:
                acked.append((sent, t_ack))
            else:
                self.rejected += 1  # stays in the outbox; re-sent on the next connection
        if acked:
            self.to_delete.extend(s.row for s, _ in acked)
            self.acked += len(acked)
            self._report(acked)
        self.delete_due()

    def delete_due(self, force: bool = False) -> None:
        """Delete the acknowledged rows in one transaction when :data:`DELETE_EVERY_S` has passed
        since the last delete (or ``force``): one commit per PUBACK cost the worker more than the
        PUBACK itself when every batch's results go at QoS 1."""
        if not self.to_delete:
            return
        now = time.monotonic()
        if force or now >= self._delete_due or len(self.to_delete) >= _DELETE_AT_MOST:
            rows, self.to_delete = self.to_delete, []
            self._delete_due = now + DELETE_EVERY_S
            self.delete(rows)

    def wait_s(self, longest: float) -> float:
        """How long the worker may sleep: ``longest``, or until the pending delete is due."""
        if not self.to_delete:
            return longest
        return min(longest, max(0.0, self._delete_due - time.monotonic()))

    def delete(self, rows: list[int]) -> None:
        """Delete acknowledged rows; if the disk refuses, keep them to retry (a re-send is a duplicate)."""
        rows = self.unconfirmed + rows
        try:
            self.outbox.ack_many(rows)
        except (sqlite3.Error, OSError) as exc:
            self.unconfirmed = rows
            _throttle.warning("ack", "cannot delete %d acknowledged rows from the outbox (%s); retrying",
                              len(rows), clip(str(exc)))
            return
        self.unconfirmed = []

    def _report(self, acked: list[tuple[Sent, float]]) -> None:
        with self._lock:
            infos = [self._put_info.pop(s.row, None) for s, _ in acked]
        hook = self.hook()
        if hook is None:
            return
        for (sent, t_ack), info in zip(acked, infos, strict=True):
            ack = Ack(
                row=sent.row,
                topic=sent.topic,
                event_id=info[1] if info else None,
                latency_s=t_ack - info[0] if info else None,
                sent_to_ack_s=t_ack - sent.sent_at,
            )
            try:
                hook(ack)
            except Exception as exc:
                self.sup.callback_errors += 1
                _throttle.error("on_acked", "on_acked hook failed for row %d: %s", sent.row, clip(str(exc)))
