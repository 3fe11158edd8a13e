"""One broker connection and the events sent over it that still await their PUBACK.

A :class:`Link` lives exactly as long as one paho client's connection. Events go out in outbox
id order through a bounded window; when the connection is lost the link is dropped together with
paho's own queue, and the next link starts again from the oldest un-acknowledged row. That is
what keeps replay gap-free and in order: nothing sent on an old connection can be re-sent by
paho behind the new connection's messages.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from runtime.mqtt.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    """An event handed to paho on this link."""

    row: int
    topic: str
    sent_at: float


@dataclass
class Link:
    """State of one connection.

    The worker thread owns everything except the connection facts (``ready``, ``lost``,
    ``refused``, ``closed_because`` and ``window``), which paho's network thread sets from its
    callbacks; ``window`` is final before ``ready`` becomes true.
    """

    client: mqtt.Client
    generation: int
    connack_deadline: float
    window: int
    ready: bool = False
    lost: bool = False
    refused: str | None = None
    closed_because: str | None = None
    inflight: dict[int, Sent] = field(default_factory=dict)
    #: mids of retained state and discovery messages awaiting their PUBACK (they share the window)
    control: set[int] = field(default_factory=set)
    #: mids of QoS 0 messages whose write paho has not reported yet; paho reports those through
    #: on_publish too, and after 65535 messages a QoS 0 mid can equal an in-flight event's mid
    qos0: Counter[int] = field(default_factory=Counter)
    watermark: int = 0
    announced: set[str] = field(default_factory=set)
    fresh: bool = True
    #: monotonic time of the last sign of progress: CONNACK, a PUBACK, or a send into an empty window
    last_progress: float = 0.0

    def dead(self, now: float) -> bool:
        """Lost, closed underneath us, or the broker never answered CONNECT in time."""
        if self.lost:
            return True
        if self.ready:
            return not self.client.is_connected()
        return now > self.connack_deadline

    def stall(self, now: float, ack_timeout_s: float) -> str | None:
        """Why an accepted connection can no longer make progress, or None while it can.

        The socket may look connected while nothing moves: paho's network thread ended (then no
        PUBACK is ever read again), or the broker stopped acknowledging. Both need a new link.
        """
        if not self.ready or self.lost:
            return None
        if not network_thread_alive(self.client):
            return "paho's network thread has ended"
        outstanding = len(self.inflight) + len(self.control)
        if outstanding and now - self.last_progress > ack_timeout_s:
            return f"no PUBACK for {now - self.last_progress:.1f} s with {outstanding} messages in flight"
        return None

    def note_sending(self, now: float) -> None:
        """Start the PUBACK clock when the first message goes into an empty window."""
        if not self.inflight and not self.control:
            self.last_progress = now

    def fill_window(self, outbox: Outbox) -> int:
        """Send un-sent rows, oldest first, until the in-flight window is full; return how many."""
        room = self.window - len(self.inflight) - len(self.control)
        if room <= 0 or outbox.last_id <= self.watermark:  # full, or nothing new (a wake for a PUBACK)
            return 0
        self.note_sending(time.monotonic())
        sent = 0
        for msg in outbox.pending(room, after_id=self.watermark):
            try:
                info = self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
            except ValueError as exc:  # a row paho can never send (corrupt topic): do not block the queue
                log.error("outbox row %d (%s) cannot be published: %s; deleting it", msg.id, msg.topic, exc)
                outbox.ack(msg.id)
                self.watermark = msg.id
                continue
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:  # paho still holds a message with this mid
                break  # not queued: retry with a fresh mid on the next pass
            self.watermark = msg.id
            self.inflight[info.mid] = Sent(msg.id, msg.topic, time.monotonic())
            sent += 1
            if info.rc != mqtt.MQTT_ERR_SUCCESS:  # connection going down: the next link re-sends it
                break
        return sent

    def drop(self, why: str) -> None:
        """Cut a connection that makes no progress, as a network failure would (the will is sent)."""
        self.closed_because = why
        self.lost = True
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def done(self, outbox: Outbox) -> bool:
        """Every stored event was sent on this link and acknowledged."""
        return not self.inflight and not self.control and not outbox.pending(1, after_id=self.watermark)


def network_thread_alive(client: mqtt.Client) -> bool:
    """Whether the thread of ``loop_start`` still runs.

    paho exposes no public accessor; it clears ``_thread`` when its thread function returns
    (paho-mqtt 2.x), and an exception in any callback ends that thread.
    """
    thread = getattr(client, "_thread", None)
    return isinstance(thread, threading.Thread) and thread.is_alive()
