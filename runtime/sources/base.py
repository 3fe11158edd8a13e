"""What every sample source gives the daemon: chunks of one sensor's samples, on a thread of its own.

A source reads one kind of input (a simulator, a file, an MQTT topic, a UDP port) and may serve
many sensors. The daemon only sees this interface:

* :attr:`Source.sensors` -- ``{sensor_id: sample_rate}``, known before :meth:`Source.start`, so
  every sensor can be checked against its model before anything runs;
* :meth:`Source.start` ``(emit, on_error)`` -- spawns the source's thread; ``emit`` receives
  :class:`SampleChunk` objects, ``on_error`` receives ``(sensor_id, exception)`` for every problem
  the source survives (a malformed payload, an unreadable chunk). ``sensor_id`` is
  :data:`SOURCE_WIDE` when no single configured sensor is to blame;
* :meth:`Source.stop` -- stops the thread and releases sockets and connections;
* :attr:`Source.finished` -- set when the source will produce nothing more on its own: a finite
  source reached its end, or its thread failed and the source does not restart.

No source thread dies silently: when :meth:`Source._run` raises, the failure is logged and
reported through ``on_error`` (as a :class:`SourceFailedError`), counted in :attr:`Source.restarts`,
and the input is opened again after a back-off that doubles per failure in a row (0.5 s up to
30 s), so one bad datagram or a dropped socket costs seconds of data, not the rest of the run.
Finite sources whose restart would repeat data (a replay) set :attr:`Source.restartable` False.

Both callbacks run on the source's thread (or the MQTT client's network thread), so they must
be thread-safe and quick. In "as fast as possible" modes ``emit`` may block to push back.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

import numpy as np

from runtime.config_base import StrictModel
from runtime.errors import DataError, DrsnEdgeError
from runtime.log_throttle import LogThrottle

log = logging.getLogger(__name__)

#: ``on_error``'s sensor id for problems no configured sensor can be blamed for
SOURCE_WIDE = "*"
#: back-off before restarting a failed source: doubled per failure in a row, from min to max
RESTART_MIN_S = 0.5
RESTART_MAX_S = 30.0
#: a source that ran this long before failing starts its back-off from the minimum again
RESTART_RESET_S = 60.0


class SourceFailedError(DrsnEdgeError):
    """A source's thread failed; it is restarted (or finished, for sources that cannot restart)."""


@dataclass(frozen=True, slots=True)
class SampleChunk:
    """Consecutive samples of one sensor.

    ``seq`` counts this sensor's chunks (+1 per chunk); a jump tells the windower that chunks
    were lost, so it never cuts a window across the gap. ``t0`` is the wall-clock (Unix) time of
    the first sample.
    """

    sensor_id: str
    samples: np.ndarray
    sample_rate: float
    seq: int
    t0: float

    def __post_init__(self) -> None:
        x = np.asarray(self.samples)
        if x.ndim != 1:
            raise DataError(
                f"sensor {self.sensor_id!r}: a chunk holds a 1-D array of samples, got shape {x.shape}"
            )
        if x.dtype != np.float32:
            object.__setattr__(self, "samples", x.astype(np.float32))

    @property
    def duration(self) -> float:
        """Seconds of signal in this chunk."""
        return float(self.samples.size) / self.sample_rate


@dataclass(frozen=True, slots=True)
class ChunkBlock:
    """Chunks of several sensors that arrived together, as parallel lists (row ``i``: one chunk).

    Sources that can (a replay of many files, the simulator, a network source that drains every
    frame waiting) hand the daemon a block per call, so that it windows every sensor of the block
    in one set of numpy operations instead of one chunk at a time. ``samples`` are 1-D float32: a
    list of them, or (chunks of one length read together, as a replay of stacked recordings reads
    them) one 2-D float32 array whose rows are the chunks, which the windowing copies in one go.
    ``arrivals``: when each chunk reached this host (``time.monotonic()``; a UDP source reads the
    kernel's receive stamp), so latency counts the time a datagram waited in the socket for a busy
    daemon; None: the daemon stamps the block when it windows it. ``finite``: the source vouches
    that no sample is NaN or inf (a replay checks its recordings once when it loads them), so the
    windowing skips its own check.
    """

    sensor_ids: list[str]
    samples: list[np.ndarray] | np.ndarray
    sample_rates: list[float]
    seqs: list[int]
    t0s: list[float]
    arrivals: list[float] | None = None
    finite: bool = False

    @property
    def size(self) -> int:
        return len(self.sensor_ids)

    def chunks(self) -> list[SampleChunk]:
        """The block as one :class:`SampleChunk` per row, for consumers that take chunks one by one."""
        return [SampleChunk(*row) for row in zip(self.sensor_ids, self.samples, self.sample_rates, self.seqs,
                                                 self.t0s, strict=True)]


EmitFn = Callable[[SampleChunk], None]
#: receives a block of chunks (:meth:`Source.start`'s ``emit_block``)
BlockFn = Callable[[ChunkBlock], None]
ErrorFn = Callable[[str, Exception], None]
ConfigT = TypeVar("ConfigT", bound=StrictModel)


