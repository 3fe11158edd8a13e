"""Deliver several generated or recorded streams from one thread, in real time or as fast as possible.

The synthetic and replay sources both hold samples that already exist (or can be made on
demand); what they share is *when* to hand each chunk over. Every stream has its own rate, so
the scheduler always serves the stream whose signal clock is furthest behind, which interleaves
sensors of different rates fairly in both modes.

Streams of one rate at one signal position are in lockstep: they are always due together. So
they travel as one *cohort*, one heap entry and one set of per-block lists instead of one per
stream (64 replayed sensors: one pop and push per block instead of 64 each), and a source whose
streams can be read together (a replay of recordings stacked in one array) reads a cohort's
chunks as one 2-D slice. A cohort splits when its streams stop moving alike (one ends, fails or
returns a short chunk); the blocks are exactly those a stream-by-stream scheduler sends.

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


class RowsReader(Protocol):
    """Reads the chunks of every stream of a cohort at once."""

    #: every sample it returns is finite (the source checked its data once, when it loaded it)
    finite: bool

    def read(self, n: int) -> np.ndarray | None:
        """The next ``n`` samples of every stream as one ``(streams, n)`` float32 array, all
        advanced; None when they cannot be read together this time (nothing read then, the
        scheduler reads them one by one: the end of a file, a read that would come out short)."""
        ...


#: given the streams of a cohort (same rate, same position, in stream order): their
#: :class:`RowsReader`, or None when they cannot be read together
Together = Callable[[Sequence[ChunkStream]], "RowsReader | None"]

Report = Callable[[str, Exception], None]
Entry = tuple[float, int, "_Cohort"]


class _Cohort:
    """Streams of one rate at one position, in stream order: due together, sent as rows of one block."""

    __slots__ = ("ids", "order", "position", "rate", "rates", "reader", "seq", "streams", "together")

    def __init__(self, streams: list[ChunkStream], order: list[int], rate: float, position: int, seq: int,
                 together: Together | None) -> None:
        self.streams, self.order, self.rate = streams, order, rate
        self.position, self.seq = position, seq
        self.ids = [s.sensor_id for s in streams]
        self.rates = [s.sample_rate for s in streams]
        self.together = together
        self.reader = together(streams) if together is not None else None

    @property
    def clock(self) -> float:
        """Signal time (s) already delivered."""
        return self.position / self.rate

    def advance(self, chunk: int, wall0: float, report: Report, behind: list[Entry]
                ) -> tuple[ChunkBlock | None, float]:
        """Read the cohort's next chunk as a block, put what goes on back in line; (block, due time)."""
        start = self.position
        reader = self.reader
        x = reader.read(chunk) if reader is not None else None
        if x is None:
            rows = [_read(s, start, chunk, report) for s in self.streams]
            block_rows = [(self.ids[j], x, self.rates[j]) for j, x in enumerate(rows) if x is not None]
            seq, t0 = self.seq, wall0 + start / self.rate
            due = self._settle(rows, behind)
            if not block_rows:
                return None, due
            k = len(block_rows)
            return ChunkBlock([r[0] for r in block_rows], [r[1] for r in block_rows],
                              [r[2] for r in block_rows], [seq] * k, [t0] * k), due
        k = len(self.streams)
        block = ChunkBlock(list(self.ids), x, list(self.rates), [self.seq] * k,
                           [wall0 + start / self.rate] * k, finite=reader is not None and reader.finite)
        self.position = start + x.shape[1]
        self.seq += 1
        end = self.position / self.rate
        heapq.heappush(behind, (end, self.order[0], self))
        return block, end

    def _settle(self, rows: Sequence[np.ndarray | None], behind: list[Entry]) -> float:
        """After a stream-by-stream read: the streams that read go back in line (split by how far
        they got; those that ended or failed leave); returns the latest end of a chunk read."""
        start, seq = self.position, self.seq + 1
        parts: dict[int, list[int]] = {}
        for j, x in enumerate(rows):
            if x is not None:
                parts.setdefault(x.size, []).append(j)
        due = 0.0
        for size, members in parts.items():
            end_position = start + size
            if len(parts) == 1 and len(members) == len(self.streams):  # all alike: the cohort goes on
                self.position, self.seq = end_position, seq
                cohort = self
            else:
                cohort = _Cohort([self.streams[j] for j in members], [self.order[j] for j in members],
                                 self.rate, end_position, seq, self.together)
            end = end_position / self.rate
            due = max(due, end)
            heapq.heappush(behind, (end, cohort.order[0], cohort))
        return due


