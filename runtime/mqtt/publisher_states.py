"""Retained states and event numbering: the two per-sensor books the publisher keeps.

Split from :mod:`runtime.mqtt.publisher`. :class:`StateBoard` holds the latest state of each
sensor (only the latest matters: a burst of changes while the broker is away publishes once)
and re-announces all of them on every new connection. :class:`EventNumbering` gives each event
the next per-sensor ``seq`` (continuing the outbox's persisted counter across restarts) and a
unique ``id``, and encodes it, without changing anything until the caller commits.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from runtime.mqtt.config import MqttConfig
from runtime.mqtt.event_store import PendingEvent
from runtime.mqtt.homeassistant import discovery_config
from runtime.mqtt.link import Link
from runtime.mqtt.outbox import NewMessage, Outbox
from runtime.mqtt.payload import encode_json
from runtime.mqtt.receipts import EventReceipt, as_seq
from runtime.mqtt.topics import Topics, check_sensor_name


class StateBoard:
    """The latest retained state per sensor and which ones still need sending."""

    def __init__(self, config: MqttConfig, topics: Topics, sw_version: str) -> None:
        self.config = config
        self.topics = topics
        self.sw_version = sw_version
        self.reannounce = False  # Home Assistant restarted: send discovery and states again
        self._lock = threading.Lock()
        self._states: dict[str, bytes] = {}
        self._dirty: dict[str, None] = {}

    def set(self, sensor: str, data: bytes) -> None:
        """Any thread: ``data`` is now the sensor's state."""
        with self._lock:
            self._states[sensor] = data
            self._dirty[sensor] = None

    @property
    def pending(self) -> bool:
        return bool(self._dirty)

    def send(self, link: Link) -> None:
        """Worker thread: publish changed states (latest only), each after its discovery config."""
        if not (self._dirty or link.fresh or self.reannounce):  # the usual wake: nothing changed
            return
        if link.fresh or self.reannounce:
            with self._lock:
                self._dirty = dict.fromkeys(self._states)
            link.announced.clear()
            link.fresh = False
            self.reannounce = False
        with self._lock:
            batch = [(s, self._states[s]) for s in self._dirty]
            self._dirty.clear()
        if batch:
            link.note_sending(time.monotonic())
        ha = self.config.home_assistant
        qos = self.config.state_qos
        for sensor, data in batch:
            if ha.discovery and sensor not in link.announced:
                topic = self.topics.ha_config(ha.prefix, sensor)
                config = encode_json(discovery_config(self.topics, sensor, self.sw_version), "discovery")
                info = link.client.publish(topic, config, qos=1, retain=True)
                link.control.add(info.mid)
                link.announced.add(sensor)
            info = link.client.publish(self.topics.state(sensor), data, qos=qos, retain=True)
            if qos:
                link.control.add(info.mid)


class EventNumbering:
    """Per-sensor sequence numbers of events; the caller holds its event lock around both calls."""

    def __init__(self, config: MqttConfig, topics: Topics, outbox: Outbox) -> None:
        self.config = config
        self.topics = topics
        self.outbox = outbox
        self._seq: dict[str, int] = {}
        self._sensors: set[str] = set()

    def check_sensor(self, sensor: str) -> None:
        """A ConfigError if ``sensor`` cannot be one topic level (checked once per sensor)."""
        if sensor not in self._sensors:
            self._sensors.add(check_sensor_name(sensor))

    def current(self, sensor: str) -> int:
        """The last sequence number used for ``sensor`` (0 if none), from the outbox at first."""
        if sensor not in self._seq:
            self._seq[sensor] = int(self.outbox.get_meta(f"seq/{sensor}", "0") or 0)
        return self._seq[sensor]

    def prepare(
        self, events: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> tuple[list[EventReceipt], list[PendingEvent], dict[str, int]]:
        """Encode events and number them; an encoding error changes nothing (see :meth:`commit`)."""
        receipts: list[EventReceipt] = []
        messages: list[PendingEvent] = []
        seqs: dict[str, int] = {}
        for sensor, payload in events:
            self.check_sensor(sensor)
            event = dict(payload)
            previous = seqs[sensor] if sensor in seqs else self.current(sensor)
            seq = as_seq(event.setdefault("seq", previous + 1), sensor)
            event_id = str(event.setdefault("id", uuid.uuid4().hex))
            data = encode_json(event, f"event of sensor {sensor!r}")
            seqs[sensor] = seq
            message = NewMessage(self.topics.event(sensor), data, self.config.event_qos, False)
            messages.append(PendingEvent(sensor, seq, message))
            receipts.append(EventReceipt(None, event_id, seq))
        return receipts, messages, seqs

    def commit(self, seqs: Mapping[str, int]) -> None:
        """The prepared events are in the outbox: their numbers are used."""
        self._seq.update(seqs)
