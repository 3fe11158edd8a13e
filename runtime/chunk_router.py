"""Where samples go: each source's chunks -> the sensor's windows -> its model's batcher queue.

Runs on the source threads. Kept apart from :mod:`runtime.daemon` (the lifecycle) like
:mod:`runtime.results_router` (the other end of the batcher): sources paced ``fast`` (replay or
simulation as fast as possible) are pushed back when the inference queue is full instead of
having their oldest windows dropped, since an offline run must classify every window whatever
the machine's speed; live sources are never blocked. Bad input is counted per sensor and
logged at most once per kind every few seconds, so a flood cannot drown the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from runtime.batching import MicroBatcher
from runtime.diagnostics.monitor import EnvelopeMonitor
from runtime.errors import ConfigError, DrsnEdgeError
from runtime.metrics import Metrics
from runtime.pipeline import SensorPipeline
from runtime.sensor_watch import note_source_error
from runtime.sources import SOURCE_WIDE, SampleChunk, Source
from runtime.sources.base import EmitFn

log = logging.getLogger("runtime.daemon")

_ERROR_LOG_EVERY_S = 10.0
_PUSH_BACK_WAIT_S = 0.25
_PUSH_BACK_STOP_S = 2.0


class ChunkRouter:
    """Routes one daemon's samples; ``stopping`` is the daemon's stop event (bounds push-back)."""

    def __init__(self, metrics: Metrics, sensors: Mapping[str, SensorPipeline], disabled: Mapping[str, str],
                 stopping: threading.Event) -> None:
        self.metrics = metrics
        self.sensors = sensors
        self.disabled = disabled
        self.stopping = stopping
        self._last_error_log: dict[str, float] = {}
        #: envelope diagnostics keep each diagnosed sensor's raw samples (set by the daemon)
        self.diagnostics: EnvelopeMonitor | None = None

    def handler(self, src: Source[Any]) -> EmitFn:
        """The emit callback of one source: push back on ``fast`` sources, never on live ones."""
        if getattr(src.config, "pacing", None) == "fast":
            return lambda chunk: self.on_chunk(chunk, push_back=True)
        return self.on_chunk

    def on_chunk(self, chunk: SampleChunk, push_back: bool = False) -> None:
        """Source thread: cut windows and queue them for inference."""
        sp = self.sensors.get(chunk.sensor_id)
        if sp is None:
            if chunk.sensor_id not in self.disabled:
                self.count_error(chunk.sensor_id, ConfigError(
                    f"samples for unknown sensor {chunk.sensor_id!r}; add it to a source in the config"))
            return
        if self.diagnostics is not None:
            self.diagnostics.feed(chunk.sensor_id, chunk.samples)
        stats = sp.windower.stats
        gaps, dropped = stats.gaps, stats.dropped_samples
        try:
            windows = sp.windower.push(chunk.samples, seq=chunk.seq, t0=chunk.t0)
        except DrsnEdgeError as exc:
            self.count_error(chunk.sensor_id, exc)
            windows = []
        if stats.gaps != gaps or stats.dropped_samples != dropped:  # the labelled children only then
            m = self.metrics.sensor(chunk.sensor_id)
            if stats.gaps != gaps:
                m.gaps.inc(stats.gaps - gaps)
            if stats.dropped_samples != dropped:
                m.dropped_samples.inc(stats.dropped_samples - dropped)
        if windows:
            batcher = sp.model.batcher
            if push_back and batcher.queue_depth + len(windows) > batcher.max_queue:  # no lock while room
                self._wait_for_room(batcher, len(windows))
            batcher.submit_many(windows)

    def _wait_for_room(self, batcher: MicroBatcher, n: int) -> None:
        """Block a fast source until ``n`` windows fit in the queue.

        While the daemon stops, the inference thread keeps draining the queue until the sources
        have ended, so the wait goes on, but bounded: a stuck backend must not hold up shutdown.
        """
        deadline: float | None = None
        while not batcher.wait_for_room(n, timeout=_PUSH_BACK_WAIT_S):
            if self.stopping.is_set():
                now = time.monotonic()
                deadline = deadline or now + _PUSH_BACK_STOP_S
                if now > deadline:
                    return

    def on_source_error(self, sensor_id: str, exc: Exception) -> None:
        """A source reports bad input or a failure; skews and restarts have their own counts."""
        if not note_source_error(self.metrics, sensor_id, exc):
            self.count_error(sensor_id, exc)

    def count_error(self, sensor_id: str, exc: Exception) -> None:
        """Count every bad input; log each kind at most every few seconds."""
        self.metrics.sensor(sensor_id if sensor_id != SOURCE_WIDE else "_source").bad_payloads.inc()
        key = f"{sensor_id}:{type(exc).__name__}"
        now = time.monotonic()
        if now - self._last_error_log.get(key, -1e9) >= _ERROR_LOG_EVERY_S:
            self._last_error_log[key] = now
            log.warning("sensor %s: %s", sensor_id, exc)
