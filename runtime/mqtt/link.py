"""One broker connection and the events sent over it that still await their PUBACK.

A :class:`Link` lives exactly as long as one paho client's connection. Events go out in outbox
id order through a bounded window; when the connection is lost the link is dropped together with
paho's own queue, and the next link starts again from the oldest un-acknowledged row. That is
what keeps replay gap-free and in order: nothing sent on an old connection can be re-sent by
paho behind the new connection's messages.
"""

from __future__ import annotations

import logging
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

    def dead(self, now: float) -> bool:
        """Lost, closed underneath us, or the broker never answered CONNECT in time."""
        if self.lost:
            return True
        if self.ready:
            return not self.client.is_connected()
        return now > self.connack_deadline

    def fill_window(self, outbox: Outbox) -> int:
        """Send un-sent rows, oldest first, until the in-flight window is full; return how many."""
        room = self.window - len(self.inflight) - len(self.control)
        if room <= 0:
            return 0
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

    def done(self, outbox: Outbox) -> bool:
        """Every stored event was sent on this link and acknowledged."""
        return not self.inflight and not self.control and not outbox.pending(1, after_id=self.watermark)
