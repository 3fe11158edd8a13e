"""The batchers' drops reach Prometheus per sensor, each drop counted once however often carried."""

from __future__ import annotations

import gc
import time
import weakref

import numpy as np
from prometheus_client import generate_latest

from runtime.batching import MicroBatcher
from runtime.metrics import Metrics
from runtime.results_metrics import CountCarrier
from runtime.window_block import WindowBlock
from tests.runtime.test_batching import FakeBackend


def _flood(batcher: MicroBatcher, ids: list[str], start: int) -> None:
    n = len(ids)
    index = np.arange(start, start + n, dtype=np.int64)
    batcher.submit_blocks([WindowBlock(ids, index, [None] * n, np.full(n, time.monotonic()), index * 0.5,
                                       np.zeros((n, 1, 64), np.float32), True)])


def test_dropped_windows_are_exported_by_sensor_and_carried_once() -> None:
    metrics = Metrics()
    carrier = CountCarrier(metrics)
    batcher = MicroBatcher(FakeBackend(), max_batch=8, max_wait_ms=0, max_queue=20)  # not started: fills
    _flood(batcher, ["flood"] * 25 + ["calm"] * 5, 0)  # 30 windows into 20 places: flood loses 10
    carrier.batchers([batcher])
    carrier.batchers([batcher])  # nothing new: nothing added
    text = generate_latest(metrics.registry).decode()
    assert 'drsn_edge_windows_dropped_total{sensor="flood"} 10.0' in text
    assert 'sensor="calm"' not in text.split("drsn_edge_windows_dropped_total", 1)[1].split("# HELP")[0]
    _flood(batcher, ["calm"] * 12, 100)  # 32 queued: calm, then both in turn, lose 12 more
    carrier.batchers([batcher])
    carrier.batchers([batcher])
    drops = batcher.dropped_by_sensor()
    assert drops == dict(batcher.stats.dropped_per_sensor) and drops["calm"] > 0 and drops["flood"] > 10
    snap = metrics.snapshot()["windows_dropped"]
    assert snap == {"total": 22.0, "by_sensor": {sid: float(n) for sid, n in drops.items()}}
    batcher.start()
    batcher.close()
    gone = weakref.ref(batcher)
    del batcher
    gc.collect()
    assert gone() is None  # the carrier's counts do not keep a replaced batcher (and its backend) alive
