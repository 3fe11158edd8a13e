"""The daemon's running totals carried into its metrics, and the periodic metrics payload.

The publisher and the batchers keep their own running totals (the outbox's drop counts even
persist across restarts); Prometheus counters only go up by increments. :class:`CountCarrier`
remembers what it already carried so each supervisor tick adds only what is new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from weakref import WeakKeyDictionary

from runtime.batching import MicroBatcher
from runtime.metrics import Metrics
from runtime.mqtt.messages import MetricsPayload
from runtime.mqtt.publisher import MqttPublisher, PublisherStats
from runtime.results import ResultPayloads

#: outbox drop counts that persist across restarts: counted from what this run found
_PERSISTED = ("full", "expired")


class CountCarrier:
    """Carries the publisher's and the batchers' totals into :class:`Metrics` as increments."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._pub_counts: dict[str, int] = {}  # publisher counters already carried into Prometheus
        # per batcher: (dropped, errors) and each sensor's dropped windows already counted; weak keys,
        # so a batcher a reload replaced (and its backend) is not kept alive by its counts
        self._batcher_counts: WeakKeyDictionary[MicroBatcher, tuple[int, int]] = WeakKeyDictionary()
        self._drops: WeakKeyDictionary[MicroBatcher, dict[str, int]] = WeakKeyDictionary()

    def publisher(self, st: PublisherStats) -> None:
        """Carry the publisher's running totals into Prometheus counters (as increments)."""
        m = self.metrics
        for key, value, counter in (
            ("lost", st.events_lost, m.events_lost),
            ("full", st.dropped_full, m.outbox_dropped.labels("full")),
            ("expired", st.dropped_expired, m.outbox_dropped.labels("expired")),
            ("write_error", st.dropped_write_error, m.outbox_dropped.labels("write_error")),
            ("callbacks", st.callback_errors, m.callback_errors),
            ("stalls", st.stalled_connections, m.stalled_connections),
        ):
            before = self._pub_counts.setdefault(key, value if key in _PERSISTED else 0)
            if value > before:
                counter.inc(value - before)
            self._pub_counts[key] = max(before, value)
        m.degraded.set(1.0 if st.degraded else 0.0)

    def batchers(self, batchers: Iterable[MicroBatcher]) -> None:
        """Carry the batchers' dropped-window (per sensor) and failed-call counts into the metrics."""
        for batcher in batchers:
            st = batcher.stats
            dropped, errors = self._batcher_counts.get(batcher, (0, 0))
            if st.dropped > dropped:  # the per-sensor copy takes the batcher's lock: only when needed
                dropped = self._carry_drops(batcher)
            if st.errors > errors:
                self.metrics.inference_errors.inc(st.errors - errors)
            self._batcher_counts[batcher] = (dropped, st.errors)

    def _carry_drops(self, batcher: MicroBatcher) -> int:
        """Each sensor's new drops into ``windows_dropped{sensor}``; the batcher's total carried."""
        carried = self._drops.setdefault(batcher, {})
        now = batcher.dropped_by_sensor()
        for sensor_id, n in now.items():
            before = carried.get(sensor_id, 0)
            if n > before:
                self.metrics.windows_dropped.labels(sensor_id).inc(n - before)
                carried[sensor_id] = n
        return sum(now.values())


def metrics_payload(metrics: Metrics, pub: MqttPublisher | None,
                    disabled: Mapping[str, str]) -> MetricsPayload:
    """The ``<prefix>/<device>/metrics`` message: the metrics snapshot plus the broker link's figures."""
    mqtt: dict[str, Any] | None = None
    if pub is not None:
        st = pub.stats()
        mqtt = {"connected": st.connected, "outbox_depth": st.outbox_depth, "acked": st.events_acked,
                "dropped_full": st.dropped_full, "dropped_expired": st.dropped_expired,
                "degraded": st.degraded, "events_held": st.events_held, "events_lost": st.events_lost,
                "last_error": st.last_error}
        moved = pub.outbox.moved_aside
        if moved is not None:
            mqtt["outbox_moved_aside"] = {"to": str(moved.moved_to), "reason": moved.reason}
    return ResultPayloads.metrics(metrics.snapshot(), mqtt, disabled)
