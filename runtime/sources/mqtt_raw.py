"""Raw samples published to MQTT: one topic per sensor, one frame per message.

Gateways that already speak MQTT (PLCs, Node-RED flows, ESP32 firmware) publish chunks of
samples to a topic per sensor, as binary or JSON frames (:mod:`runtime.sources.frames`). The
topic identifies the sensor; a frame that names a different sensor, arrives at another rate than
the config declares, or is malformed is rejected through ``on_error`` and the other sensors go
on. The paho-mqtt client reconnects on its own and re-subscribes on every connect, because a
broker restart forgets non-persistent subscriptions.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import Field, SecretStr, field_validator, model_validator

from runtime.config_base import StrictModel
from runtime.errors import ConfigError
from runtime.sources.base import SOURCE_WIDE, Source
from runtime.sources.config import SourceConfigBase
from runtime.sources.fair import DEFAULT_CAPACITY, FAIR_DESCRIPTION, FairIntake
from runtime.sources.fields import SensorId, require_unique
from runtime.sources.intake import (
    DEFAULT_MAX_CLOCK_SKEW_S,
    PAYLOAD_DESCRIPTION,
    SKEW_DESCRIPTION,
    FrameIntake,
    PayloadFormat,
)

log = logging.getLogger(__name__)


class MqttRawSensor(StrictModel):
    """One sensor and the topic its frames arrive on."""

    id: SensorId = Field(..., description="Sensor id.")
    topic: str = Field(..., min_length=1, description="Exact topic (no + or # wildcards) of this "
                       "sensor's frames.")
    sample_rate: float = Field(..., gt=0, description="Declared samples per second; frames at another rate "
                               "are rejected.")

    @field_validator("topic")
    @classmethod
    def _no_wildcards(cls, topic: str) -> str:
        if "+" in topic or "#" in topic:
            raise ConfigError(f"topic {topic!r} contains a wildcard; give every sensor its exact topic")
        return topic


class MqttRawSourceConfig(SourceConfigBase):
    """Subscribe to raw-sample topics on an MQTT broker."""

    type: Literal["mqtt_raw"] = Field("mqtt_raw", description="Selects the MQTT raw-sample source.")
    host: str = Field("localhost", description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is the usual TLS port).")
    protocol: Literal["3.1.1", "5"] = Field("3.1.1", description="MQTT protocol version.")
    client_id: str = Field("", description="Client id; empty lets the broker or client pick a unique one.")
    username: str | None = Field(None, description="Broker user name, if the broker requires one.")
    password: SecretStr | None = Field(None, description="Broker password (use ${ENV} substitution).")
    tls: bool = Field(False, description="Connect with TLS.")
    ca_certs: Path | None = Field(None, description="CA bundle for TLS; None uses the system's CAs.")
    certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    keyfile: Path | None = Field(None, description="Client private key for mutual TLS.")
    keepalive: int = Field(30, ge=5, description="Seconds between keep-alive pings.")
    qos: Literal[0, 1, 2] = Field(0, description="Subscription QoS; 0 suits high-rate raw samples.")
    payload: PayloadFormat = Field("auto", description=PAYLOAD_DESCRIPTION)
    max_clock_skew_s: float | None = Field(DEFAULT_MAX_CLOCK_SKEW_S, gt=0, description=SKEW_DESCRIPTION)
    backlog: int = Field(DEFAULT_CAPACITY, ge=16, description=FAIR_DESCRIPTION)
    sensors: list[MqttRawSensor] = Field(..., min_length=1, description="Sensors and their topics.")

    @model_validator(mode="after")
    def _unique(self) -> MqttRawSourceConfig:
        require_unique(s.id for s in self.sensors)
        require_unique((s.topic for s in self.sensors), what="topic")
        if (self.certfile is None) != (self.keyfile is None):
            raise ConfigError("mutual TLS needs both certfile and keyfile; set both or neither")
        return self

    def sensor_ids(self) -> list[str]:
        return [str(entry.id) for entry in self.sensors]


def make_client(config: MqttRawSourceConfig) -> mqtt.Client:
    """A paho-mqtt 2.x client (callback API version 2) with the config's protocol, auth and TLS."""
    v5 = config.protocol == "5"
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=config.client_id,
        clean_session=None if v5 else True,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
    )
    if config.username is not None:
        password = config.password.get_secret_value() if config.password is not None else None
        client.username_pw_set(config.username, password)
    if config.tls:
        client.tls_set(
            ca_certs=str(config.ca_certs) if config.ca_certs else None,
            certfile=str(config.certfile) if config.certfile else None,
            keyfile=str(config.keyfile) if config.keyfile else None,
        )
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


