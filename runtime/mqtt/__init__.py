"""The daemon's MQTT voice and the durable outbox behind it.

* :mod:`runtime.mqtt.config` - :class:`MqttConfig`, the ``mqtt:`` section of the daemon config.
* :mod:`runtime.mqtt.topics` - the topic tree (status, state, event, prediction, metrics, cmd).
* :mod:`runtime.mqtt.outbox` - :class:`Outbox`, SQLite FIFO of events awaiting their PUBACK.
* :mod:`runtime.mqtt.publisher` - :class:`MqttPublisher`, what the daemon calls.
* :mod:`runtime.mqtt.homeassistant` - Home Assistant discovery payloads.
"""

from __future__ import annotations

from runtime.mqtt.config import HomeAssistantConfig, MqttConfig, OutboxConfig, TlsConfig
from runtime.mqtt.outbox import DropCounts, NewMessage, Outbox
from runtime.mqtt.outbox_recent import Message
from runtime.mqtt.publisher import Ack, EventReceipt, MqttPublisher, PublisherStats
from runtime.mqtt.topics import STATUS_OFFLINE, STATUS_ONLINE, STATUS_STOPPED, Topics

__all__ = [
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "STATUS_STOPPED",
    "Ack",
    "DropCounts",
    "EventReceipt",
    "HomeAssistantConfig",
    "Message",
    "MqttConfig",
    "MqttPublisher",
    "NewMessage",
    "Outbox",
    "OutboxConfig",
    "PublisherStats",
    "TlsConfig",
    "Topics",
]
