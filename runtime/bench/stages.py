"""Where a real-time window's time goes, stage by stage, from its last sample to the PUBACK.

``bench daemon`` reports two clocks per window: last sample -> classified and last sample ->
PUBACK. When the second misses its target, the question is which stage holds the tail. A
:class:`StageRecorder` is a publish hook (:mod:`runtime.publish_hooks`) plus a listener on the
daemon's per-batch metrics call, and with the times the publisher already reports in each
:class:`~runtime.mqtt.receipts.Ack` it splits every acknowledged result row into:

* ``batch wait + inference``: the window's last sample -> the backend returned (the batcher's
  ``max_wait_ms`` and the handover to the inference thread live here);
* ``results path``: backend returned -> the outbox write began (fault state, payloads);
* ``outbox commit``: the write began -> it returned (SQLite transaction and its sync);
* ``worker send``: committed -> the MQTT worker handed the row to paho;
* ``broker and PUBACK``: handed to paho -> the worker processed the broker's PUBACK
  (socket, Mosquitto, paho's network thread, the worker's wake).

Each window gets its row's stages; the percentiles are over windows, as the latency figures are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from runtime.mqtt.receipts import Ack
from runtime.publish_hooks import WindowRef

#: the metrics' ``observe_batch(size, infer_s, latencies_s)``
ObserveFn = Callable[[int, float, np.ndarray], None]
STAGES = ("batch wait + inference", "results path", "outbox commit", "worker send", "broker and PUBACK")


@dataclass
class _Row:
    t_mono: np.ndarray
    t_done: float
    t_enqueued: float


@dataclass
class StageRecorder:
    """Collects, while :attr:`recording`, each acknowledged row's stage durations per window."""

    recording: bool = False
    #: per window: (total, *stage durations) in seconds
    samples: list[tuple[float, ...]] = field(default_factory=list)
    _rows: dict[int, _Row] = field(default_factory=dict)
    _pending: np.ndarray | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe_batch(self, latencies_s: np.ndarray) -> None:
        """Inference thread, before the batch's results: ``t_done - t_mono`` of its windows."""
        self._pending = np.asarray(latencies_s, dtype=np.float64)

    def wrap(self, observe: ObserveFn) -> ObserveFn:
        """The metrics' ``observe_batch`` with this recorder listening (same arguments, same effect)."""
        def observed(size: int, infer_s: float, latencies_s: np.ndarray) -> None:
            self.observe_batch(latencies_s)
            observe(size, infer_s, latencies_s)
        return observed

    def predictions_enqueued(self, rows: Sequence[int | None], windows: Sequence[WindowRef]) -> None:
        now = time.monotonic()
        pending = self._pending
        if pending is None or not pending.size or not windows:
            return
        t_mono = np.fromiter((w[2] for w in windows), dtype=np.float64, count=len(windows))
        t_done = float(t_mono.max() + pending.min())  # the same t_done for every window of a batch
        by_row: dict[int, list[int]] = {}
        for i, row in enumerate(rows):
            if row is not None:
                by_row.setdefault(row, []).append(i)
        with self._lock:
            for row, at in by_row.items():
                self._rows[row] = _Row(t_mono[at], t_done, now)

    def acked(self, ack: Ack) -> None:
        now = time.monotonic()
        with self._lock:
            row = self._rows.pop(ack.row, None)
        if row is None or ack.latency_s is None or not self.recording:
            return
        t_put = now - ack.latency_s
        t_send = now - ack.sent_to_ack_s
        tail = (t_put - row.t_done, row.t_enqueued - t_put, t_send - row.t_enqueued, ack.sent_to_ack_s)
        self.samples.extend((now - t, row.t_done - t, *tail) for t in row.t_mono.tolist())

    def table(self, quantiles: Sequence[float] = (0.5, 0.9, 0.99)) -> str:
        """Markdown: each stage's percentiles over windows, and the same stages for the slowest 1 %."""
        if not self.samples:
            return "no acknowledged results recorded\n"
        a = np.array(self.samples) * 1e3
        tail = a[a[:, 0] >= np.quantile(a[:, 0], 0.99)]
        head = " | ".join(f"p{round(q * 100)}" for q in quantiles)
        lines = [f"| stage (ms, {len(a)} windows) | {head} | mean | mean of the slowest 1 % |",
                 "|---|" + "---:|" * (len(quantiles) + 2)]
        for j, name in enumerate(("last sample -> PUBACK", *STAGES)):
            qs = " | ".join(f"{np.quantile(a[:, j], q):.2f}" for q in quantiles)
            lines.append(f"| {name} | {qs} | {a[:, j].mean():.2f} | {tail[:, j].mean():.2f} |")
        return "\n".join(lines) + "\n"