class MqttRawSource(Source[MqttRawSourceConfig]):
    """Subscribes to every sensor's topic and emits a chunk per valid message.

    :attr:`subscribed` is set while the broker has acknowledged the subscriptions, and cleared
    on disconnect; tests and health checks wait on it.
    """

    type = "mqtt_raw"

    def __init__(self, config: MqttRawSourceConfig) -> None:
        super().__init__(config)
        self.subscribed = threading.Event()
        self._topics = {s.topic: s.id for s in config.sensors}
        self._client: mqtt.Client | None = None
        self._intake: FairIntake | None = None
        self._outage_reported = False

    @property
    def sensors(self) -> dict[str, float]:
        return {s.id: s.sample_rate for s in self.config.sensors}

    def _open(self) -> None:
        self._intake = FairIntake(
            FrameIntake(self.sensors, payload_format=self.config.payload, emit=self._emit,
                        report=self._report, max_clock_skew_s=self.config.max_clock_skew_s),
            name="source-mqtt_raw-intake", capacity=self.config.backlog, on_drop=self._count_drop,
            emit_block=self._emit_block)
        client = make_client(self.config)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive)
        self._client = client

    def _run(self) -> None:
        client = self._client
        intake = self._intake
        assert client is not None and intake is not None, "_open() runs before _run()"
        intake.start()
        client.loop_start()
        try:
            self._stopping.wait()
        finally:
            intake.stop()
            client.disconnect()
            client.loop_stop()
            self.subscribed.clear()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            self._report(SOURCE_WIDE, ConfigError(
                f"MQTT broker {self.config.host}:{self.config.port} refused the raw-sample connection "
                f"({reason_code}); check username, password, client_id and protocol in the source config"
            ))
            return
        log.info("raw-sample source connected to %s:%d", self.config.host, self.config.port)
        self._outage_reported = False
        client.subscribe([(topic, int(self.config.qos)) for topic in self._topics])

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        """Report an unreachable broker once per outage; paho keeps retrying with back-off."""
        log.warning("raw-sample broker %s:%d unreachable; retrying", self.config.host, self.config.port)
        if not self._outage_reported:
            self._outage_reported = True
            self._report(SOURCE_WIDE, ConnectionError(
                f"MQTT broker {self.config.host}:{self.config.port} is unreachable; retrying. Check that "
                "the broker runs and that host and port in the source config are right"
            ))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason_code: ReasonCode, properties: Properties | None) -> None:
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning("raw-sample source disconnected from broker (%s); reconnecting", reason_code)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        refused = [t for t, rc in zip(self._topics, reason_codes, strict=False) if rc.is_failure]
        for topic in refused:
            self._report(self._topics[topic], ConfigError(
                f"MQTT broker refused the subscription to {topic!r}; allow this client to read it in the "
                "broker's ACL"
            ))
        self.subscribed.set()
        log.info("subscribed to %d raw-sample topics (%d refused)", len(self._topics), len(refused))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        sensor_id = self._topics.get(message.topic)
        intake = self._intake
        if sensor_id is None or intake is None:
            log.debug("ignoring message on unexpected topic %s", message.topic)
            return
        try:  # queued: paho's network thread returns at once, the intake's worker serves sensors in turn
            intake.put(sensor_id, message.payload, origin=f"topic {message.topic!r}", sensor_id=sensor_id)
        except Exception as exc:  # an exception escaping a paho callback would end its network loop
            self._throttle.log(f"message:{sensor_id}", logging.ERROR, "handling a message on %s failed: %s",
                               message.topic, exc, exc_info=True)
            self._report(sensor_id, exc)
