"""Time each QoS 1 prediction from its window's last sample to the broker's PUBACK.

A :class:`~runtime.publish_hooks.PublishHook` the daemon benchmark (and its test) hands to the
daemon. The worker may acknowledge a row before the inference thread has reported it enqueued,
so an early PUBACK of a prediction is held (briefly, and only for this run's rows) until its
window is known. With ``mqtt.predictions: batch`` one row carries a whole batch: its PUBACK
times every window of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from runtime.mqtt.publisher import Ack
from runtime.publish_hooks import WindowRef

#: ``(sensor, window index, seconds from receipt of the window's last sample to the broker's PUBACK)``
ResultAckHook = Callable[[str, int, float], None]
#: ``(the windows of one acknowledged row, time.monotonic() of its PUBACK)``: one call per row
ResultsAckHook = Callable[[Sequence[WindowRef], float], None]

#: an early PUBACK not matched within this time belongs to no prediction of this run
_EARLY_HOLD_S = 30.0


class ResultAckTimer:
    """Calls ``on_result_acked`` once per acknowledged QoS 1 prediction, with its latency, or
    ``on_results_acked`` once per acknowledged row with its windows (the benchmark's recorder: a
    Python call per window of a batch would count the measurement as the daemon's cost)."""

    def __init__(self, on_result_acked: ResultAckHook | None = None, capacity: int = 100_000, *,
                 on_results_acked: ResultsAckHook | None = None) -> None:
        if (on_result_acked is None) == (on_results_acked is None):
            raise ValueError("give exactly one of on_result_acked and on_results_acked")
        self.on_result_acked = on_result_acked
        self.on_results_acked = on_results_acked
        self.capacity = capacity
        self._lock = threading.Lock()
        self._waiting: dict[int, list[WindowRef]] = {}  # outbox row -> its windows, until its PUBACK
        self._early: dict[int, float] = {}  # outbox row -> monotonic time of a PUBACK seen first

    def predictions_enqueued(self, rows: Sequence[int | None], windows: Sequence[WindowRef]) -> None:
        done: list[tuple[WindowRef, float]] = []
        distinct = set(rows)
        only = next(iter(distinct)) if len(distinct) == 1 else None
        if only is not None:  # one row for a whole batch (mqtt.predictions: batch): no loop per window
            with self._lock:
                acked_at = self._early.pop(only, None)
                if acked_at is None:
                    self._waiting.setdefault(only, []).extend(windows)
                    _keep_newest(self._waiting, self.capacity)
                    return
            self._emit(windows, acked_at)
            return
        with self._lock:
            for row, window in zip(rows, windows, strict=True):
                if row is None:
                    continue
                acked_at = self._early.get(row)
                if acked_at is None:
                    self._waiting.setdefault(row, []).append(window)
                else:
                    done.append((window, acked_at))
            for row in distinct:  # every window of an early-acknowledged row is matched now
                if row is not None:
                    self._early.pop(row, None)
            _keep_newest(self._waiting, self.capacity)  # rows the outbox dropped unsent
        for window, acked_at in done:
            self._emit((window,), acked_at)

    def acked(self, ack: Ack) -> None:
        now = time.monotonic()
        with self._lock:
            found = self._waiting.pop(ack.row, None)
            result = ack.topic.endswith(("/prediction", "/predictions"))
            if found is None and result and ack.latency_s is not None:
                self._early[ack.row] = now
                for row in [r for r, t in self._early.items() if now - t > _EARLY_HOLD_S]:
                    del self._early[row]
                _keep_newest(self._early, self.capacity)
        if found:
            self._emit(found, now)

    def _emit(self, windows: Sequence[WindowRef], acked_at: float) -> None:
        if self.on_results_acked is not None:
            self.on_results_acked(windows, acked_at)
            return
        assert self.on_result_acked is not None
        for sensor, index, t_mono in windows:
            self.on_result_acked(sensor, index, acked_at - t_mono)


V = TypeVar("V")


def _keep_newest(table: dict[int, V], capacity: int) -> None:
    for row in list(table)[: max(len(table) - capacity, 0)]:
        del table[row]
