"""A real Mosquitto broker on a free local port, for tests (as paho-mqtt's own tests do).

The broker can be stopped and restarted on the same port to simulate an outage. Tests that
need it skip with a clear reason when the ``mosquitto`` binary is not installed (CI installs it
with apt; see .ci/run).
"""

from __future__ import annotations

from runtime.mqtt.local_broker import free_port
from runtime.mqtt.mosquitto import MosquittoBroker, mosquitto_binary

__all__ = ["MosquittoBroker", "free_port", "mosquitto_binary"]