def run_paced(
    streams: Sequence[ChunkStream],
    *,
    chunk: int,
    speed: float | None,
    stopping: threading.Event,
    emit_block: Callable[[ChunkBlock], None],
    report: Report,
    together: Together | None = None,
) -> bool:
    """Deliver every stream in chunks until all end (return True) or ``stopping`` is set (False).

    ``speed=None`` means as fast as the consumer takes them. The streams whose next chunk ends
    no later than that of the stream furthest behind go out together, as one block, rows in the
    order (signal clock, stream order). A stream whose ``read`` raises is reported and dropped;
    the others go on. ``together``: gives a cohort's streams a reader of all of them at once
    (:data:`Together`); without it they are read one by one.
    """
    by_rate: dict[float, list[int]] = {}
    for i, s in enumerate(streams):
        by_rate.setdefault(s.sample_rate, []).append(i)
    # (signal clock, first stream's order, cohort): the cohort furthest behind first, ties in stream
    # order (a stream is in one cohort, so two entries never tie and cohorts are never compared)
    behind: list[Entry] = [(0.0, order[0], _Cohort([streams[i] for i in order], order, rate, 0, 0, together))
                           for rate, order in by_rate.items()]
    heapq.heapify(behind)
    wall0, mono0 = time.time(), time.monotonic()
    while not stopping.is_set():
        if not behind:
            return True
        picked = _due_together(behind, chunk)
        if len(picked) == 1:  # the usual block: one cohort (every sensor of one rate)
            block, due = picked[0].advance(chunk, wall0, report, behind)
        else:
            block, due = _advance_many(picked, chunk, wall0, report, behind)
        if block is None:
            continue
        if speed is not None:
            delay = mono0 + due / speed - time.monotonic()
            if delay > 0 and stopping.wait(delay):
                return False
        emit_block(block)
    return False


def _due_together(behind: list[Entry], chunk: int) -> list[_Cohort]:
    """Pop the cohort furthest behind and every cohort whose next chunk ends no later than its chunk."""
    clock, _, first = heapq.heappop(behind)
    end = clock + chunk / first.rate
    picked, later = [first], []
    while behind and behind[0][0] < end:
        entry = heapq.heappop(behind)
        if entry[0] + chunk / entry[2].rate <= end * (1 + 1e-12):
            picked.append(entry[2])
        else:
            later.append(entry)
    for entry in later:
        heapq.heappush(behind, entry)
    return picked


def _advance_many(picked: list[_Cohort], chunk: int, wall0: float, report: Report, behind: list[Entry]
                  ) -> tuple[ChunkBlock | None, float]:
    """Several cohorts due together (sensors of several rates): one block, rows in (clock, stream) order.

    Cohorts with a reader are read first (a reader neither fails nor ends a stream), the others
    stream by stream in row order, so errors are reported in the order a stream-by-stream
    scheduler reports them."""
    together = [c.reader.read(chunk) if c.reader is not None else None for c in picked]
    rows: list[list[np.ndarray | None]] = [[] if x is None else list(x) for x in together]
    starts = [(c.clock, c.position) for c in picked]
    order = sorted((starts[c][0], c_order, c, j) for c, cohort in enumerate(picked)
                   for j, c_order in enumerate(cohort.order))
    ids: list[str] = []
    samples: list[np.ndarray] = []
    rates: list[float] = []
    seqs: list[int] = []
    t0s: list[float] = []
    for _, _, c, j in order:
        cohort = picked[c]
        if together[c] is None:
            rows[c].append(_read(cohort.streams[j], cohort.position, chunk, report))
        x = rows[c][j]
        if x is None:
            continue
        ids.append(cohort.ids[j])
        samples.append(x)
        rates.append(cohort.rates[j])
        seqs.append(cohort.seq)
        t0s.append(wall0 + starts[c][1] / cohort.rate)
    due = max(c._settle(r, behind) for c, r in zip(picked, rows, strict=True))
    return (ChunkBlock(ids, samples, rates, seqs, t0s) if ids else None), due


def _read(stream: ChunkStream, position: int, chunk: int, report: Report) -> np.ndarray | None:
    """Read the stream's next chunk; None at its end or on an error (reported)."""
    try:
        x = stream.read(chunk)
    except Exception as exc:
        log.exception("stream of sensor %s failed; it is stopped, the other sensors go on", stream.sensor_id)
        report(stream.sensor_id, exc)
        return None
    if x is None or x.size == 0:
        log.info("stream of sensor %s ended after %d samples", stream.sensor_id, position)
        return None
    return x if x.dtype == np.float32 else np.asarray(x, dtype=np.float32)
