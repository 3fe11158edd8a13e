"""A thread-safe recorder of what a source emits and reports, for tests to wait on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from runtime.sources import SampleChunk


class Collector:
    """Plays the daemon's part: receives chunks and errors from the source's thread."""

    def __init__(self) -> None:
        self.chunks: list[SampleChunk] = []
        self.errors: list[tuple[str, Exception]] = []
        self._cv = threading.Condition()

    def emit(self, chunk: SampleChunk) -> None:
        with self._cv:
            self.chunks.append(chunk)
            self._cv.notify_all()

    def on_error(self, sensor_id: str, exc: Exception) -> None:
        with self._cv:
            self.errors.append((sensor_id, exc))
            self._cv.notify_all()

    def wait_for(self, predicate: Callable[[Collector], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
            return True

    def of(self, sensor_id: str) -> list[SampleChunk]:
        with self._cv:
            return [c for c in self.chunks if c.sensor_id == sensor_id]

    def samples(self, sensor_id: str) -> np.ndarray:
        chunks = self.of(sensor_id)
        return np.concatenate([c.samples for c in chunks]) if chunks else np.empty(0, np.float32)
