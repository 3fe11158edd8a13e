"""MicroBatcher's deadline counts from a window's arrival (``t_mono``), not from its queueing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from runtime.backends.base import Backend
from runtime.batching import BatchResult, MicroBatcher
from runtime.windowing import Window
from tests.runtime.tiny_models import make_metadata

META = make_metadata(window=64)


class ZeroFakeBackend(Backend):
    """A stand-in model (the batcher's external boundary) answering zeros."""

    name = "fake"
    checks_golden_in_load: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__(Path("fake.onnx"), META)

    def _load(self) -> None:
        pass

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return np.zeros((batch.shape[0], self.num_classes), np.float32)


def _wait_for_one(t_mono: float, max_wait_ms: float) -> float:
    """Seconds from submitting one window stamped ``t_mono`` until its batch is delivered."""
    done = threading.Event()
    got: list[BatchResult] = []
    batcher = MicroBatcher(ZeroFakeBackend(), max_batch=32, max_wait_ms=max_wait_ms,
                           on_batch=lambda b: (got.append(b), done.set()))
    batcher.start()
    try:
        t0 = time.monotonic()
        batcher.submit(Window("s0", 0, np.zeros((1, 64), np.float32), 0, t_mono, 0.0))
        assert done.wait(5.0)
        return time.monotonic() - t0
    finally:
        batcher.close()


def test_a_window_that_waited_before_the_queue_is_not_held_for_a_full_max_wait() -> None:
    # it arrived 300 ms ago (waited in a socket while the daemon was busy): its 400 ms are mostly spent
    waited = _wait_for_one(time.monotonic() - 0.3, max_wait_ms=400)
    assert waited < 0.25, waited


def test_a_window_older_than_max_wait_goes_at_once() -> None:
    assert _wait_for_one(time.monotonic() - 5.0, max_wait_ms=400) < 0.2


def test_a_fresh_window_still_waits_about_max_wait() -> None:
    waited = _wait_for_one(time.monotonic(), max_wait_ms=300)
    assert 0.28 <= waited < 1.5, waited


def test_a_stamp_in_the_future_does_not_extend_the_wait() -> None:
    # a clock the batcher cannot trust beyond its own: the queue time bounds the deadline
    waited = _wait_for_one(time.monotonic() + 10.0, max_wait_ms=200)
    assert 0.18 <= waited < 1.5, waited
