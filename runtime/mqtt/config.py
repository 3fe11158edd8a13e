"""Configuration of the daemon's MQTT voice: broker, credentials, TLS, topics and the outbox.

The classes live beside the publisher they configure and are assembled into the daemon's config
under the ``mqtt:`` key. Names that end up inside topics are checked here, so a bad device id or
prefix fails ``drsn-edge validate-config`` instead of producing topics no subscriber can match.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from runtime.config_base import StrictModel

_FORBIDDEN_IN_TOPIC = re.compile(r"[+#\x00]")
#: what a command's "action" may be (runtime.mqtt.commands refuses anything else)
ACTION_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_topic_segment(value: str, what: str, *, allow_slash: bool = False) -> str:
    """Return ``value`` if it can be used inside an MQTT topic name, else raise ``ValueError``.

    Wildcards (``+``, ``#``) and NUL are illegal in topic names; an empty level or a leading or
    trailing ``/`` silently creates topics that nobody subscribes to.
    """
    if not value:
        raise ValueError(f"{what} must not be empty")
    if _FORBIDDEN_IN_TOPIC.search(value):
        raise ValueError(f"{what} {value!r} contains '+', '#' or NUL, which MQTT forbids in topic names")
    if not allow_slash and "/" in value:
        raise ValueError(f"{what} {value!r} contains '/', which would split it into several topic levels")
    if allow_slash and (value.startswith("/") or value.endswith("/") or "//" in value):
        raise ValueError(
            f"{what} {value!r} has an empty topic level; remove the leading, trailing or double '/'"
        )
    return value


def default_device_id() -> str:
    """The host name, reduced to characters that are safe in topics and Home Assistant ids."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname()).strip("-")
    return name or "edge"


class TlsConfig(StrictModel):
    """TLS towards the broker. Off unless ``enabled``; the system CA store is used without ``ca_file``."""

    enabled: bool = Field(default=False, description="Connect over TLS (usually port 8883).")
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the broker's certificate; None uses the system store.",
    )
    cert_file: Path | None = Field(
        default=None, description="PEM client certificate, for brokers that require one."
    )
    key_file: Path | None = Field(default=None, description="PEM private key of cert_file.")
    insecure: bool = Field(
        default=False,
        description="Skip verification of the broker's certificate and host name. Only for testing: "
        "it allows anyone on the network to impersonate the broker.",
    )

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsConfig:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("tls.key_file is set without tls.cert_file; give both or neither")
        return self


class HomeAssistantConfig(StrictModel):
    """Home Assistant MQTT discovery: one retained config message per sensor's state."""

    discovery: bool = Field(
        default=False, description="Publish Home Assistant MQTT discovery config messages."
    )
    prefix: str = Field(default="homeassistant", description="Home Assistant's discovery prefix.")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return check_topic_segment(v, "home_assistant.prefix", allow_slash=True)


class CommandsConfig(StrictModel):
    """Commands on ``<prefix>/<device>/cmd``: whether to listen, which actions, how large."""

    enabled: bool = Field(
        default=True, description="Subscribe to the command topic; false ignores it entirely."
    )
    allow: list[str] | None = Field(
        default=None,
        description="Actions that may be run (e.g. [reload]); None allows every action the daemon "
        "knows. Others are ignored with a rate-limited warning.",
    )
    max_payload_bytes: int = Field(
        default=4096,
        ge=16,
        le=1_048_576,
        description="Larger command messages are ignored unparsed (a command is a small JSON object).",
    )

    @field_validator("allow")
    @classmethod
    def _actions(cls, v: list[str] | None) -> list[str] | None:
        for action in v or []:
            if not ACTION_PATTERN.fullmatch(action):
                raise ValueError(
                    f"mqtt.commands.allow has {action!r}, which no command can carry; actions are "
                    "1-64 letters, digits, '_', '.' or '-' (e.g. reload)"
                )
        return v


