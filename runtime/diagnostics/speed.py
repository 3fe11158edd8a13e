"""The shaft speed of a diagnosed sensor: fixed in the config, or read from an MQTT topic.

Why it matters: every fault frequency scales with the speed, and a 2 % tolerance is all the
envelope search allows; a machine on a variable-frequency drive needs the speed it runs at *now*.
A drive, PLC or tachometer gateway usually publishes it, as a bare number (``1797.5``) or inside
a JSON status message (``{"drive": {"rpm": 1797.5}}``), which is what ``rpm: {topic, field}``
reads:

.. code-block:: yaml

    rpm: {topic: plant/line1/motor7/rpm, field: drive.rpm, max_age_s: 10, scale: 1.0}

A speed that never came, is older than ``max_age_s``, or is zero (the machine stands still)
makes the evidence ``not_applicable`` with that reason; nothing crashes and nothing is guessed.
The parser is total: every payload gives a number or a :class:`~runtime.errors.DataError`
that says what is wrong. One listener (its own MQTT client on the daemon's broker, auto-
reconnecting, never publishing) serves every sensor's speed topic.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from runtime.config_base import StrictModel
from runtime.errors import DataError
from runtime.log_throttle import LogThrottle

log = logging.getLogger(__name__)
_throttle = LogThrottle(log)

#: a speed message is a number or a small JSON object; anything larger is refused unparsed
MAX_SPEED_PAYLOAD = 4096
_FIELD_PART = r"[A-Za-z0-9_\-]+"


class SpeedTopicConfig(StrictModel):
    """Where a sensor's shaft speed is published, and how old it may be."""

    topic: str = Field(
        ..., min_length=1, max_length=512, description="MQTT topic carrying the speed (no wildcards)."
    )
    field: str | None = Field(
        None,
        pattern=rf"^{_FIELD_PART}(\.{_FIELD_PART})*$",
        description="Dotted path to the number inside a JSON payload (drive.rpm, axes.0.rpm); "
        "none: the payload is the number itself.",
    )
    scale: float = Field(
        1.0, gt=0, description="Multiplies the value to give rpm (60 when the topic carries Hz)."
    )
    max_age_s: float = Field(
        10.0, gt=0, description="A speed older than this is stale: the evidence is not_applicable."
    )

    @field_validator("topic")
    @classmethod
    def _plain_topic(cls, topic: str) -> str:
        if "+" in topic or "#" in topic:
            raise ValueError(
                f"speed topic {topic!r} has a wildcard; give the one topic that carries this shaft's speed"
            )
        return topic


def parse_speed(payload: bytes | bytearray | memoryview | str, field: str | None = None,
                scale: float = 1.0) -> float:
    """The speed in rpm carried by ``payload``: a bare number, or the number at ``field`` in JSON.

    Total: any payload returns a finite rpm >= 0 or raises DataError naming the problem. A
    negative speed (a drive reporting the direction) counts by its magnitude: the direction does
    not change the fault frequencies.
    """
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > MAX_SPEED_PAYLOAD:
        raise DataError(f"speed payload of {len(raw)} bytes is over {MAX_SPEED_PAYLOAD}; publish the number "
                        "or a small JSON object")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise DataError("speed payload is not UTF-8 text; publish the number as text or JSON") from exc
    if not text:
        raise DataError("speed payload is empty; publish the shaft speed as a number")
    try:
        doc: Any = json.loads(text)
    except RecursionError as exc:
        raise DataError("speed payload is nested too deeply to parse") from exc
    except ValueError as exc:  # not JSON (a unit suffix, text) or an integer of thousands of digits
        raise DataError(f"speed payload {_clip(text)} is not a number or JSON; publish e.g. 1797.5 "
                        '(or {"rpm": 1797.5} with field: rpm)') from exc
    if field is not None:
        doc = _at(doc, field)
    elif isinstance(doc, (dict, list)):
        raise DataError(f"speed payload is JSON {type(doc).__name__}; set field: to the path of the number "
                        "inside it")
    if isinstance(doc, bool) or not isinstance(doc, (int, float)):
        raise DataError(f"speed {_clip(json.dumps(doc))} is not a number; publish the rpm as a number")
    try:
        rpm = abs(float(doc)) * scale
    except OverflowError as exc:
        raise DataError("speed is an integer too large for a number of rpm") from exc
    if not math.isfinite(rpm):
        raise DataError(f"speed {_clip(text)} is not finite; publish a real number of rpm")
    return rpm


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise DataError(f"speed payload has no {path!r} (missing at {part!r}); check field: against what "
                            "the publisher sends")
    return doc


