"""Blocks of many sensors' chunks: the replay scheduler groups sensors in lockstep, and the chunk
router windows a block per window group, counting bad input, gaps and unknown sensors per sensor."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from runtime.batching import BatchResult, MicroBatcher
from runtime.chunk_router import ChunkRouter
from runtime.fault_state import FaultStateConfig, FaultStateTracker
from runtime.metrics import Metrics
from runtime.pipeline import ModelRuntime, SensorPipeline
from runtime.sources import ChunkBlock
from runtime.sources.pacing import run_paced
from runtime.windowing import SensorWindower
from tests.runtime.test_batching import META, FakeBackend


class Ramp:
    """A stream of consecutive numbers (so a chunk's samples show where it came from)."""

    def __init__(self, sensor_id: str, sample_rate: float, length: int) -> None:
        self.sensor_id, self.sample_rate, self._pos, self._length = sensor_id, sample_rate, 0, length

    def read(self, n: int) -> np.ndarray | None:
        n = min(n, self._length - self._pos)
        out = np.arange(self._pos, self._pos + n, dtype=np.float32)
        self._pos += n
        return out if n else None


def test_sensors_in_lockstep_arrive_as_one_block_and_a_faster_one_more_often() -> None:
    blocks: list[ChunkBlock] = []
    streams = [Ramp("a", 1000.0, 400), Ramp("b", 1000.0, 400), Ramp("fast", 2000.0, 800)]
    ended = run_paced(streams, chunk=100, speed=None, stopping=threading.Event(), emit_block=blocks.append,
                      report=lambda sid, exc: None)
    assert ended
    assert [sorted(b.sensor_ids) for b in blocks] == [["a", "b", "fast"], ["fast"]] * 4
    for sid, length in (("a", 400), ("b", 400), ("fast", 800)):
        rows = [(b.samples[i], b.seqs[i], b.t0s[i])
                for b in blocks for i, s in enumerate(b.sensor_ids) if s == sid]
        np.testing.assert_array_equal(np.concatenate([x for x, _, _ in rows]), np.arange(length))
        assert [q for _, q, _ in rows] == list(range(len(rows)))
        rate = 2000.0 if sid == "fast" else 1000.0
        np.testing.assert_allclose(np.diff([t for _, _, t in rows]), 100 / rate, atol=1e-6)  # Unix-time


def _pipelines(ids: list[str], batches: list[BatchResult], max_batch: int = 64,
               max_queue: int = 4096) -> tuple[dict[str, SensorPipeline], MicroBatcher]:
    batcher = MicroBatcher(FakeBackend(delay_s=0.002), max_batch=max_batch, max_wait_ms=0,
                           max_queue=max_queue, on_batch=batches.append, normalization=META.normalization)
    model = ModelRuntime(Path("fake.onnx"), META, batcher)
    spec = META.signal
    assert spec is not None
    sensors = {}
    for sid in ids:
        windower = SensorWindower(sid, spec.sample_rate, META, group=model.window_group(spec.hop))
        tracker = FaultStateTracker(sid, META.classes, META.healthy_class, FaultStateConfig())
        sensors[sid] = SensorPipeline(sid, spec.sample_rate, model, windower, tracker)
    return sensors, batcher


def test_a_block_is_windowed_together_and_bad_input_is_counted_per_sensor() -> None:
    batches: list[BatchResult] = []
    sensors, batcher = _pipelines(["s0", "s1", "s2"], batches)
    metrics = Metrics()
    router = ChunkRouter(metrics, sensors, {"off": "disabled in the config"}, threading.Event())
    spec = META.signal
    assert spec is not None
    n = spec.window
    ok = np.ones(n, dtype=np.float32)
    bad = ok.copy()
    bad[1] = np.nan
    t0 = time.time()
    # s0 twice (its second chunk continues the first), s1's chunk NaN, a sensor nobody configured,
    # a disabled one, then s2 jumping from seq 0 to seq 5
    router.on_block(ChunkBlock(["s0", "s1", "ghost", "s0", "off", "s2"], [ok, bad, ok, ok * 2, ok, ok],
                               [spec.sample_rate] * 6, [0, 0, 0, 1, 0, 0], [t0] * 6))
    router.on_block(ChunkBlock(["s2"], [ok], [spec.sample_rate], [5], [t0]))
    batcher.start()
    batcher.close()
    snap = metrics.snapshot()

    def counted(name: str) -> dict[str, float]:
        return {sid: v for sid, v in snap[name]["by_sensor"].items() if v}

    assert counted("bad_payloads") == {"s1": 1.0, "ghost": 1.0}
    assert counted("gaps") == {"s2": 1.0}
    assert snap["dropped_samples"]["by_sensor"]["s1"] == n
    got = [(s, i) for b in batches for s, i in zip(b.sensor_ids, b.index.tolist(), strict=True)]
    per_window = n // spec.hop  # windows per chunk of one window length, in steady state
    assert [i for s, i in got if s == "s0"] == list(range(1 + per_window))
    assert [s for s, _ in got].count("s1") == 0
    assert [s for s, _ in got].count("s2") == 2  # one window before the gap, one after it
    assert sensors["s0"].windower.stats.samples == 2 * n


def test_a_fast_block_larger_than_the_queue_waits_for_room_in_parts_and_loses_nothing() -> None:
    """A replay of many sensors pushes back instead of dropping, even when one block holds more
    windows than the whole queue."""
    batches: list[BatchResult] = []
    ids = [f"s{i}" for i in range(40)]
    sensors, batcher = _pipelines(ids, batches, max_batch=4, max_queue=8)
    router = ChunkRouter(Metrics(), sensors, {}, threading.Event())
    spec = META.signal
    assert spec is not None
    batcher.start()
    for seq in range(3):
        router.on_block(ChunkBlock(ids, [np.full(spec.window, seq, np.float32)] * 40, [spec.sample_rate] * 40,
                                   [seq] * 40, [time.time()] * 40), push_back=True)
    batcher.close()
    assert batcher.stats.dropped == 0
    # chunks of one window length at hop window/2: 1 window, then 2 per chunk
    assert spec.hop * 2 == spec.window
    assert batcher.stats.inferred == sum(b.size for b in batches) == 40 * 5


def test_a_blocks_arrivals_reach_the_windows_also_past_an_unknown_sensor() -> None:
    batches: list[BatchResult] = []
    sensors, batcher = _pipelines(["s0", "s1"], batches)
    router = ChunkRouter(Metrics(), sensors, {}, threading.Event())
    spec = META.signal
    assert spec is not None
    ok = np.ones(spec.window, dtype=np.float32)
    router.on_block(ChunkBlock(["s0", "ghost", "s1"], [ok] * 3, [spec.sample_rate] * 3, [0] * 3,
                               [time.time()] * 3, arrivals=[3.0, 4.0, 5.0]))
    batcher.start()
    batcher.close()
    got = {(s, float(t)) for b in batches for s, t in zip(b.sensor_ids, b.t_mono, strict=True)}
    assert got == {("s0", 3.0), ("s1", 5.0)}
