"""Deliver several generated or recorded streams from one thread, in real time or as fast as possible.

The synthetic and replay sources both hold samples that already exist (or can be made on
demand); what they share is *when* to hand each chunk over. Every stream has its own rate, so
the scheduler always serves the stream whose signal clock is furthest behind, which interleaves
sensors of different rates fairly in both modes.

In real time a chunk is released when its last sample would have been measured (``speed``
scales that clock). Deadlines are computed from the start, not from the previous chunk, so the
delivered rate does not drift however long the source runs. Time stamps follow one rule in both
modes: ``t0 = wall-clock start + signal time of the first sample``, which is the real wall-clock
time at ``speed=1``.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from runtime.sources.base import SampleChunk

log = logging.getLogger(__name__)


class ChunkStream(Protocol):
    """One sensor's samples, read in order."""

    sensor_id: str
    sample_rate: float

    def read(self, n: int) -> np.ndarray | None:
        """Return up to ``n`` next samples as float32, or None (or an empty array) at the end."""
        ...


@dataclass
class _Lane:
    stream: ChunkStream
    position: int = 0
    seq: int = 0
    done: bool = False

    @property
    def clock(self) -> float:
        """Signal time (s) already delivered."""
        return self.position / self.stream.sample_rate


def run_paced(
    streams: Sequence[ChunkStream],
    *,
    chunk: int,
    speed: float | None,
    stopping: threading.Event,
    emit: Callable[[SampleChunk], None],
    report: Callable[[str, Exception], None],
) -> bool:
    """Deliver every stream in chunks until all end (return True) or ``stopping`` is set (False).

    ``speed=None`` means as fast as the consumer takes them. A stream whose ``read`` raises is
    reported and dropped; the others go on.
    """
    lanes = [_Lane(s) for s in streams]
    # (signal clock, index): the lane furthest behind first, ties in stream order; a heap, not a
    # scan, so 64 sensors cost one pop and one push per chunk
    behind = [(0.0, i) for i in range(len(lanes))]
    wall0, mono0 = time.time(), time.monotonic()
    while not stopping.is_set():
        if not behind:
            return True
        _, i = heapq.heappop(behind)
        lane = lanes[i]
        x = _read(lane, chunk, report)
        if x is None:
            continue  # ended or failed: the lane leaves the heap
        rate = lane.stream.sample_rate
        if speed is not None:
            due = mono0 + (lane.position + x.size) / rate / speed
            delay = due - time.monotonic()
            if delay > 0 and stopping.wait(delay):
                return False
        emit(SampleChunk(lane.stream.sensor_id, x, rate, lane.seq, wall0 + lane.clock))
        lane.position += x.size
        lane.seq += 1
        heapq.heappush(behind, (lane.clock, i))
    return False


def _read(lane: _Lane, chunk: int, report: Callable[[str, Exception], None]) -> np.ndarray | None:
    """Read the lane's next chunk; mark it done at its end or on an error."""
    try:
        x = lane.stream.read(chunk)
    except Exception as exc:
        log.exception("stream of sensor %s failed; it is stopped, the other sensors go on",
                      lane.stream.sensor_id)
        report(lane.stream.sensor_id, exc)
        lane.done = True
        return None
    if x is None or x.size == 0:
        log.info("stream of sensor %s ended after %d samples", lane.stream.sensor_id, lane.position)
        lane.done = True
        return None
    return np.asarray(x, dtype=np.float32)
