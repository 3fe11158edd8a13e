"""Cohorts in the paced scheduler: streams of one rate at one position travel as one heap entry and
(replay) are read as one 2-D slice, yet every block is the one a stream-by-stream scheduler sends:
same rows in the same order, same samples, sequence numbers, time stamps, errors and end."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.sources.base import ChunkBlock
from runtime.sources.pacing import ChunkStream, run_paced
from runtime.sources.replay import ReplayFile, _banks, load_recording, read_together

WALL0 = 1.7e9  # a fixed wall clock, so that both schedulers stamp the same t0s


# -- the stream-by-stream scheduler that cohorts replaced (494f34d), kept as the reference ---------

@dataclass
class _Lane:
    stream: ChunkStream
    position: int = 0
    seq: int = 0


def reference_run_paced(streams: Sequence[ChunkStream], *, chunk: int,
                        report: Callable[[str, Exception], None]) -> list[ChunkBlock]:
    """One heap entry per stream; ``speed=None``; returns every block until all streams end."""
    lanes = [_Lane(s) for s in streams]
    behind = [(0.0, i) for i in range(len(lanes))]
    blocks: list[ChunkBlock] = []
    while behind:
        clock, first = heapq.heappop(behind)
        end = clock + chunk / lanes[first].stream.sample_rate
        picked, later = [first], []
        while behind and behind[0][0] < end:
            entry = heapq.heappop(behind)
            if entry[0] + chunk / lanes[entry[1]].stream.sample_rate <= end * (1 + 1e-12):
                picked.append(entry[1])
            else:
                later.append(entry)
        for entry in later:
            heapq.heappush(behind, entry)
        ids, samples, rates, seqs, t0s = [], [], [], [], []
        for i in picked:
            lane = lanes[i]
            try:
                x = lane.stream.read(chunk)
            except Exception as exc:
                report(lane.stream.sensor_id, exc)
                continue
            if x is None or x.size == 0:
                continue
            x = np.asarray(x, dtype=np.float32)
            rate = lane.stream.sample_rate
            ids.append(lane.stream.sensor_id)
            samples.append(x)
            rates.append(rate)
            seqs.append(lane.seq)
            t0s.append(WALL0 + lane.position / rate)
            lane.position += x.size
            lane.seq += 1
            heapq.heappush(behind, (lane.position / rate, i))
        if ids:
            blocks.append(ChunkBlock(ids, samples, rates, seqs, t0s))
    return blocks


def cohort_run_paced(streams: Sequence[ChunkStream], *, chunk: int, report: Callable[[str, Exception], None],
                     together: Any = None) -> list[ChunkBlock]:
    blocks: list[ChunkBlock] = []
    with patch.object(time, "time", return_value=WALL0):
        ended = run_paced(streams, chunk=chunk, speed=None, stopping=threading.Event(),
                          emit_block=blocks.append, report=report, together=together)
    assert ended
    return blocks


def as_rows(blocks: list[ChunkBlock]) -> list[tuple[Any, ...]]:
    """Every block as comparable plain values (a 2-D block's rows as lists like a list block's)."""
    return [(b.sensor_ids, [np.asarray(x).tolist() for x in b.samples], b.sample_rates, b.seqs, b.t0s)
            for b in blocks]


# -- scripted streams: each read is a full chunk, a short one, an end or a failure -----------------

class Scripted:
    """A ramp (so samples show where they came from) whose k-th read follows ``script[k]``:
    "ok", "short" (half a chunk), "fail" (raises; the stream is then dropped) or "end"."""

    def __init__(self, sensor_id: str, sample_rate: float, script: list[str]) -> None:
        self.sensor_id, self.sample_rate, self.script = sensor_id, sample_rate, script
        self.reads = 0
        self.pos = 0

    def read(self, n: int) -> np.ndarray | None:
        step = self.script[self.reads] if self.reads < len(self.script) else "end"
        self.reads += 1
        if step == "fail":
            raise OSError(f"{self.sensor_id}: read {self.reads} failed")
        if step == "end":
            return None
        n = n // 2 if step == "short" else n
        out = np.arange(self.pos, self.pos + n, dtype=np.float64)  # float64: the scheduler converts
        self.pos += n
        return out


streams_plan = st.lists(
    st.tuples(st.sampled_from([1000.0, 2000.0, 1500.0, 4000.0]),
              st.lists(st.sampled_from(["ok"] * 6 + ["short", "fail", "end"]), min_size=1, max_size=12)),
    min_size=1, max_size=7)


@settings(max_examples=120, deadline=None)
@given(plan=streams_plan, chunk=st.sampled_from([1, 7, 64, 100, 333]))
def test_cohorts_send_exactly_the_blocks_and_errors_of_a_stream_by_stream_scheduler(
        plan: list[tuple[float, list[str]]], chunk: int) -> None:
    """Several rates, short reads that split a cohort, failing and ending streams, odd chunks."""
    def make() -> list[Scripted]:
        return [Scripted(f"s{i}", rate, script) for i, (rate, script) in enumerate(plan)]

    want_errors: list[tuple[str, str]] = []
    got_errors: list[tuple[str, str]] = []
    want = reference_run_paced(make(), chunk=chunk, report=lambda s, e: want_errors.append((s, str(e))))
    got = cohort_run_paced(make(), chunk=chunk, report=lambda s, e: got_errors.append((s, str(e))))
    assert as_rows(got) == as_rows(want)
    assert got_errors == want_errors


def test_sensors_of_one_rate_are_one_block_of_every_sensor_in_stream_order() -> None:
    streams = [Scripted(f"s{i}", 1000.0, ["ok"] * 3) for i in range(5)]
    blocks = cohort_run_paced(streams, chunk=10, report=lambda s, e: None)
    assert [b.sensor_ids for b in blocks] == [[f"s{i}" for i in range(5)]] * 3
    assert [b.seqs for b in blocks] == [[k] * 5 for k in range(3)]


# -- replay: recordings stacked in banks, a cohort read as one 2-D slice -------------------------

def _recordings(tmp_path: Path, lengths_rates: list[tuple[int, float]], loop: bool) -> list[Any]:
    loaded = []
    for i, (n, rate) in enumerate(lengths_rates):
        x = (np.arange(n, dtype=np.float32) + 1000 * i) / 7
        path = tmp_path / f"r{i}.npy"
        np.save(path, x)
        samples, r = load_recording(ReplayFile(id=f"s{i}", path=path, sample_rate=rate))
        loaded.append((f"s{i}", samples, r))
    return _banks(loaded, loop)


@settings(max_examples=40, deadline=None)
@given(layout=st.lists(st.tuples(st.sampled_from([500, 777, 1000]), st.sampled_from([1000.0, 2000.0])),
                       min_size=1, max_size=6),
       chunk=st.sampled_from([64, 100, 333, 1000]), loop=st.booleans())
def test_replay_reads_a_cohort_as_one_slice_and_sends_what_stream_by_stream_reads_send(
        tmp_path_factory: Any, layout: list[tuple[int, float]], chunk: int, loop: bool) -> None:
    """Files of several lengths (several banks) and rates, once (ends, short last chunks) or looped
    (reads around the end of a file): the same blocks with and without reading together."""
    tmp = tmp_path_factory.mktemp("rec")
    reads = 4 * max(n for n, _ in layout) // chunk + 3  # past the end of every file, around when looping

    def run(together: Any) -> list[ChunkBlock]:
        recordings = _recordings(tmp, layout, loop)
        if loop:  # a looping replay never ends: stop it after some blocks
            return _first_blocks(recordings, chunk, reads, together)
        return cohort_run_paced(recordings, chunk=chunk, report=_no_errors, together=together)

    want, got = run(None), run(read_together)
    assert as_rows(got) == as_rows(want)


def test_a_bank_of_finite_recordings_vouches_for_its_blocks_and_one_with_nan_does_not(tmp_path: Path) -> None:
    """The file readers refuse NaN already; a bank checks again, once, before it vouches."""
    good = _first_blocks(_recordings(tmp_path, [(1000, 1000.0)] * 3, True), 100, 12, read_together)
    assert all(type(b.samples) is np.ndarray and b.finite for b in good)
    x = np.ones(1000, np.float32)
    x[500] = np.nan
    bad = _first_blocks(_banks([("s0", x, 1000.0), ("s1", np.ones(1000, np.float32), 1000.0)], True), 100, 12,
                        read_together)
    assert all(type(b.samples) is np.ndarray and not b.finite for b in bad)
    assert np.isnan(np.concatenate([np.asarray(b.samples)[0] for b in bad])).sum() == 1


def test_a_cohort_that_splits_reads_its_bank_together_again(tmp_path: Path) -> None:
    """Three files of one rate, played once: two of one length (a bank), one shorter. Together they
    are read stream by stream (two banks); when the short one comes out short and then ends, the
    other two go on as one 2-D slice, then read their own short last chunks one by one."""
    layout = [(2000, 1000.0), (2000, 1000.0), (650, 1000.0)]
    blocks = cohort_run_paced(_recordings(tmp_path, layout, False), chunk=300, report=_no_errors,
                              together=read_together)
    shapes = [(type(b.samples) is np.ndarray, [len(x) for x in b.samples]) for b in blocks]
    assert shapes == ([(False, [300, 300, 300])] * 2 + [(False, [300, 300, 50])] + [(True, [300, 300])] * 3
                      + [(False, [200, 200])])
    assert [b.sensor_ids for b in blocks][3:] == [["s0", "s1"]] * 4
    want = reference_run_paced(_recordings(tmp_path, layout, False), chunk=300, report=_no_errors)
    assert as_rows(blocks) == as_rows(want)


def _first_blocks(streams: Sequence[ChunkStream], chunk: int, count: int, together: Any) -> list[ChunkBlock]:
    blocks: list[ChunkBlock] = []
    stopping = threading.Event()

    def take(block: ChunkBlock) -> None:
        blocks.append(ChunkBlock(block.sensor_ids, [np.array(x) for x in block.samples], block.sample_rates,
                                 block.seqs, block.t0s, finite=block.finite)
                      if type(block.samples) is not np.ndarray else block)
        if len(blocks) >= count:
            stopping.set()

    with patch.object(time, "time", return_value=WALL0):
        run_paced(streams, chunk=chunk, speed=None, stopping=stopping, emit_block=take, report=_no_errors,
                  together=together)
    return blocks


def _no_errors(sensor_id: str, exc: Exception) -> None:
    raise AssertionError(f"unexpected error for {sensor_id}: {exc}")
