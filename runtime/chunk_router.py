"""Where samples go: each source's chunks -> the sensor's windows -> its model's batcher queue.

A source that delivers many sensors' chunks at once (:class:`~runtime.sources.ChunkBlock`) has
them windowed per window group in one numpy pass (:mod:`runtime.window_group`) and queued as
blocks of windows, so the per-chunk Python work is a few list appends.

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from runtime.batching import MicroBatcher
from runtime.diagnostics.monitor import EnvelopeMonitor
from runtime.errors import ConfigError, DrsnEdgeError
from runtime.metrics import Metrics
from runtime.pipeline import SensorPipeline
from runtime.sensor_watch import note_source_error
from runtime.sources import SOURCE_WIDE, ChunkBlock, SampleChunk, Source
from runtime.sources.base import BlockFn, EmitFn
from runtime.window_block import WindowBlock
from runtime.window_group import WindowGroup

log = logging.getLogger("runtime.daemon")

_ERROR_LOG_EVERY_S = 10.0
_PUSH_BACK_WAIT_S = 0.25
_PUSH_BACK_STOP_S = 2.0


class _GroupInput:
    """The chunks of one block that go to one window group, as the lists it takes."""

    __slots__ = ("arrivals", "batcher", "pipelines", "rows", "samples", "seqs", "t0s")

    def __init__(self, batcher: MicroBatcher) -> None:
        self.batcher = batcher
        self.pipelines: list[SensorPipeline] = []
        self.rows: list[int] = []
        self.samples: list[np.ndarray] = []
        self.seqs: list[int | None] = []
        self.t0s: list[float | None] = []
        self.arrivals: list[float] = []

    def add(self, sp: SensorPipeline, row: int, x: np.ndarray, seq: int, t0: float,
            arrival: float | None) -> None:
        if arrival is not None:
            self.arrivals.append(arrival)
        self.pipelines.append(sp)
        self.rows.append(row)
        self.samples.append(x)
        self.seqs.append(seq)
        self.t0s.append(t0)


def _rounds(ids: list[str]) -> list[list[int]]:
    """Positions of ``ids`` split so that no round holds a sensor twice (a sensor's n-th chunk: round n)."""
    seen: dict[str, int] = {}
    rounds: list[list[int]] = []
    for i, sid in enumerate(ids):
        k = seen.get(sid, 0)
        seen[sid] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(i)
    return rounds


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

    def block_handler(self, src: Source[Any]) -> BlockFn:
        """The block callback of one source (sources that deliver several sensors at once)."""
        if getattr(src.config, "pacing", None) == "fast":
            return lambda block: self.on_block(block, push_back=True)
        return self.on_block

    def on_chunk(self, chunk: SampleChunk, push_back: bool = False) -> None:
        """Source thread: cut windows and queue them for inference."""
        sp = self._pipeline(chunk.sensor_id)
        if sp is None:
            return
        if self.diagnostics is not None:
            self.diagnostics.feed(chunk.sensor_id, chunk.samples)
        group = sp.windower.group
        incidents = group.incidents
        try:
            block = sp.windower.push_block(chunk.samples, seq=chunk.seq, t0=chunk.t0)
        except DrsnEdgeError as exc:
            self.count_error(chunk.sensor_id, exc)
            block = None
        if group.incidents != incidents:
            self._count_losses((sp,))
        if block is not None:
            self._submit(sp.model.batcher, [block], push_back)

    def on_block(self, block: ChunkBlock, push_back: bool = False) -> None:
        """Source thread: window the chunks of many sensors together and queue the windows.

        A sensor's bad chunk is counted and reported for it alone; the other sensors' windows go on.
        """
        ids, arrivals = block.sensor_ids, block.arrivals
        if len(set(ids)) == len(ids):
            self._route(ids, block.samples, block.seqs, block.t0s, push_back, arrivals, block.finite)
            return
        for part in _rounds(ids):  # a sensor twice in one block: its chunks in order, a round each
            self._route([ids[i] for i in part], [block.samples[i] for i in part],
                        [block.seqs[i] for i in part], [block.t0s[i] for i in part], push_back,
                        None if arrivals is None else [arrivals[i] for i in part], block.finite)

    def _route(self, ids: list[str], samples: list[np.ndarray] | np.ndarray, seqs: list[int],
               t0s: list[float], push_back: bool, arrivals: list[float] | None = None,
               finite: bool = False) -> None:
        """Distinct sensors' chunks -> their window groups (one numpy pass each) -> batcher queues.

        ``samples``: one 1-D array per chunk, or a 2-D array of them (:class:`ChunkBlock`)."""
        diagnostics = self.diagnostics
        found = [self.sensors.get(sid) for sid in ids]
        if all(found):  # every sensor known (``None in`` would compare each pipeline by value)
            sps = cast(list[SensorPipeline], found)
            windowers = [sp.windower for sp in sps]
            group = windowers[0].group
            if all(w.group is group for w in windowers):  # the usual block: one model, one hop
                if diagnostics is not None:
                    for sid, x in zip(ids, samples, strict=True):
                        diagnostics.feed(sid, x)
                self._push(group, sps[0].model.batcher, sps, [w.row for w in windowers], samples, seqs, t0s,
                           push_back, arrivals, finite)
                return
        pending: dict[WindowGroup, _GroupInput] = {}
        for k, (sid, x, seq, t0) in enumerate(zip(ids, samples, seqs, t0s, strict=True)):
            sp = self._pipeline(sid)
            if sp is None:
                continue
            if diagnostics is not None:
                diagnostics.feed(sid, x)
            windower = sp.windower
            entry = pending.get(windower.group)
            if entry is None:
                entry = pending[windower.group] = _GroupInput(sp.model.batcher)
            entry.add(sp, windower.row, x, seq, t0, None if arrivals is None else arrivals[k])
        for group, entry in pending.items():
            self._push(group, entry.batcher, entry.pipelines, entry.rows, entry.samples, entry.seqs,
                       entry.t0s, push_back, entry.arrivals if arrivals is not None else None, finite)

    def _push(self, group: WindowGroup, batcher: MicroBatcher, pipelines: list[SensorPipeline],
              rows: list[int], samples: list[np.ndarray] | np.ndarray, seqs: Sequence[int | None],
              t0s: Sequence[float | None], push_back: bool, arrivals: Sequence[float] | None = None,
              finite: bool = False) -> None:
        """One group's chunks -> windows (bad chunks counted per sensor) -> the batcher's queue."""
        incidents = group.incidents
        blocks, errors = group.push_block(rows, samples, seqs, t0s, arrivals, finite=finite)
        for row, exc in errors:
            self.count_error(group.sensor_ids[row], exc)
        if group.incidents != incidents:
            self._count_losses(pipelines)
        if blocks:
            self._submit(batcher, blocks, push_back)

    def _pipeline(self, sensor_id: str) -> SensorPipeline | None:
        sp = self.sensors.get(sensor_id)
        if sp is None and sensor_id not in self.disabled:
            self.count_error(sensor_id, ConfigError(
                f"samples for unknown sensor {sensor_id!r}; add it to a source in the config"))
        return sp

    def _count_losses(self, pipelines: Iterable[SensorPipeline]) -> None:
        """Carry gaps and dropped samples not yet counted into the per-sensor metrics."""
        for sp in pipelines:
            st = sp.windower.stats
            if st.gaps != st.gaps_reported or st.dropped_samples != st.dropped_reported:
                m = self.metrics.sensor(sp.sensor_id)
                if st.gaps > st.gaps_reported:
                    m.gaps.inc(st.gaps - st.gaps_reported)
                if st.dropped_samples > st.dropped_reported:
                    m.dropped_samples.inc(st.dropped_samples - st.dropped_reported)
                st.gaps_reported, st.dropped_reported = st.gaps, st.dropped_samples

    def _submit(self, batcher: MicroBatcher, blocks: list[WindowBlock], push_back: bool) -> None:
        """Queue the windows; a ``fast`` source waits for room, in parts when they exceed half the queue."""
        if not push_back:
            batcher.submit_blocks(blocks)
            return
        n = sum(b.size for b in blocks)
        part = max(batcher.max_queue // 2, 1)
        if n > part:  # many sensors in one block: a part at a time, none dropped however many
            blocks = [b.rows(i, min(i + part, b.size)) for b in blocks for i in range(0, b.size, part)]
        for piece in ([blocks] if n <= part else [[b] for b in blocks]):
            k = sum(b.size for b in piece)
            if batcher.queue_depth + k > batcher.max_queue:  # no lock while there is room
                self._wait_for_room(batcher, k)
            batcher.submit_blocks(piece)

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
