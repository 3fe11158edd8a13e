"""A full inference queue drops the flooding sensor's windows, not its neighbours' (issue 10, "Fairness")."""

from __future__ import annotations

import time

import numpy as np

from runtime.batching import MicroBatcher
from runtime.windowing import Window
from tests.runtime.test_batching import FakeBackend


def _window(sensor: str, index: int) -> Window:
    return Window(sensor, index, np.zeros((1, 64), np.float32), index, time.monotonic(), 0.0)


def test_the_busiest_sensor_loses_its_oldest_windows_when_the_queue_is_full() -> None:
    done: list[tuple[str, int]] = []
    batcher = MicroBatcher(FakeBackend(), max_batch=8, max_wait_ms=0, max_queue=32,
                           on_result=lambda r: done.append((r.sensor_id, r.window.index)))
    # queued before the inference thread starts, so the queue overflows deterministically
    for i in range(10):
        batcher.submit(_window("calm", i))
        for j in range(20):
            batcher.submit(_window("flood", 20 * i + j))
    batcher.start()
    batcher.close()
    calm = [i for s, i in done if s == "calm"]
    flood = [i for s, i in done if s == "flood"]
    assert calm == list(range(10)), "the neighbour keeps every window"
    assert flood == list(range(178, 200)), "the flooder keeps its newest 22 windows"
    assert batcher.stats.dropped == 178


def test_with_equal_shares_the_oldest_window_of_all_goes() -> None:
    done: list[tuple[str, int]] = []
    batcher = MicroBatcher(FakeBackend(), max_batch=8, max_wait_ms=0, max_queue=8,
                           on_result=lambda r: done.append((r.sensor_id, r.window.index)))
    for i in range(6):
        for s in ("a", "b"):
            batcher.submit(_window(s, i))
    batcher.start()
    batcher.close()
    assert done == [(s, i) for i in range(2, 6) for s in ("a", "b")]
