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
import heapq
import logging
import threading
import time
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
#: (data, origin for messages, sensor id known from the channel or None, monotonic arrival time)
Payload = tuple[bytes, str, str | None, float]
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
        victims = self.put_many([(key, item)])
        return victims[0] if victims else None

    def put_many(self, items: list[tuple[Hashable, T]]) -> list[Hashable]:
        """Queue several items under one lock and one wake-up; return the keys that lost an item.

        Beyond capacity, the oldest items of the longest queue go (the first such key on a tie), as
        if each item were put alone; the longest queues are found with one heap for the whole call,
        not a scan of every key per dropped item (a flood fills the queue on every wake).
        """
        with self._cond:
            queues, turns = self._queues, self._turns
            for key, item in items:
                q = queues.get(key)
                if q is None:
                    q = queues[key] = collections.deque()
                    turns.append(key)
                q.append(item)
            self._size += len(items)
            victims = self._drop(self._size - self.capacity) if self._size > self.capacity else []
            self._cond.notify()
        return victims

    def _drop(self, n: int) -> list[Hashable]:
        """Drop ``n`` items, each the oldest of the then longest queue. Lock held."""
        queues, victims = self._queues, []
        heap = [(-len(q), i, key) for i, (key, q) in enumerate(queues.items())]  # i: ties by key order
        heapq.heapify(heap)
        for _ in range(n):
            negative, i, victim = heapq.heappop(heap)
            q = queues[victim]
            q.popleft()
            victims.append(victim)
            self.dropped[victim] += 1
            if q:
                heapq.heappush(heap, (negative + 1, i, victim))
            else:
                del queues[victim]
                self._turns.remove(victim)
        self._size -= n
        return victims

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
    """A :class:`FairQueue` in front of a :class:`~runtime.sources.intake.FrameIntake`.

    Threaded (the MQTT source: paho's network thread must return at once): the receiving thread
    calls :meth:`put` and a worker thread decodes and emits in round-robin order. Inline
    (``threaded=False``, the UDP source): the receiving thread itself alternates between queueing
    every datagram waiting on its socket (:meth:`put_many`) and serving what is queued
    (:meth:`serve_ready`), so a frame costs no hand-over between threads (two context switches
    and a cold cache per frame, which cost more than decoding and windowing it), while serving
    stays round robin over what was received and a flooder still loses its own oldest payloads.
    :attr:`dropped` counts the payloads dropped for room, and ``on_drop`` is called for each (the
    sources count them in :attr:`~runtime.sources.base.Source.frames_dropped`).
    """

    def __init__(self, intake: FrameIntake, *, name: str, capacity: int = DEFAULT_CAPACITY,
                 on_drop: Callable[[], None] | None = None,
                 emit_block: Callable[[ChunkBlock], None] | None = None, threaded: bool = True) -> None:
        self.intake = intake
        self.threaded = threaded
        #: when set, every payload waiting is decoded and handed over as one block (see _serve)
        self._emit_block = emit_block
        self.dropped = 0
        self._on_drop = on_drop
        self._queue: FairQueue[Payload] = FairQueue(capacity)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True) if threaded else None
        self._throttle = LogThrottle(log)

    @property
    def waiting(self) -> int:
        """Payloads queued and not yet served."""
        return len(self._queue)

    @property
    def capacity(self) -> int:
        return self._queue.capacity

    def start(self) -> None:
        """Start the worker thread (threaded intakes only; an inline one is served by its caller)."""
        if self._thread is not None:
            self._thread.start()

    def put(self, key: Hashable, data: bytes | bytearray, *, origin: str,
            sensor_id: str | None = None) -> None:
        """Queue one payload, stamped with its arrival now (the channel's thread handed it over)."""
        victim = self._queue.put(key, (bytes(data), origin, sensor_id, time.monotonic()))
        if victim is not None:
            self._dropped(victim)

    def put_many(self, items: list[tuple[Hashable, Payload]]) -> None:
        """Queue ``(key, (data, origin, sensor_id, arrival))`` payloads under one lock (a socket's drain)."""
        for victim in self._queue.put_many(items):
            self._dropped(victim)

    def _dropped(self, victim: Hashable) -> None:
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop()
        self._throttle.log(f"drop:{victim!r}", logging.WARNING, "intake queue full (%d payloads): "
                           "dropped the oldest of the busiest sender %r (%d dropped so far)",
                           self._queue.capacity, victim, self.dropped)

    def can_serve_now(self, n: int) -> bool:
        """True when ``n`` payloads just received may skip the queue (:meth:`serve_now`): nothing is
        queued before them, a block consumer takes them and they fit one block, so every one of them
        is served at once and there is nothing to be fair between."""
        return self._emit_block is not None and not self._queue and n <= _BLOCK_MAX

    def serve_now(self, payloads: list[Payload]) -> None:
        """Decode and emit ``payloads`` as one block without queueing them (see :meth:`can_serve_now`)."""
        self._handle_all(payloads)

    def serve_ready(self, limit: int = _BLOCK_MAX, budget_s: float | None = None) -> int:
        """Decode and emit up to ``limit`` payloads already queued (round robin); never waits.

        With ``emit_block`` they leave as one block; else chunk by chunk, and with ``budget_s`` no
        new one is started once that many seconds have passed (a slow consumer must not keep the
        caller from its socket). Returns how many were taken.
        """
        if self._emit_block is not None:
            ready = [item for _, item in self._queue.get_ready(limit)]
            if ready:
                self._handle_all(ready)
            return len(ready)
        deadline = None if budget_s is None else time.monotonic() + budget_s
        served = 0
        while served < limit and (deadline is None or time.monotonic() < deadline):
            got = self._queue.get_ready(1)
            if not got:
                break
            self._handle(got[0][1])
            served += 1
        return served

    def stop(self, timeout: float = 2.0) -> None:
        """Serve what is queued, then end the worker (bounded by ``timeout``)."""
        self._queue.close()
        if self._thread is None:
            deadline = time.monotonic() + timeout
            while self.serve_ready() and time.monotonic() < deadline:
                pass
            return
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
                self._handle_all([got[1], *(item for _, item in self._queue.get_ready(_BLOCK_MAX - 1))])

    def _handle(self, payload: Payload) -> None:
        data, origin, sensor_id, _ = payload
        try:
            self.intake.handle(data, origin=origin, sensor_id=sensor_id)
        except Exception as exc:  # the intake is total; this guards the worker against the unforeseen
            self._throttle.log(f"handle:{type(exc).__name__}", logging.ERROR, "handling a payload from "
                               "%s failed: %s", origin, exc, exc_info=True)

    def _handle_all(self, payloads: list[Payload]) -> None:
        """Decode ``payloads``; hand their chunks over as one block (one by one without ``emit_block``).

        Frames of many sensors arrive together (a gateway's burst, sensors in step), and one block
        lets the daemon window them in one numpy pass. Nothing waits for more frames to come.
        """
        emit_block = self._emit_block
        if emit_block is None:
            for payload in payloads:
                self._handle(payload)
            return
        chunks: list[SampleChunk] = []
        arrivals: list[float] = []
        for data, origin, sensor_id, arrival in payloads:
            try:
                chunk = self.intake.chunk_of(data, origin=origin, sensor_id=sensor_id)
            except Exception as exc:  # the intake is total; this guards the worker against the unforeseen
                self._throttle.log(f"handle:{type(exc).__name__}", logging.ERROR, "handling a payload from "
                                   "%s failed: %s", origin, exc, exc_info=True)
                continue
            if chunk is not None:
                chunks.append(chunk)
                arrivals.append(arrival)
        if chunks:
            emit_block(ChunkBlock([c.sensor_id for c in chunks], [c.samples for c in chunks],
                                  [c.sample_rate for c in chunks], [c.seq for c in chunks],
                                  [c.t0 for c in chunks], arrivals))


FAIR_DESCRIPTION = (
    "Payloads queued between receiving and decoding; the sensors are served in turn, and when the "
    "queue is full the oldest payload of the busiest sender is dropped (counted in "
    "drsn_edge_frames_dropped_total), so one flooding sender cannot starve the others."
)
