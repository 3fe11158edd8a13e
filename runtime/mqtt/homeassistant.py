"""Home Assistant MQTT discovery: the retained config message that makes a sensor appear in HA.

Each sensor's fault state becomes one HA ``sensor`` entity whose value is the ``state`` field of
the retained state JSON and whose attributes are the rest of that JSON (class, confidence, model).
Availability follows the device's status topic; anything other than ``online`` (the ``offline``
last will, ``stopped`` on a clean exit) shows the entity as unavailable.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from runtime.mqtt.messages import StatePayload
from runtime.mqtt.topics import STATUS_OFFLINE, STATUS_ONLINE, Topics, ha_id

#: the field of the state payload HA shows as the entity's value (a KeyError here if it is renamed)
VALUE_FIELD = StatePayload.model_fields["state"].alias or "state"


def package_version() -> str:
    """drsn-edge's installed version, shown in HA's device page; "unknown" when run from a checkout."""
    try:
        return metadata.version("drsn-edge")
    except metadata.PackageNotFoundError:
        return "unknown"


def discovery_config(topics: Topics, sensor: str, sw_version: str) -> dict[str, Any]:
    """The discovery payload for ``sensor``'s state entity."""
    device = ha_id(topics.device)
    state_topic = topics.state(sensor)
    return {
        "name": f"{sensor} fault state",
        "unique_id": f"drsn_edge_{device}_{ha_id(sensor)}_state",
        "state_topic": state_topic,
        "value_template": f"{{{{ value_json.{VALUE_FIELD} }}}}",
        "json_attributes_topic": state_topic,
        "icon": "mdi:sine-wave",
        "availability": [
            {
                "topic": topics.status,
                "value_template": f"{{{{ '{STATUS_ONLINE}' if value == '{STATUS_ONLINE}' "
                f"else '{STATUS_OFFLINE}' }}}}",
                "payload_available": STATUS_ONLINE,
                "payload_not_available": STATUS_OFFLINE,
            }
        ],
        "device": {
            "identifiers": [f"drsn_edge_{device}"],
            "name": f"drsn-edge {topics.device}",
            "manufacturer": "drsn-edge",
            "model": "DRSN vibration monitor",
            "sw_version": sw_version,
        },
        "origin": {"name": "drsn-edge", "sw_version": sw_version},
    }
