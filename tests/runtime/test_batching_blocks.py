"""The batcher queues blocks of windows (arrays, not one object per window): batches cut across
and inside blocks keep the order, carry the windows' fields as arrays, and a full queue still
drops the busiest sensor's oldest windows, counted per sensor."""

from __future__ import annotations

import time

import numpy as np

from runtime.batching import BatchResult, MicroBatcher
from runtime.window_block import WindowBlock
from tests.runtime.test_batching import FakeBackend


def _block(ids: list[str], first_index: int, t_mono: float) -> WindowBlock:
    n = len(ids)
    index = np.arange(first_index, first_index + n, dtype=np.int64)
    data = (index[:, None, None] + np.zeros((n, 1, 64))).astype(np.float32)  # a window's mean is its index
    return WindowBlock(ids, index, [None] * n, np.full(n, t_mono), index * 0.5, data, True)


def test_blocks_are_batched_in_order_with_their_fields_as_arrays() -> None:
    batches: list[BatchResult] = []
    batcher = MicroBatcher(FakeBackend(), max_batch=8, max_wait_ms=0, on_batch=batches.append)
    sizes = [5, 30, 7, 1]
    start, t0 = 0, time.monotonic()
    for k, n in enumerate(sizes):  # queued before the thread starts: batches of exactly 8 but the last
        batcher.submit_blocks([_block([f"s{(start + i) % 3}" for i in range(n)], start, t0 + k)])
        start += n
    batcher.start()
    batcher.close()
    assert [b.size for b in batches] == [8, 8, 8, 8, 8, 3]
    index = np.concatenate([b.index for b in batches])
    assert index.tolist() == list(range(43))
    assert [s for b in batches for s in b.sensor_ids] == [f"s{i % 3}" for i in range(43)]
    for b in batches:
        np.testing.assert_array_equal(b.t_wall, b.index * 0.5)
        np.testing.assert_array_equal(b.logits[:, 1], b.index)  # each row's own window reached the model
        assert [w.index for w in b.windows] == b.index.tolist()  # objects, built on demand, agree
        assert [w.sensor_id for w in b.windows] == b.sensor_ids
        np.testing.assert_allclose(b.latencies(), b.t_done - b.t_mono)
    # batches are cut inside blocks: windows 8-15 all from the second block, 32-39 across two
    assert batches[1].t_mono.tolist() == [t0 + 1] * 8
    assert batches[4].t_mono.tolist() == [t0 + 1] * 3 + [t0 + 2] * 5
    assert batcher.stats.submitted == batcher.stats.inferred == 43


def test_a_full_queue_drops_the_busiest_sensors_oldest_windows_from_inside_blocks() -> None:
    done: list[tuple[str, int]] = []
    batcher = MicroBatcher(FakeBackend(), max_batch=8, max_wait_ms=0, max_queue=40,
                           on_result=lambda r: done.append((r.sensor_id, r.window.index)))
    for i in range(10):  # each block: one calm window amid a flooder's ten
        ids = ["flood"] * 5 + ["calm"] + ["flood"] * 5
        block = _block(ids, 0, time.monotonic())
        index = np.array([10 * i + k for k in range(5)] + [i] + [10 * i + k for k in range(5, 10)], np.int64)
        batcher.submit_blocks([WindowBlock(ids, index, block.seq, block.t_mono, block.t_wall, block.data,
                                           True)])
    batcher.start()
    batcher.close()
    calm = [i for s, i in done if s == "calm"]
    flood = [i for s, i in done if s == "flood"]
    assert calm == list(range(10)), "the neighbour keeps every window"
    assert flood == list(range(70, 100)), "the flooder keeps its newest 30 windows"
    assert batcher.stats.dropped == 70
    assert dict(batcher.stats.dropped_per_sensor) == {"flood": 70}
    assert batcher.queue_depth == 0


def test_window_objects_and_blocks_share_one_queue() -> None:
    """submit()/submit_many() (single windows: tests, rare consumers) and blocks interleave in order."""
    batches: list[BatchResult] = []
    batcher = MicroBatcher(FakeBackend(), max_batch=4, max_wait_ms=0, on_batch=batches.append)
    block = _block(["a", "b", "c"], 0, time.monotonic())
    batcher.submit(block.window(0))
    batcher.submit_blocks([block.rows(1, 3)])
    batcher.submit_many(_block(["d", "e"], 3, time.monotonic()).windows())
    batcher.start()
    batcher.close()
    assert [s for b in batches for s in b.sensor_ids] == ["a", "b", "c", "d", "e"]
    assert [i for b in batches for i in b.index.tolist()] == [0, 1, 2, 3, 4]