class Source(abc.ABC, Generic[ConfigT]):
    """A thread that turns one input into :class:`SampleChunk` objects.

    Subclasses implement :attr:`sensors` and :meth:`_run`; they may override :meth:`_open`
    (runs in the caller's thread inside :meth:`start`, so a port already in use fails loudly
    there) and :meth:`_interrupt` (wakes a blocking :meth:`_run` on :meth:`stop`).
    """

    #: key in :data:`runtime.sources.SOURCES` and the config's ``type``
    type: ClassVar[str] = ""
    #: False for sources whose restart would repeat data already delivered
    restartable: ClassVar[bool] = True

    def __init__(self, config: ConfigT) -> None:
        self.config = config
        self.finished = threading.Event()
        #: times the thread failed and was restarted (read by the daemon for its metrics)
        self.restarts = 0
        #: payloads dropped unread because a flooding sender filled the intake queue (network sources)
        self.frames_dropped = 0
        self._throttle = LogThrottle(log)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._emit_fn: EmitFn | None = None
        self._block_fn: BlockFn | None = None
        self._error_fn: ErrorFn | None = None

    @property
    @abc.abstractmethod
    def sensors(self) -> dict[str, float]:
        """``{sensor_id: sample_rate}`` of every sensor this source serves."""

    @property
    def running(self) -> bool:
        """True while the source's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, emit: EmitFn, on_error: ErrorFn, emit_block: BlockFn | None = None) -> None:
        """Open the input and start the thread; raises if the input cannot be opened.

        ``emit_block``: where a source that delivers several sensors' chunks at once sends them
        (:class:`ChunkBlock`); without it, every chunk goes to ``emit`` one by one.
        """
        if self._thread is not None:
            raise RuntimeError(f"{self.type} source was already started; create a new source to run again")
        self._emit_fn, self._error_fn, self._block_fn = emit, on_error, emit_block
        self._open()
        self._thread = threading.Thread(target=self._thread_main, name=f"source-{self.type}", daemon=True)
        self._thread.start()
        log.info("%s source started for sensors %s", self.type, sorted(self.sensors))

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end, wake it, and wait up to ``timeout`` seconds. Idempotent."""
        self._stopping.set()
        self._interrupt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s source did not stop within %.1f s", self.type, timeout)

    def _open(self) -> None:
        """Acquire the input before the thread starts (default: nothing to acquire)."""

    def _interrupt(self) -> None:
        """Wake a :meth:`_run` blocked on I/O (default: it polls the stop event)."""

    @abc.abstractmethod
    def _run(self) -> None:
        """The thread body: produce chunks until the input ends or :attr:`_stopping` is set.

        Set :attr:`finished` when a finite input is exhausted; release what :meth:`_open`
        acquired before returning.
        """

    def _thread_main(self) -> None:
        """Run, and after a failure report it and open the input again, with back-off."""
        delay = RESTART_MIN_S
        while True:
            started = time.monotonic()
            try:
                self._run()
                return
            except Exception as exc:
                if self._stopping.is_set():
                    log.debug("%s source ended while stopping: %s", self.type, exc)
                    return
                failure = exc
            if time.monotonic() - started > RESTART_RESET_S:
                delay = RESTART_MIN_S
            if not self._recover(failure, delay):
                return
            delay = min(2 * delay, RESTART_MAX_S)

    def _recover(self, exc: Exception, delay: float) -> bool:
        """Report a failure, wait ``delay`` and reopen the input; False when the thread should end."""
        what = f"{type(exc).__name__}: {str(exc)[:300]}"
        if not self.restartable:
            log.error("%s source failed (%s); it produces no more samples", self.type, what, exc_info=exc)
            self._report(SOURCE_WIDE, SourceFailedError(
                f"{self.type} source failed ({what}); it has stopped"))
            self.finished.set()
            return False
        while True:
            self.restarts += 1
            log.error("%s source failed (%s); restart %d in %.1f s", self.type, what, self.restarts, delay,
                      exc_info=exc if self.restarts == 1 else None)
            self._report(SOURCE_WIDE, SourceFailedError(
                f"{self.type} source failed ({what}); restarting in {delay:.1f} s (restart {self.restarts})"))
            if self._stopping.wait(delay):
                return False
            try:
                self._open()
                log.info("%s source restarted", self.type)
                return True
            except Exception as reopen:  # the port may still be taken, the broker still down
                what = f"reopening failed: {type(reopen).__name__}: {str(reopen)[:300]}"
                delay = min(2 * delay, RESTART_MAX_S)

    def _emit(self, chunk: SampleChunk) -> None:
        """Hand a chunk to the daemon; a failing consumer is reported, never fatal to the source."""
        if self._emit_fn is None:
            return
        try:
            self._emit_fn(chunk)
        except Exception as exc:
            self._throttle.log(f"emit:{chunk.sensor_id}:{type(exc).__name__}", logging.ERROR,
                               "consumer rejected a chunk of sensor %s: %s", chunk.sensor_id, exc,
                               exc_info=True)
            self._report(chunk.sensor_id, exc)

    def _emit_block(self, block: ChunkBlock) -> None:
        """Hand several chunks to the daemon at once (one by one when it takes no blocks)."""
        if self._block_fn is None:
            for chunk in block.chunks():
                self._emit(chunk)
            return
        try:
            self._block_fn(block)
        except Exception as exc:
            self._throttle.log(f"emit_block:{type(exc).__name__}", logging.ERROR,
                               "consumer rejected a block of %d chunks (sensors %s): %s", block.size,
                               ", ".join(sorted(set(block.sensor_ids))[:8]), exc, exc_info=True)
            for sensor_id in dict.fromkeys(block.sensor_ids):
                self._report(sensor_id, exc)

    def _count_drop(self) -> None:
        """One payload dropped unread by a flooded intake queue (see :mod:`runtime.sources.fair`)."""
        self.frames_dropped += 1

    def _report(self, sensor_id: str, exc: Exception) -> None:
        """Pass a survivable error to ``on_error``; errors in the handler itself are only logged."""
        log.debug("%s source: sensor %s: %s", self.type, sensor_id, exc)
        if self._error_fn is None:
            return
        try:
            self._error_fn(sensor_id, exc)
        except Exception as handler_exc:
            self._throttle.log(f"on_error:{sensor_id}", logging.ERROR, "on_error handler failed for sensor "
                               "%s: %s", sensor_id, handler_exc, exc_info=True)
