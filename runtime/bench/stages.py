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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from runtime.mqtt.receipts import Ack
from runtime.publish_hooks import WindowRef

#: the metrics' ``observe_batch(size, infer_s, latencies_s)``
ObserveFn = Callable[[int, float, np.ndarray], None]
_Acked = tuple[Sequence[WindowRef], float, float, float, float, float]
STAGES = ("batch wait + inference", "results path", "outbox commit", "worker send", "broker and PUBACK")


@dataclass
class StageRecorder:
    """Collects, while :attr:`recording`, each acknowledged row's stage times; the inference thread
    only keeps references (its CPU is what the benchmark measures), the arithmetic is done in
    :meth:`table`."""

    recording: bool = False
    #: per acknowledged row: (its windows, t_done - t_mono of its newest, t_enqueued, t_put, t_send, t_ack)
    acked_rows: list[_Acked] = field(default_factory=list)
    _rows: dict[int, tuple[Sequence[WindowRef], float, float]] = field(default_factory=dict)
    _early: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # PUBACK before enqueued
    _pending: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, observe: ObserveFn) -> ObserveFn:
        """The metrics' ``observe_batch`` with this recorder listening (same arguments, same effect)."""
        def observed(size: int, infer_s: float, latencies_s: np.ndarray) -> None:
            # t_done - t_mono of the batch's windows: the smallest is the newest window's
            self._pending = float(np.min(latencies_s)) if size else 0.0
            observe(size, infer_s, latencies_s)
        return observed

    def predictions_enqueued(self, rows: Sequence[int | None], windows: Sequence[WindowRef]) -> None:
        if not windows:
            return
        now = time.monotonic()
        first = rows[0]
        by_row: Mapping[int, Sequence[WindowRef]]
        if first is not None and rows.count(first) == len(rows):  # one row per batch (predictions: batch)
            by_row = {first: windows}
        else:
            lists: dict[int, list[WindowRef]] = {}
            for row, window in zip(rows, windows, strict=True):
                if row is not None:
                    lists.setdefault(row, []).append(window)
            by_row = lists
        with self._lock:
            for row, refs in by_row.items():
                early = self._early.pop(row, None)
                if early is None:
                    self._rows[row] = (refs, self._pending, now)
                else:  # the worker sent and the broker acknowledged before this hook ran
                    self._done(refs, self._pending, now, *early)

    def acked(self, ack: Ack) -> None:
        now = time.monotonic()
        if ack.latency_s is None or not ack.topic.endswith(("/prediction", "/predictions")):
            return  # an event, or a row of an earlier run
        t_put, t_send = now - ack.latency_s, now - ack.sent_to_ack_s
        with self._lock:
            got = self._rows.pop(ack.row, None)
            if got is None:
                self._early[ack.row] = (t_put, t_send, now)
            else:
                self._done(*got, t_put, t_send, now)

    def _done(self, windows: Sequence[WindowRef], newest: float, t_enqueued: float, t_put: float,
              t_send: float, t_ack: float) -> None:
        if self.recording:
            self.acked_rows.append((windows, newest, t_enqueued, t_put, t_send, t_ack))

    @property
    def samples(self) -> list[tuple[float, ...]]:
        """Per window: (total, *stage durations) in seconds."""
        out: list[tuple[float, ...]] = []
        for windows, newest, t_enq, t_put, t_send, t_ack in self.acked_rows:
            t_mono = [w[2] for w in windows]
            t_done = max(t_mono) + newest  # the same t_done for every window of a batch
            tail = (t_put - t_done, t_enq - t_put, t_send - t_enq, t_ack - t_send)
            out.extend((t_ack - t, t_done - t, *tail) for t in t_mono)
        return out

    def summary(self) -> dict[str, object]:
        """Each stage's (and the total's) percentiles and means in ms, as ``anatomy.json`` keeps them."""
        a = np.array(self.samples) * 1e3
        if not a.size:
            return {"names": ["total", *STAGES], "windows": 0}
        tail = a[a[:, 0] >= np.quantile(a[:, 0], 0.99)]
        out: dict[str, object] = {"names": ["total", *STAGES], "windows": len(a)}
        for key, values in (("p50", np.quantile(a, 0.5, axis=0)), ("p90", np.quantile(a, 0.9, axis=0)),
                            ("p99", np.quantile(a, 0.99, axis=0)), ("max", a.max(axis=0)),
                            ("mean", a.mean(axis=0)), ("mean_slowest_1pct", tail.mean(axis=0))):
            out[key] = [round(float(v), 4) for v in values]
        return out

    def table(self, quantiles: Sequence[float] = (0.5, 0.9, 0.99)) -> str:
        """Markdown: each stage's percentiles over windows, and the same stages for the slowest 1 %."""
        samples = self.samples
        if not samples:
            return "no acknowledged results recorded\n"
        a = np.array(samples) * 1e3
        tail = a[a[:, 0] >= np.quantile(a[:, 0], 0.99)]
        head = " | ".join(f"p{round(q * 100)}" for q in quantiles)
        lines = [f"| stage (ms, {len(a)} windows) | {head} | mean | mean of the slowest 1 % |",
                 "|---|" + "---:|" * (len(quantiles) + 2)]
        for j, name in enumerate(("last sample -> PUBACK", *STAGES)):
            qs = " | ".join(f"{np.quantile(a[:, j], q):.2f}" for q in quantiles)
            lines.append(f"| {name} | {qs} | {a[:, j].mean():.2f} | {tail[:, j].mean():.2f} |")
        return "\n".join(lines) + "\n"