class OutboxConfig(StrictModel):
    """The on-disk queue that holds events until the broker acknowledges them."""

    path: Path = Field(
        default=Path("drsn-edge-outbox.sqlite3"),
        description="SQLite file of the outbox; a relative path is resolved against the directory of "
        "the config file. Put it on persistent storage: events survive a crash or power cut only if "
        "it does. A corrupt file is renamed to <path>.corrupt-<UTC time> and a fresh one started.",
    )
    max_messages: int = Field(
        default=100_000,
        gt=0,
        description="Most events kept while the broker is unreachable; beyond it drop_policy applies.",
    )
    max_age_s: float | None = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="Events older than this are dropped unsent; None keeps them forever.",
    )
    drop_policy: Literal["drop_oldest", "drop_newest"] = Field(
        default="drop_oldest",
        description="When the outbox is full: drop_oldest deletes the oldest event to admit the new one; "
        "drop_newest refuses the new event. Drops are counted and reported in metrics.",
    )
    synchronous: Literal["normal", "full"] = Field(
        default="full",
        description="SQLite durability. full: an accepted event survives a power cut (one fsync per "
        "event); normal: it survives a crash of the daemon, but a power cut may lose the last events, "
        "at lower latency.",
    )
    results_synchronous: Literal["normal", "full"] = Field(
        default="normal",
        description="SQLite durability of per-window results sent at QoS 1 (mqtt.prediction_qos: 1) in "
        "an outbox transaction without events. normal: they survive a crash or kill of the daemon, but "
        "a power cut may lose those committed in the last moments before it; full: one fsync per batch "
        "(about 0.2 ms of CPU and 1 ms on the inference thread on a virtual disk). Events always follow "
        "synchronous.",
    )
    memory_max_messages: int = Field(
        default=10_000,
        ge=1,
        description="Events held in memory while the outbox cannot be written (disk full, I/O error); "
        "they are written as soon as it can be again. Beyond this the oldest are lost and counted in "
        "drsn_edge_events_lost_total.",
    )


class MqttConfig(StrictModel):
    """How the daemon talks to the MQTT broker."""

    host: str = Field(default="localhost", min_length=1, description="Broker host name or IP address.")
    port: int = Field(
        default=1883, ge=1, le=65535, description="Broker TCP port (1883 plain, 8883 usually TLS)."
    )
    protocol: Literal["3.1.1", "5"] = Field(
        default="3.1.1",
        description="MQTT protocol version; 5 adds reason codes and flow control from the broker.",
    )
    client_id: str | None = Field(
        default=None,
        description="MQTT client id; None uses 'drsn-edge-<device_id>'. Must be unique on the broker.",
    )
    username: str | None = Field(
        default=None, description="User name for brokers that require authentication."
    )
    password: SecretStr | None = Field(default=None, description="Password of username; never logged.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings.")
    topic_prefix: str = Field(
        default="drsn-edge",
        description="First topic level(s): topics are <topic_prefix>/<device_id>/...",
    )
    device_id: str = Field(
        default_factory=default_device_id,
        description="This device's name in topics and Home Assistant; defaults to the host name.",
    )
    keepalive_s: int = Field(
        default=60,
        ge=5,
        le=65535,
        description="MQTT keepalive; the broker declares us offline after 1.5x this.",
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Time allowed for the TCP/TLS connection."
    )
    reconnect_min_s: float = Field(
        default=1.0, gt=0, description="First delay before reconnecting after a loss."
    )
    reconnect_max_s: float = Field(
        default=30.0, gt=0, description="Longest delay between reconnection attempts (the backoff cap)."
    )
    event_qos: Literal[1, 2] = Field(
        default=1,
        description="QoS of state-change events; they leave the outbox on the broker's acknowledgement.",
    )
    state_qos: Literal[0, 1, 2] = Field(
        default=1, description="QoS of the retained per-sensor state messages."
    )
    publish_predictions: bool = Field(
        default=False, description="Publish every window's result (QoS: prediction_qos)."
    )
    predictions: Literal["window", "batch", "both"] = Field(
        default="window",
        description="How publish_predictions sends results. window: one message per window on "
        "<prefix>/<device>/<sensor>/prediction; batch: one message per inference batch, as arrays, on "
        "<prefix>/<device>/predictions (far fewer messages and outbox rows at QoS 1); both.",
    )
    metrics_interval_s: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between metrics messages on <prefix>/<device>/metrics; 0 disables them.",
    )
    ack_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="No PUBACK for this long while messages are in flight: the connection is dropped "
        "and opened again.",
    )
    max_stalled_connections: int = Field(
        default=3,
        ge=1,
        description="Connections in a row that stall as above before the daemon exits non-zero, so "
        "that systemd restarts it. A broker that is down does not count: only accepted connections.",
    )
    commands: CommandsConfig = Field(
        default_factory=CommandsConfig, description="The command topic <prefix>/<device>/cmd."
    )
    max_inflight: int = Field(
        default=64,
        ge=1,
        le=65535,
        description="Events sent but not yet acknowledged; more means higher throughput over slow links. "
        "Capped by the broker's Receive Maximum under MQTT 5.",
    )
    home_assistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig, description="Home Assistant MQTT discovery."
    )
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="The durable event queue.")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return check_topic_segment(v, "topic_prefix", allow_slash=True)

    @field_validator("device_id")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_topic_segment(v, "device_id")

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        if self.password is not None and self.username is None:
            raise ValueError(
                "mqtt.password is set without mqtt.username; MQTT 3.1.1 sends a password only with a user"
            )
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("mqtt.reconnect_max_s must be at least reconnect_min_s")
        return self

    @property
    def effective_client_id(self) -> str:
        """The client id sent to the broker."""
        return self.client_id or f"drsn-edge-{self.device_id}"
