"""The daemon's watch over its inputs: silent sensors, failed sources, untrustworthy clocks.

Nothing here may fail silently. A sensor that delivers no windows for its
``fault_state.no_data_after_s`` is put in the ``no_data`` state (an event through the outbox, the
retained state, ``drsn_edge_sensor_stale`` = 1) and leaves it with its next window; a source
thread that failed and restarted is counted in ``drsn_edge_source_restarts_total`` (payloads a
flooding sender lost in ``drsn_edge_frames_dropped_total``); a frame whose
sender clock is too far off is counted in ``drsn_edge_timestamps_rejected_total`` instead of as a
bad payload, because its samples were kept. The daemon calls these from its supervision tick and
its ``on_error`` callback; they are separate from it so that each can be tested on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from runtime.fault_state import StateChange
from runtime.log_throttle import LogThrottle
from runtime.metrics import Metrics
from runtime.pipeline import SensorPipeline
from runtime.sources import SOURCE_WIDE, Source
from runtime.sources.base import SourceFailedError
from runtime.sources.intake import ClockSkewError

log = logging.getLogger(__name__)
_throttle = LogThrottle(log)


def stale_changes(sensors: Mapping[str, SensorPipeline], now: float, wall: float) -> list[
        tuple[SensorPipeline, StateChange]]:
    """Put every sensor silent for longer than its limit in ``no_data``; return the changes to publish.

    ``now`` is the monotonic clock that :attr:`SensorPipeline.last_window` is kept on; ``wall``
    labels the events. Call it with the daemon's state lock held (it changes the trackers).
    """
    changes: list[tuple[SensorPipeline, StateChange]] = []
    for sp in sensors.values():
        limit = sp.tracker.config.no_data_after_s
        if limit is None or sp.tracker.no_data:
            continue
        silent = now - sp.last_window
        if silent < limit:
            continue
        change = sp.tracker.mark_no_data(wall, f"no windows for {silent:.1f} s (limit {limit:g} s)")
        if change is not None:
            log.warning("sensor %s: no windows for %.1f s (limit %g s); state no_data", sp.sensor_id, silent,
                        limit)
            changes.append((sp, change))
    return changes


def update_stale_gauges(metrics: Metrics, sensors: Mapping[str, SensorPipeline]) -> None:
    for sid, sp in sensors.items():
        metrics.sensor_stale.labels(sid).set(1.0 if sp.tracker.no_data else 0.0)


def count_restarts(metrics: Metrics, sources: Iterable[Source[Any]], seen: dict[int, int]) -> None:
    """Carry each source's restarts and flood drops into the metrics (``seen``: what was carried)."""
    for src in sources:
        for key, value, counter in ((id(src), src.restarts, metrics.source_restarts),
                                    (~id(src), src.frames_dropped, metrics.frames_dropped)):
            done = seen.get(key, 0)
            if value > done:
                counter.inc(value - done)
                seen[key] = value


def note_source_error(metrics: Metrics, sensor_id: str, exc: Exception) -> bool:
    """Count the reports that are not bad payloads; True when ``exc`` was one of them."""
    if isinstance(exc, ClockSkewError):
        metrics.timestamps_rejected.labels(sensor_id).inc()
        _throttle.log(f"skew:{sensor_id}", logging.WARNING, "%s", exc)
        return True
    if isinstance(exc, SourceFailedError):  # logged by the source, counted by count_restarts
        return sensor_id == SOURCE_WIDE
    return False
