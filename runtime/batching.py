"""Micro-batching of windows across sensors onto one inference thread.

Sixty-four sensors each produce a window every few tens of milliseconds; running them one by one
wastes the accelerator, and waiting too long to fill a batch adds latency. The
:class:`MicroBatcher` collects windows until ``max_batch`` are waiting or the oldest has waited
``max_wait_ms`` since its last sample arrived (``t_mono``) and makes one backend call. Windows
travel as blocks (:class:`~runtime.window_block.WindowBlock`: one array per field, many sensors'
windows), so a batch is a slice of one block or the concatenation of a few, never one object per
window.

Every backend call happens on the batcher's single thread, including ``backend.load()`` and
``backend.close()``: TensorRT execution contexts and CUDA streams belong to the thread that made
them.

When the queue is full the **oldest** window of the sensor with the most windows queued is dropped
and counted: under overload the freshest data is the most useful for a condition monitor, a
bounded queue keeps memory and latency bounded, and a sensor that floods pays for its flood
instead of its neighbours (with equal shares, the oldest window of all goes).

Exceptions from the backend or from the result callback are counted and logged (the first with
its traceback, then one line per kind every 10 s: a model that fails every batch must not write a
traceback per batch); the thread keeps serving the other sensors.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from runtime.artifact import Normalization
from runtime.backends.base import Backend
from runtime.batch_result import BatchResult, InferenceResult, softmax
from runtime.log_throttle import LogThrottle
from runtime.signals.normalize import normalize_windows
from runtime.window_block import Window, WindowBlock

log = logging.getLogger(__name__)

__all__ = ["BatchResult", "BatcherStats", "InferenceResult", "MicroBatcher", "softmax"]


@dataclass
class BatcherStats:
    """Counters of one batcher (read them from any thread; they only grow)."""

    submitted: int = 0
    dropped: int = 0
    batches: int = 0
    inferred: int = 0
    errors: int = 0
    callback_errors: int = 0
    #: windows dropped from a full queue, per sensor
    dropped_per_sensor: collections.Counter[str] = field(default_factory=collections.Counter)


class MicroBatcher:
    """Batch windows across sensors and classify them on one dedicated thread.

    ``on_batch`` is called once per batch with a :class:`BatchResult` (cheapest);
    ``on_result`` once per window with an :class:`InferenceResult`. Both run on the inference
    thread, so they must be quick (hand work to another queue if it blocks).
    """

    def __init__(
        self,
        backend: Backend,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        on_result: Callable[[InferenceResult], None] | None = None,
        *,
        on_batch: Callable[[BatchResult], None] | None = None,
        max_queue: int = 4096,
        name: str = "drsn-infer",
        normalization: Normalization | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < max_batch or max_wait_ms < 0:
            raise ValueError("need max_batch >= 1, max_queue >= max_batch and max_wait_ms >= 0")
        if backend.max_batch is not None and max_batch > backend.max_batch:
            log.warning(
                "max_batch %d exceeds the backend's %d; using %d",
                max_batch,
                backend.max_batch,
                backend.max_batch,
            )
            max_batch = backend.max_batch
        self.backend = backend
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_result, self.on_batch = on_result, on_batch
        #: how raw windows (``Window.normalized`` False) are normalised: once per batch, here
        self.normalization = normalization
        self.stats = BatcherStats()
        # blocks of windows and when each was queued; ``_depth`` windows in all
        self._queue: collections.deque[tuple[WindowBlock, float]] = collections.deque()
        self._depth = 0
        # windows queued per sensor = queued - taken (two counters updated in C, one per direction)
        self._queued: collections.Counter[str] = collections.Counter()
        self._taken: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # producers that must not drop (fast replays) sleep here until the queue has drained to half
        self._room = threading.Condition(self._lock)
        self._closing = False
        self._loaded = threading.Event()
        self._load_error: BaseException | None = None
        self._throttle = LogThrottle(log)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def queue_depth(self) -> int:
        return self._depth

    @property
    def running(self) -> bool:
        """True while the inference thread is alive (False before start and after close)."""
        return self._thread.is_alive()

    def start(self, timeout: float | None = None) -> None:
        """Start the thread and wait until the backend has loaded there; re-raise its load error."""
        self._thread.start()
        if not self._loaded.wait(timeout):
            raise TimeoutError(f"backend {self.backend.name} did not load within {timeout} s")
        if self._load_error is not None:
            raise self._load_error

    def submit(self, window: Window) -> None:
        """Queue one window; never blocks (the busiest sensor's oldest is dropped when the queue is full)."""
        self.submit_many((window,))

    def submit_many(self, windows: Iterable[Window]) -> None:
        """Queue several :class:`Window` objects under one lock (consecutive ones as one block)."""
        batch = windows if isinstance(windows, list) else list(windows)
        blocks, start = [], 0
        for i in range(1, len(batch) + 1):  # a block holds normalised or raw windows, not both
            if i == len(batch) or batch[i].normalized != batch[start].normalized:
                blocks.append(WindowBlock.of_windows(batch[start:i]))
                start = i
        self.submit_blocks(blocks)

    def submit_blocks(self, blocks: Sequence[WindowBlock]) -> None:
        """Queue blocks of windows under one lock; never blocks (see the module docstring for drops)."""
        now = time.monotonic()
        with self._cond:
            if self._closing:
                raise RuntimeError("MicroBatcher is closed; no more windows are accepted")
            q = self._queue
            before = self._depth
            for block in blocks:
                n = block.size
                if not n:
                    continue
                q.append((block, now))
                self._queued.update(block.sensor_ids)
                self._depth += n
                self.stats.submitted += n
            if self._depth > self.max_queue:
                self._drop(self._depth - self.max_queue)
            # wake the inference thread only on the transitions it waits for: the first window
            # (it may sleep on an empty queue) and the window that completes a batch
            if before == 0 or before < self.max_batch <= self._depth:
                self._cond.notify()

    def _drop(self, n: int) -> None:
        """Drop ``n`` windows, each the oldest of the sensor with the most queued (the head's on a tie).

        Lock held. A flooder holds most of the queue, so its oldest window is found within a few blocks.
        """
        queued, taken = self._queued, self._taken
        counts = {sid: k - taken[sid] for sid, k in queued.items() if k > taken[sid]}
        q = self._queue
        for _ in range(n):
            head = q[0][0].sensor_ids[0]
            busiest, most = max(counts.items(), key=lambda kv: kv[1])
            victim = head if counts[head] == most else busiest
            for b, (block, t) in enumerate(q):
                if victim in block.sensor_ids:
                    rest = block.without(block.sensor_ids.index(victim))
                    if rest.size:
                        q[b] = (rest, t)
                    else:
                        del q[b]
                    break
            counts[victim] -= 1
            taken[victim] += 1
            self._depth -= 1
            self.stats.dropped += 1
            self.stats.dropped_per_sensor[victim] += 1

    def dropped_by_sensor(self) -> dict[str, int]:
        """A copy of :attr:`BatcherStats.dropped_per_sensor`, taken under the queue's lock (the
        producers add to it while dropping), for the metrics carried from another thread."""
        with self._cond:
            return dict(self.stats.dropped_per_sensor)

    def wait_for_room(self, n: int, timeout: float | None = None) -> bool:
        """Block until ``n`` more windows fit without dropping, or the batcher closes; False on timeout.

        A waiting producer is woken only once the queue has drained to half its size, so a fast
        source and the inference thread hand over in large bursts instead of window by window.
        """
        limit = max(self.max_queue - n, 0)
        with self._cond:
            if self._depth <= limit:
                return True
            low = min(limit, self.max_queue // 2)
            return bool(self._room.wait_for(lambda: self._depth <= low or self._closing, timeout))

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting windows, classify those still queued, close the backend, join the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            self._room.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("inference thread did not finish within %s s", timeout)

    def _run(self) -> None:
        try:
            self.backend.load()
        except BaseException as exc:  # handed to start(), which re-raises it in the caller
            self._load_error = exc
            self._loaded.set()
            return
        self._loaded.set()
        try:
            while (batch := self._next_batch()) is not None:
                self._process(batch)
        finally:
            self._close_backend()

    def _next_batch(self) -> list[WindowBlock] | None:
        """Block until a batch is due: max_batch waiting, the oldest past max_wait, or closing."""
        with self._cond:
            q = self._queue
            while not q:
                if self._closing:
                    return None
                self._cond.wait()
            head, queued = q[0]
            # the head's wait counts from its oldest window's arrival (t_mono: the socket's receive stamp
            # for network sources), not from when it reached this queue: a frame that already waited
            # in the socket while the daemon's threads were busy is not held for a full max_wait again
            # (real time: a shorter PUBACK tail for slightly smaller batches; docs/results/bench-daemon-ort)
            oldest = float(head.t_mono.min()) if head.size else queued
            deadline = min(queued, oldest) + self.max_wait_s
            while self._depth < self.max_batch and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            want = min(self._depth, self.max_batch)
            parts: list[WindowBlock] = []
            while want:
                block, t = q[0]
                if block.size <= want:
                    q.popleft()
                    part = block
                else:  # the head block is longer than the batch: take its first rows
                    part, q[0] = block.rows(0, want), (block.rows(want, block.size), t)
                parts.append(part)
                self._taken.update(part.sensor_ids)
                want -= part.size
                self._depth -= part.size
            if self._depth <= self.max_queue // 2:
                self._room.notify_all()
            return parts

    def _process(self, parts: list[WindowBlock]) -> None:
        block = WindowBlock.concat(parts)
        try:
            x = self._inputs(parts, block)
            t0 = time.monotonic()
            logits, features = self.backend.infer_outputs(x)
            t_done = time.monotonic()
        except Exception as exc:
            self.stats.errors += 1
            self._throttle.log(f"infer:{type(exc).__name__}", logging.ERROR, "inference failed for a batch "
                               "of %d windows (%s); they are dropped (%d failed batches so far)",
                               block.size, str(exc)[:300], self.stats.errors, exc_info=True)
            return
        self.stats.batches += 1
        self.stats.inferred += block.size
        self._deliver(BatchResult(None, logits, softmax(logits), t_done - t0, t_done, features, x,
                                  block=block))

    def _inputs(self, parts: Sequence[WindowBlock], block: WindowBlock | None = None) -> np.ndarray:
        """The batch as one float32 array, raw windows normalised in one call for the whole batch."""
        whole = block if block is not None else WindowBlock.concat(parts)
        if all(p.normalized for p in parts):
            return whole.data
        if self.normalization is None:
            raise ValueError("raw windows reached a batcher without a normalization; pass the model's "
                             "normalization to MicroBatcher")
        if not any(p.normalized for p in parts):
            return normalize_windows(whole.data, self.normalization)
        return np.concatenate([p.data if p.normalized else normalize_windows(p.data, self.normalization)
                               for p in parts])

    def _deliver(self, batch: BatchResult) -> None:
        try:
            if self.on_batch is not None:
                self.on_batch(batch)
            if self.on_result is not None:
                for r in batch.results():
                    self.on_result(r)
        except Exception as exc:
            self.stats.callback_errors += 1
            self._throttle.log(f"callback:{type(exc).__name__}", logging.ERROR, "result callback failed for "
                               "a batch of %d windows (%s)", batch.size, str(exc)[:300], exc_info=True)

    def _close_backend(self) -> None:
        try:
            self.backend.close()
        except Exception:
            log.exception("closing backend %s failed", self.backend.name)
