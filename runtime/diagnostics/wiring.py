"""How the daemon hands its sensors, publisher and state to the envelope monitor.

Kept out of ``runtime/daemon.py`` so the daemon only calls :func:`build_monitor` once and
the monitor's methods at a few points (feed, route, state fields, supervise, close).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from runtime.diagnostics.config import DiagnosticsConfig
from runtime.diagnostics.monitor import EnvelopeMonitor
from runtime.mqtt.outbox import NewMessage
from runtime.mqtt.payload import encode_json

if TYPE_CHECKING:
    from runtime.mqtt.publisher import MqttPublisher
    from runtime.pipeline import SensorPipeline

log = logging.getLogger(__name__)


def diagnostics_topic(publisher: MqttPublisher, sensor: str) -> str:
    """``<prefix>/<device>/<sensor>/diagnostics``: the envelope's own alerts (QoS 1, through the outbox)."""
    return f"{publisher.topics.base}/{sensor}/diagnostics"


def build_monitor(
    configs: Mapping[str, DiagnosticsConfig | None],
    sensors: Mapping[str, SensorPipeline],
    publisher: MqttPublisher,
    publish_state: Callable[[str], None],
) -> EnvelopeMonitor | None:
    """A started monitor for the served sensors that have ``diagnostics:``; None when none has.

    A ring too short for the bearing's frequencies is a ConfigError that names the length needed.
    """
    wanted = {sid: cfg for sid, cfg in configs.items() if cfg is not None and sid in sensors}
    if not wanted:
        return None

    def alert(sensor: str, payload: dict[str, Any]) -> None:
        data = encode_json(payload, f"diagnostics alert of sensor {sensor!r}")
        publisher.enqueue([NewMessage(diagnostics_topic(publisher, sensor), data, 1, False)])

    def healthy(sensor: str) -> bool:
        return not sensors[sensor].tracker.snapshot().fault

    monitor = EnvelopeMonitor.build(
        wanted,
        {sid: sensors[sid].rate for sid in wanted},
        publish_events=publisher.publish_events,
        publish_state=publish_state,
        publish_alert=alert,
        is_healthy=healthy,
    )
    monitor.start()
    for sid, cfg in wanted.items():
        log.info(
            "sensor %s: envelope diagnostics for %s at %g rpm (%g s ring)",
            sid,
            cfg.resolved_bearing().name,
            cfg.rpm,
            cfg.seconds,
        )
    return monitor
