"""Keeps the publisher connected: one :class:`Link` at a time, reconnect with backoff, clear logs.

The supervisor runs on the publisher's worker thread, and so do its paho callbacks: the worker
runs paho's network loop itself (:meth:`Link.pump`), so a callback runs inside the worker's read
of the socket. Callbacks only set flags and append to the ``acks`` queue, which the worker
drains right after the read. Every callback is guarded: an exception escaping one would end the
worker's step and with it the connection. Guarded failures are counted in ``callback_errors``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from runtime.mqtt.config import MqttConfig
from runtime.mqtt.connection import AUTH_REFUSED, Backoff, build_client, open_connection, tls_context
from runtime.mqtt.link import Link
from runtime.mqtt.throttle import LogThrottle, clip
from runtime.mqtt.topics import STATUS_ONLINE, Topics
from runtime.mqtt.waker import Waker

log = logging.getLogger(__name__)
_throttle = LogThrottle(log)
_F = TypeVar("_F", bound=Callable[..., None])

_CONNACK_GRACE_S = 5.0
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only

#: (link generation, mid, monotonic time of the PUBACK, accepted by the broker)
AckRecord = tuple[int, int, float, bool]


class Supervisor:
    """Owns the current link and the reconnect schedule; collects what paho's callbacks report."""

    def __init__(
        self,
        config: MqttConfig,
        topics: Topics,
        wake: Waker,
        on_message: Callable[[mqtt.MQTTMessage], None],
        waiting: Callable[[], int],
    ) -> None:
        self.config = config
        self.topics = topics
        self.wake = wake
        self.acks: deque[AckRecord] = deque()
        self.link: Link | None = None
        self.connects = 0
        self.losses = 0
        self.last_error: str | None = None
        self.stopping = False
        #: exceptions caught in paho callbacks (and in the hooks they call)
        self.callback_errors = 0
        #: accepted connections in a row that stalled (see :meth:`Link.stall`); reset by a PUBACK
        self.stalls = 0
        self._on_message = on_message
        self._waiting = waiting
        self._tls = tls_context(config.tls) if config.tls.enabled else None
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        self._retry_at = 0.0
        self._generation = 0
        self._failures = 0

    def usable(self) -> Link | None:
        """The current link if it is alive (it may still await CONNACK), else None."""
        link = self.link
        return link if link is not None and not link.dead(time.monotonic()) else None

    def connect_when_due(self, closing: threading.Event) -> None:
        """Open a new link if the backoff allows, else sleep until it does (or until closing)."""
        delay = self._retry_at - time.monotonic()
        if delay > 0:
            closing.wait(delay)
            return
        cfg = self.config
        self._generation += 1
        client = build_client(cfg, self.topics, self._tls)
        deadline = time.monotonic() + cfg.connect_timeout_s + _CONNACK_GRACE_S
        link = Link(client, self._generation, deadline, cfg.max_inflight)
        client.user_data_set(link)
        client.on_connect = self.guard(self._on_connect)
        client.on_disconnect = self.guard(self._on_disconnect)
        client.on_publish = self.guard(self._on_publish)
        client.on_message = self.guard(self._on_paho_message)
        try:
            open_connection(client, cfg)
        except (OSError, ValueError) as exc:
            self._note_failure(f"cannot connect to MQTT broker {cfg.host}:{cfg.port}: {exc}")
            self._retry_at = time.monotonic() + self._backoff.next_delay()
            return
        self.link = link  # no loop_start: the worker reads and writes the socket (Link.pump)

    def retire(self, link: Link) -> None:
        """Close a dead link's socket and schedule the next attempt.

        Every PUBACK the link read is in ``acks`` already (callbacks run on this thread). A link that
        was accepted is closed without DISCONNECT, as a network failure would (the broker sends the
        will); one that never was accepted carried no events and is closed in the background.
        """
        if self.link is link:
            self.link = None
        if link.ready:
            sock = link.client.socket()
            if sock is not None:  # still open: a dropped link (paho closes the socket on errors)
                with contextlib.suppress(OSError):
                    sock.close()
            self._backoff.reset()
        else:
            threading.Thread(target=abandon, args=(link.client,), daemon=True).start()
            if link.refused is None:
                why = link.closed_because or "no CONNACK in time"
                cfg = self.config
                self._note_failure(f"MQTT broker {cfg.host}:{cfg.port} closed the connection ({why})")
        self._retry_at = time.monotonic() + self._backoff.next_delay()

    def guard(self, callback: _F) -> _F:
        """``callback`` made unable to raise: failures are counted and logged at most every 10 s.

        Callbacks run on the worker (inside :meth:`Link.pump`): what escaped one would end its step
        and the connection, or with ``SystemExit`` the worker itself, so that is caught too."""

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except (Exception, SystemExit) as exc:  # a handler's sys.exit() must not end the worker
                self.callback_errors += 1
                log.debug("MQTT callback %s failed", callback.__name__, exc_info=True)
                _throttle.error(
                    callback.__name__, "MQTT callback %s failed (%s: %s); the connection keeps serving, "
                    "%d callback failures so far", callback.__name__, type(exc).__name__, clip(str(exc)),
                    self.callback_errors,
                )

        guarded.__name__ = callback.__name__
        return guarded  # type: ignore[return-value]

    def _note_failure(self, message: str, level: int = logging.WARNING) -> None:
        """Log the first failure of a streak loudly and the rest at debug level."""
        self.last_error = message
        self._failures += 1
        if self._failures == 1:
            suffix = "" if level >= logging.ERROR else (
                f"; retrying with backoff up to {self.config.reconnect_max_s:.0f} s, "
                "events are kept in the outbox meanwhile"
            )
            log.log(level, "%s%s", message, suffix)
        else:
            log.debug("%s (attempt %d)", message, self._failures)

    # -- paho callbacks (on the worker, inside Link.pump or a publish) ------------------------

    def _on_connect(
        self, client: mqtt.Client, link: Link, flags: Any, reason: ReasonCode, props: Properties | None
    ) -> None:
        if reason.is_failure:
            link.refused = str(reason)
            self._note_failure(self._refusal_message(reason), logging.ERROR)
            return
        receive_max = getattr(props, "ReceiveMaximum", None)
        if receive_max:  # MQTT 5 flow control: never exceed the broker's unacknowledged quota
            link.window = max(1, min(link.window, int(receive_max) - 1))  # one left for the status
        client.publish(self.topics.status, STATUS_ONLINE, qos=1, retain=True)
        subs = [(self.topics.command, 1)] if self.config.commands.enabled else []
        if self.config.home_assistant.discovery:
            subs.append((f"{self.config.home_assistant.prefix}/status", 1))
        if subs:
            client.subscribe(subs)
        self.connects += 1
        self._failures = 0
        self.last_error = None
        cfg = self.config
        log.info(
            "connected to MQTT broker %s:%d (MQTT %s); %d events waiting in the outbox",
            cfg.host, cfg.port, cfg.protocol, self._waiting(),
        )
        link.last_progress = time.monotonic()
        link.ready = True
        self.wake.set()

    def _refusal_message(self, reason: ReasonCode) -> str:
        cfg = self.config
        if reason.value in AUTH_REFUSED:
            hint = "check mqtt.username and mqtt.password and the broker's user/ACL settings"
        else:
            hint = f"check the broker's log and mqtt.client_id ({cfg.effective_client_id})"
        return f"MQTT broker {cfg.host}:{cfg.port} refused the connection: {reason}; {hint}"

    def _on_disconnect(
        self, client: mqtt.Client, link: Link, flags: Any, reason: ReasonCode, props: Properties | None
    ) -> None:
        was_up = link.ready and not link.lost
        link.closed_because = str(reason)
        link.lost = True
        if was_up and not self.stopping:
            self.losses += 1
            self.last_error = f"connection lost: {reason}"
            log.warning(
                "lost the MQTT connection (%s); events are kept in the outbox and replayed in order "
                "after reconnecting", reason,
            )
        self.wake.set()

    def _on_publish(
        self, client: mqtt.Client, link: Link, mid: int, reason: ReasonCode, props: Properties | None
    ) -> None:
        ok = not reason.is_failure
        if not ok:
            log.error("the broker rejected message %d: %s; check its ACL for this client", mid, reason)
        self.acks.append((link.generation, mid, time.monotonic(), ok))  # drained right after the read:
        quick_ack(client)  # no wake needed, this runs on the worker

    def _on_paho_message(self, client: mqtt.Client, link: Link, msg: mqtt.MQTTMessage) -> None:
        self._on_message(msg)


def abandon(client: mqtt.Client) -> None:
    """Close a client whose connection never got going, without blocking the caller on it."""
    try:
        client.disconnect()
    except Exception as exc:  # already closed underneath
        log.debug("disconnect of an abandoned client: %s", exc)
    client.loop_stop()


def quick_ack(client: mqtt.Client) -> None:
    """Ask Linux to acknowledge the broker's segments at once instead of after up to 40 ms.

    Brokers that leave Nagle's algorithm on (Mosquitto's default) hold each PUBACK until the
    previous one's TCP ACK arrives; a delayed ACK on our side then stalls acknowledgements by tens
    of milliseconds. Quick-ack mode is not sticky, so it is re-armed after every PUBACK.
    """
    sock = client.socket()
    if _QUICKACK is not None and isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # the socket closed underneath: nothing to speed up
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
