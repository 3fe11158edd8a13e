"""Fair intake: one flooding sender must not starve the other sensors of the same source.

A network source receives every sensor's frames on one socket or one MQTT connection. Decoding
and windowing them one by one in arrival order lets a sender that floods (garbage, a runaway
gateway, a replay at 100x) take the whole thread: a neighbour once fell from 23.4 to 13 windows/s
during a garbage flood. Here the receiving thread only queues each payload under a key (the
sensor, as far as it can be known without decoding: the MQTT topic, or the sender's address and
the id in a binary frame's header) and a worker serves the keys round robin. The queue is bounded
as a whole; when it is full the oldest payload of the *longest* queue, the flooder's, is dropped
and counted, so the sensors that send at their normal rate lose nothing.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from runtime.log_throttle import LogThrottle
from runtime.sources.base import ChunkBlock, SampleChunk
from runtime.sources.frames import HEADER, MAGIC
from runtime.sources.intake import FrameIntake

log = logging.getLogger(__name__)

T = TypeVar("T")

#: payloads queued per source before the flooder's oldest are dropped
DEFAULT_CAPACITY = 2048
#: most payloads decoded into one block of chunks
_BLOCK_MAX = 256


def frame_key(data: bytes, origin: Hashable) -> Hashable:
    """``(origin, sensor id bytes)`` of a binary frame read from its header, else ``(origin, None)``.

    No decoding and no validation: a wrong id only files the payload under another key, and the
    intake checks everything afterwards.
    """
    if len(data) >= HEADER.size and data[:4] == MAGIC:
        return origin, bytes(data[HEADER.size : HEADER.size + data[7]])
    return origin, None


class FairQueue(Generic[T]):
    """Bounded FIFO queues per key, served round robin; thread-safe."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._queues: dict[Hashable, collections.deque[T]] = {}
        self._turns: collections.deque[Hashable] = collections.deque()  # keys with items, in serving order
        self._size = 0
        self._closed = False
        self._cond = threading.Condition()
        #: payloads dropped per key because the queue was full
        self.dropped: collections.Counter[Hashable] = collections.Counter()

    def __len__(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, key: Hashable, item: T) -> Hashable | None:
        """Queue ``item`` under ``key``; return the key whose oldest item was dropped to make room."""
        victim: Hashable | None = None
        with self._cond:
            if self._size >= self.capacity:
                victim = max(self._queues, key=lambda k: len(self._queues[k]))
                self._queues[victim].popleft()
                self._size -= 1
                self.dropped[victim] += 1
                if not self._queues[victim]:
                    del self._queues[victim]
                    self._turns.remove(victim)
            q = self._queues.get(key)
            if q is None:
                q = self._queues[key] = collections.deque()
                self._turns.append(key)
            q.append(item)
            self._size += 1
            self._cond.notify()
        return victim

    def get(self, timeout: float | None = None) -> tuple[Hashable, T] | None:
        """The next item in round-robin order over the keys; None on timeout or once closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._size > 0 or self._closed, timeout):
                return None
            if self._size == 0:
                return None
            key = self._turns.popleft()
            q = self._queues[key]
            item = q.popleft()
            self._size -= 1
            if q:
                self._turns.append(key)
            else:
                del self._queues[key]
            return key, item

    def get_ready(self, limit: int) -> list[tuple[Hashable, T]]:
        """Up to ``limit`` items already queued, in the same round-robin order; never waits."""
        out: list[tuple[Hashable, T]] = []
        with self._cond:
            turns, queues = self._turns, self._queues
            while turns and len(out) < limit:
                key = turns.popleft()
                q = queues[key]
                out.append((key, q.popleft()))
                self._size -= 1
                if q:
                    turns.append(key)
                else:
                    del queues[key]
        return out

    def close(self) -> None:
        """Wake every waiting :meth:`get`; the items still queued can be taken until it is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class FairIntake:
    """A :class:`FairQueue` in front of a :class:`~runtime.sources.intake.FrameIntake`, with its worker.

    The receiving thread (a socket loop, paho's network thread) calls :meth:`put` and returns at
    once; the worker thread decodes and emits in round-robin order. :attr:`dropped` counts the
    payloads dropped for room, and ``on_drop`` is called for each (the sources count them in
    :attr:`~runtime.sources.base.Source.frames_dropped`).
    """

    def __init__(self, intake: FrameIntake, *, name: str, capacity: int = DEFAULT_CAPACITY,
                 on_drop: Callable[[], None] | None = None,
                 emit_block: Callable[[ChunkBlock], None] | None = None) -> None:
        self.intake = intake
        #: when set, every payload waiting is decoded and handed over as one block (see _serve)
        self._emit_block = emit_block
        self.dropped = 0
        self._on_drop = on_drop
        self._queue: FairQueue[tuple[bytes, str, str | None]] = FairQueue(capacity)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._throttle = LogThrottle(log)

    def start(self) -> None:
        self._thread.start()

    def put(self, key: Hashable, data: bytes | bytearray, *, origin: str,
            sensor_id: str | None = None) -> None:
        victim = self._queue.put(key, (bytes(data), origin, sensor_id))
        if victim is not None:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
            self._throttle.log(f"drop:{victim!r}", logging.WARNING, "intake queue full (%d payloads): "
                               "dropped the oldest of the busiest sender %r (%d dropped so far)",
                               self._queue.capacity, victim, self.dropped)

    def stop(self, timeout: float = 2.0) -> None:
        """Serve what is queued, then end the worker (bounded by ``timeout``)."""
        self._queue.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _serve(self) -> None:
        while True:
            got = self._queue.get(timeout=0.25)
            if got is None:
                if self._queue.closed:
                    return
                continue
            if self._emit_block is None:
                self._handle(got[1])
            else:
                self._handle_ready(got[1], self._emit_block)

    def _handle(self, payload: tuple[bytes, str, str | None]) -> None:
        data, origin, sensor_id = payload
        try:
            self.intake.handle(data, origin=origin, sensor_id=sensor_id)
        except Exception as exc:  # the intake is total; this guards the worker against the unforeseen
            self._throttle.log(f"handle:{type(exc).__name__}", logging.ERROR, "handling a payload from "
                               "%s failed: %s", origin, exc, exc_info=True)

    def _handle_ready(self, first: tuple[bytes, str, str | None],
                      emit_block: Callable[[ChunkBlock], None]) -> None:
        """Decode ``first`` and every payload already waiting; hand their chunks over as one block.

        Frames of many sensors arrive together (a gateway's burst, sensors in step), and one block
        lets the daemon window them in one numpy pass. Nothing waits for more frames to come.
        """
        chunks: list[SampleChunk] = []
        for data, origin, sensor_id in [first, *(item for _, item in self._queue.get_ready(_BLOCK_MAX - 1))]:
            try:
                chunk = self.intake.chunk_of(data, origin=origin, sensor_id=sensor_id)
            except Exception as exc:  # the intake is total; this guards the worker against the unforeseen
                self._throttle.log(f"handle:{type(exc).__name__}", logging.ERROR, "handling a payload from "
                                   "%s failed: %s", origin, exc, exc_info=True)
                continue
            if chunk is not None:
                chunks.append(chunk)
        if chunks:
            emit_block(ChunkBlock([c.sensor_id for c in chunks], [c.samples for c in chunks],
                                  [c.sample_rate for c in chunks], [c.seq for c in chunks],
                                  [c.t0 for c in chunks]))


FAIR_DESCRIPTION = (
    "Payloads queued between receiving and decoding; the sensors are served in turn, and when the "
    "queue is full the oldest payload of the busiest sender is dropped (counted in "
    "drsn_edge_frames_dropped_total), so one flooding sender cannot starve the others."
)
