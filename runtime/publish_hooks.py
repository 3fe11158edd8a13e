"""What the daemon tells an observer about the results it publishes, so that measurements (the
daemon benchmark's PUBACK latency) subscribe from outside instead of living in the daemon."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from runtime.mqtt.publisher import Ack

#: ``(sensor, window index, time.monotonic() when the window's last sample arrived)``
WindowRef = tuple[str, int, float]


class PublishHook(Protocol):
    """Called by the daemon; implementations must be quick and thread-safe."""

    def predictions_enqueued(self, rows: Sequence[int | None], windows: Sequence[WindowRef]) -> None:
        """Inference thread: QoS 1 predictions entered the outbox as ``rows`` (None: not admitted).

        The MQTT worker may acknowledge a row before this call returns."""

    def acked(self, ack: Ack) -> None:
        """MQTT worker thread: the broker acknowledged an outbox row (event or prediction)."""
