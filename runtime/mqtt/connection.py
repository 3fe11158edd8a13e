"""Building and opening one paho-mqtt client for one broker connection, and the reconnect backoff.

The publisher uses a *fresh* client for every connection and never lets paho reconnect on its
own (``reconnect_on_failure=False``). paho keeps un-acknowledged QoS 1 messages in its own queue
across reconnects and re-sends them only after the ``on_connect`` callback has run, so anything
published from another thread in that gap would overtake them. With one client per connection
the SQLite outbox is the only queue: after a reconnect the publisher re-sends its un-acked rows
itself, in id order, and nothing can overtake them.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from runtime.errors import ConfigError
from runtime.mqtt.config import MqttConfig, TlsConfig
from runtime.mqtt.topics import STATUS_OFFLINE, Topics

log = logging.getLogger(__name__)

#: CONNACK reason codes (MQTT 5 numbering; paho maps 3.1.1 refusals onto them) that mean credentials
AUTH_REFUSED = frozenset({134, 135})  # Bad user name or password, Not authorized
PAHO_LOGGER = "runtime.mqtt.paho"


class AfterCloseFilter(logging.Filter):
    """Demote paho's "Client is not connected" from ERROR to DEBUG.

    paho's network loop may run once more after ``disconnect()`` closed the socket (with paho's
    own loop thread; other clients of the daemon still use it) and logs that at ERROR, so every
    clean stop printed an alarming line. The connection state itself
    is reported by the publisher (``on_disconnect``, ``is_connected``), so nothing is hidden.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and str(record.msg).startswith("Client is not connected"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def paho_logger() -> logging.Logger:
    """The logger our clients give paho, with :class:`AfterCloseFilter` installed once.

    paho's own default logger (used by its helpers and by clients that call ``enable_logger()``
    without an argument) gets the filter too.
    """
    for name in (PAHO_LOGGER, "paho.mqtt.client"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, AfterCloseFilter) for f in logger.filters):
            logger.addFilter(AfterCloseFilter())
    return logging.getLogger(PAHO_LOGGER)


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """An SSL context from the config, built once so that bad files fail at start, not at connect."""
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file) if tls.ca_file else None
        )
        if tls.cert_file is not None:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the MQTT TLS files (ca_file={tls.ca_file}, cert_file={tls.cert_file}, "
            f"key_file={tls.key_file}): {exc}; give readable PEM files in mqtt.tls"
        ) from exc
    if tls.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def build_client(cfg: MqttConfig, topics: Topics, tls: ssl.SSLContext | None) -> mqtt.Client:
    """A configured, not yet connected client: protocol, credentials, TLS and the last will."""
    v5 = cfg.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=cfg.effective_client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else True,
        reconnect_on_failure=False,
    )
    client.connect_timeout = cfg.connect_timeout_s
    client.max_inflight_messages_set(0)  # the publisher's window governs; paho must not hold messages back
    client.enable_logger(paho_logger())
    if cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password is not None else None
        client.username_pw_set(cfg.username, password)
    if tls is not None:
        client.tls_set_context(tls)
    client.will_set(topics.status, STATUS_OFFLINE, qos=1, retain=True)
    return client


def open_connection(client: mqtt.Client, cfg: MqttConfig) -> None:
    """Open the socket and send CONNECT (blocking up to ``connect_timeout_s``); raises ``OSError``.

    A clean session is requested: commands queued on the broker while the daemon was away are
    not wanted, and events are replayed from the outbox rather than from broker session state.
    """
    if cfg.protocol == "5":
        client.connect(cfg.host, cfg.port, cfg.keepalive_s, clean_start=True)
    else:
        client.connect(cfg.host, cfg.port, cfg.keepalive_s)
    sock = client.socket()
    if isinstance(sock, socket.socket):
        # Small PUBLISH packets must not wait for the previous one's TCP ACK (Nagle): that costs
        # up to 40 ms per event against a delayed-ACK peer.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Backoff:
    """Exponential reconnect delay with jitter, so a fleet does not reconnect in lockstep."""

    def __init__(
        self, min_s: float, max_s: float, jitter: float = 0.2, rng: random.Random | None = None
    ) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._next = min_s

    def next_delay(self) -> float:
        """The delay before the next attempt; doubles up to ``max_s`` on each call."""
        base = self._next
        self._next = min(self._next * 2.0, self.max_s)
        return base * (1.0 + self.jitter * (self._rng.random() - 0.5))

    def reset(self) -> None:
        """Start again from ``min_s`` (after a connection the broker accepted)."""
        self._next = self.min_s
