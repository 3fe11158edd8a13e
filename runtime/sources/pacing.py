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

from runtime.sources.base import ChunkBlock

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
    emit_block: Callable[[ChunkBlock], None],
    report: Callable[[str, Exception], None],
) -> bool:
    """Deliver every stream in chunks until all end (return True) or ``stopping`` is set (False).

    ``speed=None`` means as fast as the consumer takes them. The streams whose next chunk ends
    no later than that of the stream furthest behind go out together, as one block (sensors of
    one rate are in lockstep, so every sensor's chunk shares one call). A stream whose ``read``
    raises is reported and dropped; the others go on.
    """
    lanes = [_Lane(s) for s in streams]
    # (signal clock, index): the lane furthest behind first, ties in stream order; a heap, not a
    # scan, so 64 sensors cost one pop and one push per chunk
    behind = [(0.0, i) for i in range(len(lanes))]
    wall0, mono0 = time.time(), time.monotonic()
    while not stopping.is_set():
        if not behind:
            return True
        picked = _due_together(lanes, behind, chunk)
        ids: list[str] = []
        samples: list[np.ndarray] = []
        rates: list[float] = []
        seqs: list[int] = []
        t0s: list[float] = []
        due = 0.0
        for i in picked:  # per lane: a read and a few list appends (this loop is the source's cost)
            lane = lanes[i]
            x = _read(lane, chunk, report)
            if x is None:
                continue  # ended or failed: the lane leaves the heap
            stream, start = lane.stream, lane.position
            rate = stream.sample_rate
            ids.append(stream.sensor_id)
            samples.append(x)
            rates.append(rate)
            seqs.append(lane.seq)
            t0s.append(wall0 + start / rate)
            lane.position = start + x.size
            lane.seq += 1
            end = lane.position / rate
            due = max(due, end)
            heapq.heappush(behind, (end, i))  # back in line once this block is out (a stop ends it)
        if not ids:
            continue
        if speed is not None:
            delay = mono0 + due / speed - time.monotonic()
            if delay > 0 and stopping.wait(delay):
                return False
        emit_block(ChunkBlock(ids, samples, rates, seqs, t0s))
    return False


def _due_together(lanes: list[_Lane], behind: list[tuple[float, int]], chunk: int) -> list[int]:
    """Pop the lane furthest behind and every lane whose next chunk ends no later than its chunk."""
    clock, first = heapq.heappop(behind)
    end = clock + chunk / lanes[first].stream.sample_rate
    picked, later = [first], []
    while behind and behind[0][0] < end:
        entry = heapq.heappop(behind)
        lane = lanes[entry[1]]
        if entry[0] + chunk / lane.stream.sample_rate <= end * (1 + 1e-12):
            picked.append(entry[1])
        else:
            later.append(entry)
    for entry in later:
        heapq.heappush(behind, entry)
    return picked


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
    return x if x.dtype == np.float32 else np.asarray(x, dtype=np.float32)
