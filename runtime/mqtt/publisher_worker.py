"""The MQTT worker thread of :class:`~runtime.mqtt.publisher.MqttPublisher`: connect with backoff,
send states, outbox rows and QoS 0 messages, read PUBACKs (paho's network loop runs here, see
:meth:`Link.pump`), drop connections that stall, and stop cleanly.

Split from :mod:`runtime.mqtt.publisher`, which keeps what the daemon's threads call: this
module is everything that runs on the one thread that owns the broker connection.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque

import paho.mqtt.client as mqtt

from runtime.mqtt.config import MqttConfig
from runtime.mqtt.event_store import EventStore
from runtime.mqtt.link import Link
from runtime.mqtt.outbox import Outbox
from runtime.mqtt.publisher_acks import AckLedger
from runtime.mqtt.publisher_states import StateBoard
from runtime.mqtt.supervisor import Supervisor
from runtime.mqtt.throttle import LogThrottle, clip
from runtime.mqtt.topics import STATUS_STOPPED, Topics
from runtime.mqtt.waker import Waker

log = logging.getLogger("runtime.mqtt.publisher")  # one logger for the publisher's messages
_throttle = LogThrottle(log)

_TICK_S = 1.0  # worker wake-up without news: dead-link detection
_EXPIRE_EVERY_S = 30.0
_CATCH_UP_EVERY_S = 1.0
_STALL_CHECK_S = 0.1


class Worker:
    """The worker's loop and its state; the publisher hands it the parts both sides share."""

    def __init__(self, config: MqttConfig, outbox: Outbox, topics: Topics, sup: Supervisor, wake: Waker,
                 store: EventStore, acks: AckLedger, states: StateBoard, event_lock: threading.Lock) -> None:
        self.config = config
        self.outbox = outbox
        self.topics = topics
        self._sup = sup
        self._wake = wake
        self._store = store
        self._acks = acks
        self._states = states
        self._event_lock = event_lock  # held while writing held events: their numbers stay in order
        self.closing = threading.Event()
        #: seconds :meth:`run` keeps flushing after ``closing`` is set (set by the publisher's close)
        self.close_timeout = 0.0
        #: QoS 0 messages (predictions, metrics) from the daemon's threads, sent by this one
        self.qos0: deque[tuple[str, bytes]] = deque()
        self.qos0_dropped = 0
        self.stalled_total = 0
        self._step_failures = 0
        self._next_expire = 0.0
        self._next_catch_up = 0.0
        self._next_stall_check = 0.0
        #: why the publisher gave up (connections in a row made no progress); the daemon exits on it
        self.failure: str | None = None

    def run(self) -> None:
        while not self.closing.is_set():
            try:
                self._step()
            except Exception as exc:  # keep serving: a failed step must not silence the daemon for good
                self._step_failures += 1
                if self._step_failures == 1:  # the traceback once; a failure that repeats every second
                    log.exception("MQTT worker step failed; dropping the connection and retrying")
                else:  # (e.g. an outbox page that went bad while running) must not flood the log
                    _throttle.error("step", "MQTT worker step failed again (%s: %s); %d failures so far",
                                    type(exc).__name__, clip(str(exc)), self._step_failures)
                link = self._sup.link
                if link is not None:
                    self._sup.retire(link)
                self.closing.wait(1.0)
        try:
            self._shutdown()
        finally:
            self._wake.close()

    def _step(self) -> None:
        self._catch_up()
        link = self._sup.link
        if link is None or link.dead(time.monotonic()):
            if link is not None:
                self._sup.retire(link)
                self._acks.drain(link)
            self._sup.connect_when_due(self.closing)
            return
        link.pump(self._wake, self._acks.wait_s(_TICK_S))  # PUBACKs and commands are read here
        self._wake.clear()
        self._service(link)
        now = time.monotonic()
        if now >= self._next_stall_check:  # not on every wake: a stall is judged in seconds
            self._next_stall_check = now + _STALL_CHECK_S
            why = link.stall(now, self.config.ack_timeout_s)
            if why is not None:
                self._stalled(link, why)

    def _catch_up(self, force: bool = False) -> None:
        """Write events held in memory and deletes that failed, once the outbox takes writes again."""
        now = time.monotonic()
        if (now < self._next_catch_up and not force) or not (self._store.held or self._acks.unconfirmed):
            return
        self._next_catch_up = now + _CATCH_UP_EVERY_S  # a failing disk is retried once a second
        if self._store.held:
            with self._event_lock:
                self._store.flush()
        if self._acks.unconfirmed:
            self._acks.delete([])

    def _stalled(self, link: Link, why: str) -> None:
        """Drop a connection that makes no progress; give up after too many in a row."""
        self._sup.stalls += 1
        self.stalled_total += 1
        n, limit = self._sup.stalls, self.config.max_stalled_connections
        cfg = self.config
        log.error("MQTT connection to %s:%d makes no progress (%s); reconnecting (%d of %d in a row "
                  "before the daemon gives up)", cfg.host, cfg.port, why, n, limit)
        self._sup.last_error = f"connection stalled: {why}"
        link.drop(why)
        if n >= limit and self.failure is None:
            self.failure = f"{n} MQTT connections in a row made no progress (last: {why})"
            log.critical("%s; exiting so that the service manager restarts the daemon", self.failure)

    def _service(self, link: Link) -> None:
        self._acks.drain(link)
        if not link.ready:
            return
        self._states.send(link)
        link.fill_window(self.outbox)
        self._send_queued_qos0(link)
        now = time.monotonic()
        if now >= self._next_expire:
            self._next_expire = now + _EXPIRE_EVERY_S
            try:
                self.outbox.expire()
            except (sqlite3.Error, OSError) as exc:  # retried on the next round
                _throttle.warning("expire", "outbox expiry failed: %s", clip(str(exc)))

    def _send_queued_qos0(self, link: Link) -> None:
        while self.qos0:
            topic, data = self.qos0.popleft()
            info = link.client.publish(topic, data, qos=0)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                link.qos0[info.mid] += 1
            else:
                self.qos0_dropped += 1

    def _shutdown(self) -> None:
        """Flush for the close timeout, say ``stopped``, disconnect cleanly so no will is sent; delete
        every acknowledged row, so a restart re-sends none of them."""
        try:
            self._shutdown_link()
        finally:
            self._acks.delete_due(force=True)

    def _shutdown_link(self) -> None:
        self._sup.stopping = True
        self._catch_up(force=True)
        if self._store.held:
            log.error("%d events held in memory could not be written to the outbox %s before the stop and "
                      "are lost", len(self._store.held), self.outbox.path)
            self._store.lost += len(self._store.held)
            self._store.held.clear()
        link = self._sup.link
        if link is None:
            return
        if not link.ready or link.dead(time.monotonic()):
            self._sup.retire(link)
            self._acks.drain(link)
            return
        # a publisher that gave up has no link worth waiting for: say "stopped" and go
        deadline = time.monotonic() + (0.0 if self.failure else self.close_timeout)
        while time.monotonic() < deadline and not link.dead(time.monotonic()):
            self._service(link)
            if not self._states.pending and link.done(self.outbox):
                break
            link.pump(self._wake, min(0.1, max(0.0, deadline - time.monotonic())))
            self._wake.clear()
        info = link.client.publish(self.topics.status, STATUS_STOPPED, qos=1, retain=True)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            acked_by = max(time.monotonic() + 0.5, deadline)
            while not info.is_published() and not link.dead(time.monotonic()) and time.monotonic() < acked_by:
                link.pump(self._wake, 0.05)
        link.client.disconnect()
        self._sup.link = None
        self._acks.drain(link)
        self._acks.delete_due(force=True)
        log.info("MQTT publisher stopped; %d events left in the outbox", self.outbox.depth)
