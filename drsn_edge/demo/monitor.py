"""The demo's subscriber: sees the daemon only through MQTT, exactly as SCADA or Node-RED would.

It subscribes to the device's retained ``state`` topics, the QoS 1 ``event`` topics, the QoS 0
per-window ``prediction`` topics and the retained ``status``, parses them with the typed
payload models a consumer would use (:mod:`runtime.mqtt.messages`), and keeps what it heard per
sensor for the live table and the summary.

The daemon stamps every window with the wall-clock time of its last sample, and the prediction
payload carries the window's index; with the model's window and hop this gives the wall-clock
time at which the simulated signal started (:attr:`Monitor.signal_origin`), which maps the
daemon's time stamps back onto the scenario's signal time (where the faults are scheduled).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ValidationError

from runtime.errors import ConfigError
from runtime.mqtt.messages import EventPayload, PredictionPayload, StatePayload
from runtime.mqtt.topics import Topics

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 10.0
#: topic kind -> the payload model it carries (runtime/mqtt/messages.py, the published contract)
_PAYLOADS: dict[str, type[BaseModel]] = {
    "state": StatePayload, "event": EventPayload, "prediction": PredictionPayload,
}


@dataclass(frozen=True)
class EventSeen:
    """One state-change event as the subscriber received it."""

    sensor: str
    seq: int
    from_state: str
    to_state: str
    fault: bool | None
    confidence: float
    ts: float  # wall-clock time of the last sample of the window that decided it
    received: float  # wall-clock time the subscriber got the message


@dataclass
class SensorView:
    """What a client knows about one sensor: retained state, events, the latest window."""

    state: str = "-"
    confidence: float | None = None
    last_class: str | None = None
    last_confidence: float | None = None
    windows: int = 0
    events: list[EventSeen] = field(default_factory=list)

    def copy(self) -> SensorView:
        return SensorView(self.state, self.confidence, self.last_class, self.last_confidence, self.windows,
                          list(self.events))


class Monitor:
    """A paho-mqtt subscriber to one daemon's topics; thread-safe snapshots for the display."""

    def __init__(self, host: str, port: int, topics: Topics, *, window: int, hop: int,
                 sample_rate: float) -> None:
        self.host, self.port, self.topics = host, port, topics
        self._window, self._hop, self._rate = window, hop, sample_rate
        self._lock = threading.Lock()
        self._views: dict[str, SensorView] = {}
        self._origin: float | None = None
        self.status: str | None = None
        self._status_changed = threading.Condition(self._lock)
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{topics.device}-viewer",
                                   protocol=mqtt.MQTTv311, clean_session=True)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # -- connection --------------------------------------------------------------------------

    def start(self) -> Monitor:
        """Connect and subscribe; returns once the broker granted the subscriptions."""
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise ConfigError(
                f"cannot reach the MQTT broker at {self.host}:{self.port} ({exc}); start it, or omit "
                "--broker to use the demo's built-in broker"
            ) from exc
        self._client.loop_start()
        if not self._subscribed.wait(_CONNECT_TIMEOUT_S):
            self.stop()
            raise ConfigError(
                f"the MQTT broker at {self.host}:{self.port} accepted no subscription within "
                f"{_CONNECT_TIMEOUT_S:g} s; check that it allows anonymous clients"
            )
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def clear_retained(self, sensors: list[str]) -> None:
        """Delete this run's retained messages (on a shared broker they would outlive the demo)."""
        infos = [self._client.publish(t, b"", qos=1, retain=True)
                 for t in [self.topics.status, *(self.topics.state(s) for s in sensors)]]
        for info in infos:
            info.wait_for_publish(5.0)

    def wait_for_status(self, status: str, timeout: float) -> bool:
        """Block until the daemon's retained status reads ``status`` (e.g. ``stopped``)."""
        with self._status_changed:
            return self._status_changed.wait_for(lambda: self.status == status, timeout)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("demo subscriber refused by the broker: %s", reason)
            return
        base = self.topics.base
        client.subscribe([(f"{base}/+/state", 1), (f"{base}/+/event", 1), (f"{base}/+/prediction", 0),
                          (self.topics.status, 1)])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        self._subscribed.set()

    # -- messages ----------------------------------------------------------------------------

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        received = time.time()
        if msg.topic == self.topics.status:
            with self._status_changed:
                self.status = msg.payload.decode("utf-8", "replace")
                self._status_changed.notify_all()
            return
        sensor, _, kind = msg.topic[len(self.topics.base) + 1:].partition("/")
        if not msg.payload:
            return  # a retained message being cleared
        model = _PAYLOADS.get(kind)
        if model is None:
            return
        try:
            payload = model.model_validate_json(msg.payload)
        except ValidationError as exc:
            log.warning("demo subscriber: %s is not a %s payload (%s); ignored", msg.topic, kind,
                        exc.errors()[0]["msg"])
            return
        with self._lock:
            view = self._views.setdefault(sensor, SensorView())
            if isinstance(payload, StatePayload):
                view.state, view.confidence = payload.state, payload.confidence
            elif isinstance(payload, EventPayload):
                view.events.append(EventSeen(sensor, payload.seq, payload.from_, payload.to, payload.fault,
                                             payload.confidence, payload.ts, received))
            elif isinstance(payload, PredictionPayload):
                self._on_prediction(view, payload)

    def _on_prediction(self, view: SensorView, payload: PredictionPayload) -> None:
        view.last_class, view.last_confidence = payload.class_, payload.confidence
        view.windows += 1
        if self._origin is None:
            last_sample = self._window + self._hop * payload.window - 1
            self._origin = payload.ts - last_sample / self._rate

    # -- reading -----------------------------------------------------------------------------

    @property
    def signal_origin(self) -> float | None:
        """Wall-clock time of the simulated signal's first sample, once a prediction was seen."""
        with self._lock:
            return self._origin

    def snapshot(self) -> dict[str, SensorView]:
        with self._lock:
            return {k: v.copy() for k, v in self._views.items()}
