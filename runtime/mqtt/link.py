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
import select
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from runtime.mqtt.outbox import Outbox
from runtime.mqtt.waker import Waker

log = logging.getLogger(__name__)

_MISC_EVERY_S = 0.25  # paho's keepalive checks need not run on every wake (keepalive is >= seconds)


@dataclass(frozen=True)
class Sent:
    """An event handed to paho on this link."""

    row: int
    topic: str
    sent_at: float


@dataclass
class Link:
    """State of one connection.

    The worker thread owns all of it: it runs paho's network loop itself (:meth:`pump`), so paho's
    callbacks, which set the connection facts (``ready``, ``lost``, ``refused``,
    ``closed_because`` and ``window``), run on the worker too; ``window`` is final before
    ``ready`` becomes true.
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
    next_misc: float = 0.0  # when paho's keepalive bookkeeping (loop_misc) is due again

    def dead(self, now: float) -> bool:
        """Lost, closed underneath us, or the broker never answered CONNECT in time."""
        if self.lost:
            return True
        if self.ready:
            return not self.client.is_connected()
        return now > self.connack_deadline

    def stall(self, now: float, ack_timeout_s: float) -> str | None:
        """Why an accepted connection can no longer make progress, or None while it can.

        The socket may look connected while nothing moves: the broker stopped acknowledging.
        That needs a new link.
        """
        if not self.ready or self.lost:
            return None
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

    def pump(self, wake: Waker, timeout: float) -> None:
        """Wait up to ``timeout`` s for ``wake`` or the broker, then read and write what is ready.

        paho's network loop run by the worker itself (paho's own loop thread is not started): one
        ``select`` on the broker socket and the wake-up socket, so a PUBACK is handled where it is
        waited for and a publish is written by the thread that makes it, instead of crossing two
        threads each way. paho's callbacks run inside :meth:`paho.mqtt.client.Client.loop_read`.
        """
        client = self.client
        sock = client.socket()
        if sock is None:  # closed underneath (paho reported the disconnect already)
            wake.wait(timeout)
            return
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0  # decrypted, not yet read
        if pending or wake.is_set():
            timeout = 0.0
        try:
            fd = sock.fileno()
            writing = [fd] if client.want_write() else []
            readable, writable, _ = select.select([fd, wake.fileno()], writing, [], max(0.0, timeout))
        except (OSError, ValueError, TypeError) as exc:  # the socket was closed while we looked
            self.closed_because = self.closed_because or f"socket closed ({exc})"
            self.lost = True
            return
        if fd in readable or pending:
            client.loop_read()
        if writable and client.socket() is not None:
            client.loop_write()
        now = time.monotonic()
        if now >= self.next_misc and client.socket() is not None:  # keepalive: PINGREQ, PINGRESP timeout
            self.next_misc = now + _MISC_EVERY_S
            client.loop_misc()

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
