"""How the daemon hands its sensors, publisher and state to the envelope monitor.

Kept out of ``runtime/daemon.py`` so the daemon only calls :func:`build_monitor` once and
the monitor's methods at a few points (feed, route, state fields, supervise, close).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from runtime.diagnostics.config import DiagnosticsConfig
from runtime.diagnostics.metrics import DiagnosticsMetrics
from runtime.diagnostics.monitor import EnvelopeMonitor
from runtime.diagnostics.speed import SpeedBoard, SpeedListener
from runtime.errors import DataError
from runtime.mqtt.messages import DiagnosticsAlertPayload, EventPayload
from runtime.mqtt.outbox import NewMessage
from runtime.mqtt.payload import encode_json
from runtime.results import build

if TYPE_CHECKING:
    from runtime.metrics import Metrics
    from runtime.mqtt.publisher import MqttPublisher
    from runtime.pipeline import SensorPipeline

log = logging.getLogger(__name__)


def diagnostics_topic(publisher: MqttPublisher, sensor: str) -> str:
    """``<prefix>/<device>/<sensor>/diagnostics``: the envelope's own alerts (QoS 1, through the outbox)."""
    return f"{publisher.topics.base}/{sensor}/diagnostics"


def checked_events(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Events with their envelope fields validated against the event contract; an event whose
    evidence does not fit is published without it (logged) rather than not at all."""
    out = []
    for sensor, payload in events:
        try:
            out.append((sensor, build(EventPayload, payload, f"event of sensor {sensor!r}").to_json_dict()))
        except DataError as exc:
            log.error("sensor %s: envelope evidence dropped from the event: %s", sensor, exc)
            bare = {k: v for k, v in payload.items() if k not in ("envelope", "corroborated", "alert")}
            out.append((sensor, bare))
    return out


def build_monitor(
    configs: Mapping[str, DiagnosticsConfig | None],
    sensors: Mapping[str, SensorPipeline],
    publisher: MqttPublisher,
    publish_state: Callable[[str], None],
    metrics: Metrics | None = None,
) -> EnvelopeMonitor | None:
    """A started monitor for the served sensors that have ``diagnostics:``; None when none has.

    A ring too short for the bearing's frequencies is a ConfigError that names the length needed.
    With ``metrics`` its Prometheus series (:mod:`runtime.diagnostics.metrics`) join the daemon's
    registry. Sensors whose speed comes from a topic share one listener on the daemon's broker.
    """
    wanted = {sid: cfg for sid, cfg in configs.items() if cfg is not None and sid in sensors}
    if not wanted:
        return None

    def alert(sensor: str, payload: dict[str, Any]) -> None:
        what = f"diagnostics alert of sensor {sensor!r}"
        typed = build(DiagnosticsAlertPayload, {**payload, "device": publisher.config.device_id}, what)
        data = encode_json(typed.to_json_dict(), what)
        publisher.enqueue([NewMessage(diagnostics_topic(publisher, sensor), data, 1, False)])

    def healthy(sensor: str) -> bool:
        return not sensors[sensor].tracker.snapshot().fault

    board = SpeedBoard()
    monitor = EnvelopeMonitor.build(
        wanted,
        {sid: sensors[sid].rate for sid in wanted},
        publish_events=lambda events: publisher.publish_events(checked_events(events)),
        publish_state=publish_state,
        publish_alert=alert,
        is_healthy=healthy,
        metrics=None if metrics is None else DiagnosticsMetrics(metrics.registry),
        speeds=board,
    )
    topics = [t for t in (cfg.speed_topic for cfg in wanted.values()) if t is not None]
    if topics:
        monitor.listener = SpeedListener(publisher.config, topics, board)
        monitor.listener.start()
    monitor.start()
    for sid, cfg in wanted.items():
        log.info(
            "sensor %s: envelope diagnostics for %s at %s (%g s ring)",
            sid,
            cfg.resolved_bearing().name,
            cfg.speed_text(),
            cfg.seconds,
        )
    return monitor
