"""Backend.call_cpu_s / call_windows: the model call's own thread CPU, which bench daemon compares
between the bare loop and the daemon."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from runtime.backends.base import Backend
from runtime.bench.report import summarise
from runtime.bench.runs import PhaseResult, merge_phases
from runtime.errors import DataError
from tests.runtime.tiny_models import make_metadata

META = make_metadata(window=64)


class BurningFakeBackend(Backend):
    """A stand-in model that spins the CPU for ``burn_s`` per call, or sleeps for ``sleep_s`` (which
    costs no CPU): what the counter must and must not charge."""

    name = "fake"
    checks_golden_in_load: ClassVar[bool] = True  # no golden windows to prove

    def __init__(self, burn_s: float = 0.0, sleep_s: float = 0.0) -> None:
        super().__init__(Path("fake.onnx"), META)
        self.burn_s, self.sleep_s = burn_s, sleep_s

    def _load(self) -> None:
        pass

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        end = time.thread_time() + self.burn_s
        while time.thread_time() < end:
            pass
        time.sleep(self.sleep_s)
        return np.zeros((batch.shape[0], self.num_classes), np.float32)


def _x(n: int) -> np.ndarray:
    return np.zeros((n, 1, 64), np.float32)


def test_call_cpu_counts_the_calls_thread_cpu_and_windows() -> None:
    backend = BurningFakeBackend(burn_s=0.02)
    backend.load()
    backend.infer(_x(3))
    backend.infer_outputs(_x(5))
    assert backend.call_windows == 8
    assert 0.04 <= backend.call_cpu_s < 0.2


def test_sleeping_and_other_threads_cpu_is_not_charged_to_the_call() -> None:
    backend = BurningFakeBackend(sleep_s=0.05)
    backend.load()
    stop = threading.Event()

    def spin() -> None:  # another thread burning CPU meanwhile, as the daemon's source thread does
        while not stop.is_set():
            pass

    other = threading.Thread(target=spin)
    other.start()
    try:
        backend.infer(_x(4))
    finally:
        stop.set()
        other.join()
    assert backend.call_windows == 4
    assert backend.call_cpu_s < 0.03


def test_a_failed_input_check_counts_nothing() -> None:
    backend = BurningFakeBackend()
    backend.load()
    with pytest.raises(DataError):
        backend.infer(np.zeros((2, 1, 63), np.float32))
    assert backend.call_windows == 0 and backend.call_cpu_s == 0.0


def test_the_report_gives_model_cpu_per_window_and_merged_phases_sum_it() -> None:
    a = PhaseResult("a", 1.0, 100, 100.0, cpu_s=0.03, extra={"model_cpu_s": 0.02, "model_windows": 100})
    b = PhaseResult("b", 1.0, 300, 300.0, cpu_s=0.07, extra={"model_cpu_s": 0.04, "model_windows": 300})
    assert summarise(a)["model_cpu_us_per_window"] == 200.0
    merged = merge_phases("a+b", [a, b])
    assert merged.extra["model_windows"] == 400
    assert summarise(merged)["model_cpu_us_per_window"] == 150.0
    assert summarise(PhaseResult("none", 1.0, 10, 10.0))["model_cpu_us_per_window"] is None
