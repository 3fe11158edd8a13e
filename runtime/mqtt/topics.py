"""The daemon's topic tree, built in one place so publishers, tests and docs agree on it.

::

    <prefix>/<device>/status              retained: online | offline (last will) | stopped
    <prefix>/<device>/metrics             periodic JSON, QoS 0
    <prefix>/<device>/cmd                 commands to the daemon, JSON {"action": ...}
    <prefix>/<device>/<sensor>/state      retained JSON: the current fault state
    <prefix>/<device>/<sensor>/event      QoS 1 JSON: one message per state change
    <prefix>/<device>/<sensor>/prediction QoS 0 JSON: one message per window (optional)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.errors import ConfigError
from runtime.mqtt.config import check_topic_segment

STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
STATUS_STOPPED = "stopped"

#: sensor names that would collide with the device-level topics
_RESERVED = frozenset({"status", "metrics", "cmd", "predictions"})
_HA_ID = re.compile(r"[^A-Za-z0-9_-]+")


def check_sensor_name(sensor: str) -> str:
    """Return ``sensor`` if it is usable as one topic level, else raise :class:`ConfigError`."""
    try:
        check_topic_segment(sensor, "sensor name")
    except ValueError as exc:
        raise ConfigError(f"{exc}; rename the sensor in the daemon config") from exc
    if sensor in _RESERVED:
        raise ConfigError(
            f"sensor name {sensor!r} collides with the device topic <prefix>/<device>/{sensor}; "
            "rename the sensor in the daemon config"
        )
    return sensor


def ha_id(text: str) -> str:
    """Reduce ``text`` to the characters Home Assistant allows in discovery node and object ids."""
    return _HA_ID.sub("_", text).strip("_") or "x"


@dataclass(frozen=True)
class Topics:
    """Topic names of one device."""

    prefix: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def metrics(self) -> str:
        return f"{self.base}/metrics"

    @property
    def command(self) -> str:
        return f"{self.base}/cmd"

    def state(self, sensor: str) -> str:
        return f"{self.base}/{sensor}/state"

    def event(self, sensor: str) -> str:
        return f"{self.base}/{sensor}/event"

    def prediction(self, sensor: str) -> str:
        return f"{self.base}/{sensor}/prediction"

    @property
    def predictions(self) -> str:
        """One message per inference batch (``mqtt.predictions: batch``)."""
        return f"{self.base}/predictions"

    def ha_config(self, discovery_prefix: str, sensor: str) -> str:
        """Discovery topic ``<discovery_prefix>/sensor/<node_id>/<object_id>/config``."""
        return f"{discovery_prefix}/sensor/{ha_id(self.device)}/{ha_id(sensor)}_state/config"
