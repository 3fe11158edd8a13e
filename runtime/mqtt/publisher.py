"""The daemon's MQTT voice: status, retained states, events through the outbox, predictions, metrics.

Threads: the daemon calls ``publish_*`` from its own thread; one worker thread owns the broker
connection (connect, backoff, sending events and states, processing acknowledgements) and runs
paho's network loop itself (:meth:`Link.pump`: one ``select`` on the socket and the wake-up
flag), so a message crosses one thread, not three. Events are committed to the
:class:`~runtime.mqtt.outbox.Outbox` before ``publish_event`` returns and are deleted only when
the broker's PUBACK for exactly that message arrives, so neither an outage nor a crash loses one.
While the outbox cannot be written (disk full), events are held in memory in order and written
when it can be again (:mod:`runtime.mqtt.event_store`); states keep being published meanwhile.
A connection that stops making progress is dropped and re-opened; after
``max_stalled_connections`` in a row, :attr:`MqttPublisher.failure` says so and the daemon exits
so that systemd restarts it. The worker's loop lives in :mod:`runtime.mqtt.publisher_worker`;
this module is what the daemon's threads call.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import paho.mqtt.client as mqtt

from runtime.mqtt.commands import parse_command
from runtime.mqtt.config import MqttConfig
from runtime.mqtt.event_store import CommittedHook, EventStore
from runtime.mqtt.homeassistant import package_version
from runtime.mqtt.messages import Payload
from runtime.mqtt.outbox import NewMessage, Outbox
from runtime.mqtt.payload import encode_payload
from runtime.mqtt.publisher_acks import AckHook, AckLedger
from runtime.mqtt.publisher_states import EventNumbering, StateBoard
from runtime.mqtt.publisher_worker import Worker
from runtime.mqtt.receipts import Ack, EventReceipt, PublisherStats, check_durable
from runtime.mqtt.supervisor import Supervisor
from runtime.mqtt.throttle import LogThrottle, clip
from runtime.mqtt.topics import Topics
from runtime.mqtt.waker import Waker

__all__ = ["Ack", "AckHook", "CommandHandler", "EventReceipt", "MqttPublisher", "PublisherStats"]

log = logging.getLogger(__name__)
_throttle = LogThrottle(log)

_JOIN_MARGIN_S = 5.0
_QOS0_QUEUE = 4096  # predictions/metrics waiting for the worker; beyond it they are dropped

CommandHandler = Callable[[dict[str, Any]], None]


class MqttPublisher:
    """Publishes the daemon's topics; see the module docstring for the threading model."""

    def __init__(
        self,
        config: MqttConfig,
        outbox: Outbox,
        *,
        on_acked: AckHook | None = None,
        on_command: CommandHandler | None = None,
        on_committed: CommittedHook | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.topics = Topics(config.topic_prefix, config.device_id)
        #: called on the worker thread for every acknowledged event; keep it short
        self.on_acked = on_acked
        #: called on the MQTT worker with each valid command; hand work off, do not block
        self.on_command = on_command
        self._sw_version = package_version()
        self._thread: threading.Thread | None = None
        self._wake = Waker()
        self._sup = Supervisor(config, self.topics, self._wake, self._on_message, lambda: self.outbox.depth)
        self._event_lock = threading.Lock()  # sequence numbers and their outbox rows stay in order
        #: retained states and event numbers per sensor (runtime.mqtt.publisher_states)
        self._states = StateBoard(config, self.topics, self._sw_version)
        self._numbers = EventNumbering(config, self.topics, outbox)
        self._store = EventStore(outbox, config.outbox.memory_max_messages, on_committed)
        #: accept times, PUBACKs, row deletion (runtime.mqtt.publisher_acks)
        self._acks = AckLedger(outbox, self._sup, config.max_inflight, lambda: self.on_acked)
        self._dropped_write_error = 0
        #: results without events commit with an fsync only if outbox.results_synchronous is full
        self._results_durable = config.outbox.results_synchronous == "full"
        #: the worker thread's loop (runtime.mqtt.publisher_worker)
        self._worker = Worker(config, outbox, self.topics, self._sup, self._wake, self._store, self._acks,
                              self._states, self._event_lock)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker and return at once; the daemon runs even while the broker is down."""
        if self._worker.closing.is_set():
            raise RuntimeError("this MqttPublisher was closed; create a new one")
        if self._thread is None:
            self.outbox.start_checkpoints()  # no commit of the daemon's threads waits for a checkpoint
            self._thread = threading.Thread(target=self._worker.run, name="mqtt-publisher", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Flush events for up to ``timeout`` s, publish ``stopped`` and disconnect cleanly (no will).

        Events not acknowledged in time stay in the outbox and are replayed by the next start.
        """
        self._worker.close_timeout = timeout
        self._worker.closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout + self.config.connect_timeout_s + _JOIN_MARGIN_S)
            if self._thread.is_alive():
                log.warning("MQTT worker did not stop within %.1f s; continuing shutdown", timeout)
            self._thread = None
        else:  # never started: no worker will close the wake-up sockets
            self._wake.close()
        self.outbox.stop_checkpoints()

    def __enter__(self) -> MqttPublisher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- publishing (daemon thread) -----------------------------------------------------------

    def publish_state(self, sensor: str, payload: Payload | Mapping[str, Any]) -> None:
        """Set ``sensor``'s retained state; the latest one is re-published on every reconnect."""
        self._numbers.check_sensor(sensor)
        self._states.set(sensor, encode_payload(payload, f"state of sensor {sensor!r}"))
        self._wake.set()

    def publish_event(self, sensor: str, payload: Mapping[str, Any]) -> EventReceipt:
        """Accept a state-change event durably, then send it at ``event_qos``.

        Adds a unique ``id`` and the next per-sensor ``seq`` unless the payload carries them;
        the sequence number is persisted in the same transaction as the event.
        """
        return self.publish_events([(sensor, payload)])[0]

    def publish_events(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[EventReceipt]:
        """Accept several events in one outbox transaction (one fsync for a whole batch of sensors)."""
        with self._event_lock:
            receipts, pending, seqs = self._numbers.prepare(events)
            t_put = time.monotonic()
            rows = self._store.put(pending)  # None for events held in memory while the disk fails
            self._numbers.commit(seqs)
        receipts = [EventReceipt(row, r.id, r.seq) for row, r in zip(rows, receipts, strict=True)]
        self._accepted(rows, [r.id for r in receipts], t_put)
        return receipts

    def publish_batch(self, events: Sequence[tuple[str, Mapping[str, Any]]],
                      messages: Sequence[NewMessage]) -> tuple[list[EventReceipt], list[int | None]]:
        """What one inference batch makes, events and durable results, in ONE outbox transaction.

        Everything is committed before this returns and before anything is sent; the events come
        first (numbered as :meth:`publish_events` numbers them), then ``messages`` (as
        :meth:`enqueue`). When the outbox cannot be written the events are held in memory and the
        messages are dropped and counted, as each call alone would do. Returns the events' receipts
        and the messages' outbox rows (None: not stored).
        """
        if not events:
            return [], self.enqueue(messages, results=True) if messages else []
        for m in messages:
            check_durable(m)
        with self._event_lock:
            receipts, pending, seqs = self._numbers.prepare(events)
            t_put = time.monotonic()
            rows, extra = self._store.put_with(pending, messages)
            self._numbers.commit(seqs)
        if extra is None:
            extra = [None] * len(messages)
            if messages:
                self._dropped_write_error += len(messages)
                _throttle.error("enqueue", "cannot write %d messages to the outbox (%s); dropped (%d so far)",
                                len(messages), self._store.failing, self._dropped_write_error)
        done = [EventReceipt(row, r.id, r.seq) for row, r in zip(rows, receipts, strict=True)]
        self._accepted(rows + extra, [r.id for r in done] + [None] * len(extra), t_put)
        return done, extra

    def enqueue(self, messages: Sequence[NewMessage], *, results: bool = False) -> list[int | None]:
        """Send other QoS 1/2 messages the event way: outbox first, deleted on PUBACK, in order.

        For results that must not be lost or that are timed to PUBACK (per-window results at QoS 1
        in the benchmark). Returns the outbox rows, which :class:`Ack` reports as ``row``.
        ``results``: per-window results, committed as ``outbox.results_synchronous`` says (alerts
        and everything else as ``outbox.synchronous``).
        """
        for m in messages:
            check_durable(m)
        t_put = time.monotonic()
        try:
            rows = self.outbox.put_many(messages, durable=self._results_durable or not results)
        except (sqlite3.Error, OSError) as exc:  # not events: counted and dropped, never held
            self._dropped_write_error += len(messages)
            _throttle.error("enqueue", "cannot write %d messages to the outbox (%s); dropped (%d so far)",
                            len(messages), clip(str(exc)), self._dropped_write_error)
            return [None] * len(messages)
        self._accepted(rows, [None] * len(rows), t_put)
        return rows

    def _accepted(self, rows: list[int | None], ids: list[str | None], t_put: float) -> None:
        """Remember accept times for ack latency, then wake the worker to send the new rows."""
        self._acks.accepted(rows, ids, t_put)
        self._wake.set()

    def publish_prediction(self, sensor: str, payload: Payload | Mapping[str, Any]) -> bool:
        """Send one window's prediction at QoS 0 if enabled and connected; False if not sent."""
        if not self.config.publish_predictions:
            return False
        self._numbers.check_sensor(sensor)
        return self._send_qos0(self.topics.prediction(sensor), encode_payload(payload, "prediction"))

    def publish_prediction_batch(self, payload: Payload) -> bool:
        """Send one inference batch's results at QoS 0 if enabled and connected; False if not sent."""
        if not self.config.publish_predictions:
            return False
        return self._send_qos0(self.topics.predictions, encode_payload(payload, "prediction batch"))

    def publish_metrics(self, payload: Payload | Mapping[str, Any]) -> bool:
        """Send a metrics document at QoS 0 if connected; False if not sent."""
        return self._send_qos0(self.topics.metrics, encode_payload(payload, "metrics"))

    def last_seq(self, sensor: str) -> int:
        """The last sequence number used for ``sensor``'s events (0 if none), across restarts."""
        with self._event_lock:
            return self._numbers.current(sensor)

    # -- figures ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """The broker accepted the current connection and it is up."""
        link = self._sup.usable()
        return link is not None and link.ready

    def stats(self) -> PublisherStats:
        link = self._sup.link
        dropped = self.outbox.dropped
        return PublisherStats(
            connected=self.connected,
            connects=self._sup.connects,
            connection_losses=self._sup.losses,
            outbox_depth=self.outbox.depth,
            in_flight=len(link.inflight) if link is not None else 0,
            events_acked=self._acks.acked,
            events_rejected=self._acks.rejected,
            dropped_full=dropped.full,
            dropped_expired=dropped.expired,
            qos0_dropped=self._worker.qos0_dropped,
            last_error=self._sup.last_error,
            degraded=self._store.degraded,
            events_held=len(self._store.held),
            events_lost=self._store.lost,
            outbox_write_errors=self._store.write_errors,
            dropped_write_error=self._dropped_write_error,
            callback_errors=self._sup.callback_errors + self._store.hook_errors,
            stalled_connections=self._worker.stalled_total,
        )

    @property
    def failure(self) -> str | None:
        """Why the publisher gave up (connections in a row made no progress); the daemon exits on it."""
        return self._worker.failure

    @property
    def alive(self) -> bool:
        """The worker thread runs (or was never started); False means nothing will be sent again."""
        return self._thread is None or self._thread.is_alive()

    # -- helpers for the daemon-side calls ----------------------------------------------------

    def _send_qos0(self, topic: str, data: bytes) -> bool:
        """Queue a QoS 0 message for the worker if connected; count it as dropped otherwise.

        The worker sends it, not this thread, so that it can note the message's mid before the
        write is reported (see :attr:`Link.qos0`).
        """
        if self.connected and len(self._worker.qos0) < _QOS0_QUEUE:
            self._worker.qos0.append((topic, data))
            self._wake.set()
            return True
        self._worker.qos0_dropped += 1
        return False

    # -- incoming messages (paho callbacks, on the worker) -------------------------------------

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topics.command:
            self._dispatch_command(msg)
        elif msg.topic == f"{self.config.home_assistant.prefix}/status" and msg.payload == b"online":
            # Home Assistant (re)started and forgot non-retained state: announce again
            self._states.reannounce = True
            self._wake.set()

    def _dispatch_command(self, msg: mqtt.MQTTMessage) -> None:
        command = parse_command(msg.topic, bytes(msg.payload), retained=bool(msg.retain),
                                policy=self.config.commands)
        handler = self.on_command
        if command is None or handler is None:
            return
        try:
            handler(command)
        except Exception as exc:
            self._sup.callback_errors += 1
            _throttle.error("command", "command handler failed for action %s: %s",
                            clip(command.get("action")), clip(str(exc)))