def _clip(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclass
class _Latest:
    rpm: float | None = None
    at: float = 0.0  # time.monotonic() of the last good value
    received: int = 0
    bad: int = 0
    last_error: str | None = None


class SpeedBoard:
    """The latest speed per topic, written by the listener, read by the diagnostics worker."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, _Latest] = {}

    def update(self, topic: str, payload: bytes, cfg: SpeedTopicConfig) -> None:
        """Store the speed a message carries; a bad message keeps the last good value (it ages)."""
        try:
            rpm: float | None = parse_speed(payload, cfg.field, cfg.scale)
            error = None
        except DataError as exc:
            rpm, error = None, str(exc)
        with self._lock:
            latest = self._latest.setdefault(topic, _Latest())
            latest.received += 1
            if rpm is None:
                latest.bad += 1
                latest.last_error = error
            else:
                latest.rpm, latest.at, latest.last_error = rpm, self._clock(), None
        if error is not None:
            _throttle.log(f"speed:{topic}", logging.WARNING, "speed topic %s: %s", topic, error)

    def reading(self, cfg: SpeedTopicConfig) -> tuple[float | None, str | None]:
        """``(rpm, None)`` for a usable speed, else ``(None, why not)``."""
        with self._lock:
            latest = self._latest.get(cfg.topic)
            snapshot = None if latest is None else (latest.rpm, latest.at, latest.bad, latest.last_error)
        if snapshot is None or snapshot[0] is None:
            bad = "" if snapshot is None or snapshot[3] is None else f" (last message refused: {snapshot[3]})"
            return None, f"no speed received on {cfg.topic} yet{bad}"
        rpm, at, _, error = snapshot
        assert rpm is not None
        age = self._clock() - at
        if age > cfg.max_age_s:
            why = "" if error is None else f"; the last message was refused: {error}"
            return None, (f"the speed on {cfg.topic} is {age:.1f} s old, over max_age_s = {cfg.max_age_s:g}"
                          f"{why}")
        if rpm <= 0:
            return None, f"the speed on {cfg.topic} is 0 rpm: the machine stands still"
        return rpm, None


class SpeedListener:
    """One MQTT client on the daemon's broker subscribed to every speed topic (paho reconnects it).

    It only subscribes: no last will, no publishing, so it cannot disturb the daemon's status.
    """

    def __init__(self, mqtt_config: Any, configs: Iterable[SpeedTopicConfig], board: SpeedBoard) -> None:
        self.config = mqtt_config
        self.topics = {c.topic: c for c in configs}
        self.board = board
        self.subscribed = threading.Event()
        self._client: Any = None

    def start(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from runtime.mqtt.connection import tls_context

        cfg = self.config
        v5 = cfg.protocol == "5"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{cfg.effective_client_id}-speed",
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                             clean_session=None if v5 else True)
        if cfg.username is not None:
            password = cfg.password.get_secret_value() if cfg.password is not None else None
            client.username_pw_set(cfg.username, password)
        if cfg.tls.enabled:
            client.tls_set_context(tls_context(cfg.tls))
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = lambda *_a: self.subscribed.set()
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        client.loop_start()
        self._client = client
        log.info("reading shaft speeds from %d topic(s) on %s:%d", len(self.topics), cfg.host, cfg.port)

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            _throttle.log("speed-connect", logging.ERROR, "the broker refused the speed listener (%s); check "
                          "mqtt.username/password and the ACL for the speed topics", reason)
            return
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.subscribed.clear()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        cfg = self.topics.get(msg.topic)
        if cfg is None:
            return
        try:  # an exception escaping a paho callback would end its network loop
            self.board.update(msg.topic, bytes(msg.payload), cfg)
        except Exception:
            _throttle.log("speed-callback", logging.ERROR, "speed message on %s not handled", msg.topic,
                          exc_info=True)
