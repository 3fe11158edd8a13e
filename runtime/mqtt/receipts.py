"""What the publisher hands back and reports: receipts, acknowledgements, figures; payload checks.

Kept apart from :mod:`runtime.mqtt.publisher` so that the publisher module holds only its
threads and their state.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass
from typing import Any

from runtime.errors import DataError
from runtime.mqtt.config import check_topic_segment
from runtime.mqtt.outbox import NewMessage


@dataclass(frozen=True)
class EventReceipt:
    """What ``publish_event`` stored: outbox row (None if refused by drop_newest), event id and seq."""

    row: int | None
    id: str
    seq: int


@dataclass(frozen=True)
class Ack:
    """A PUBACK for an event; ``latency_s`` spans accept (put) to PUBACK, None for earlier runs' rows."""

    row: int
    topic: str
    event_id: str | None
    latency_s: float | None
    sent_to_ack_s: float


@dataclass(frozen=True)
class PublisherStats:
    """Connection and queue figures for the daemon's metrics."""

    connected: bool
    connects: int
    connection_losses: int
    outbox_depth: int
    in_flight: int
    events_acked: int
    events_rejected: int
    dropped_full: int
    dropped_expired: int
    qos0_dropped: int
    last_error: str | None
    #: events held in memory, or the last outbox write failed (disk full, I/O error)
    degraded: bool = False
    events_held: int = 0
    #: events lost from memory after the outbox stayed unwritable past memory_max_messages
    events_lost: int = 0
    outbox_write_errors: int = 0
    #: QoS 1 messages other than events (enqueue) refused because the outbox could not be written
    dropped_write_error: int = 0
    #: exceptions caught in paho callbacks and the hooks they call
    callback_errors: int = 0
    #: accepted connections dropped for making no progress
    stalled_connections: int = 0


def as_seq(value: Any, sensor: str) -> int:
    """A caller-supplied ``seq`` must be an integer, or subscribers cannot check for gaps."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataError(
            f"event of sensor {sensor!r} has seq {value!r}; pass an integer or leave seq out "
            "so the publisher numbers events itself"
        )
    return int(value)


def check_durable(m: NewMessage) -> None:
    """Refuse what could never leave the outbox (a bad topic) or needs no outbox (QoS 0)."""
    if m.qos not in (1, 2):
        raise DataError(
            f"enqueue takes QoS 1 or 2 messages, got QoS {m.qos} for {m.topic}; send QoS 0 directly"
        )
    try:
        _checked_topic(m.topic)
    except ValueError as exc:
        raise DataError(f"{exc}; enqueue needs a concrete topic name") from exc


@functools.lru_cache(maxsize=4096)
def _checked_topic(topic: str) -> None:
    """A topic checked once (the result path sends every batch to the same few topics); a bad one
    raises every time, as exceptions are not cached."""
    check_topic_segment(topic, "topic", allow_slash=True)
