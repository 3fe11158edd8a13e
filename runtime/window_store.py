"""The rows of a window group: each sensor's buffered samples and counters, and the one-chunk path.

Each sensor's samples wait in its row of one ``(sensors, channels, capacity)`` float32 array (a
linear buffer per row: a window is never stitched from two pieces), beside per-row numpy
counters (where the held samples start, how many, how many are already in an emitted window,
samples to skip, next window index) that the block path (:mod:`runtime.window_group`) reads and
writes for many rows at once. The held samples move forward through the row as windows are cut
and only go back to the front when the next chunk would not fit behind them: with room for a few
windows, once every few chunks instead of after every chunk (the overlap of the windows, three
quarters of a window at the usual hop, is what moves).

The one-chunk path here (:meth:`WindowStore.push_row`) applies the full policy (see
:mod:`runtime.windowing`) to one sensor's chunk: a sensor that is resampled, a multi-channel
chunk, a sequence-number jump (a gap restarts the window), a chunk with NaN/inf (counted,
dropped, the window restarted, a :class:`DataError` for that sensor only), a hop longer than
the window (samples to skip). Both paths share the per-row state, so a sensor moves between
them chunk by chunk.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from runtime.artifact import Normalization
from runtime.errors import DataError
from runtime.signals.normalize import normalize_windows, sum_block
from runtime.signals.resample import StreamResampler
from runtime.window_block import WindowBlock

log = logging.getLogger("runtime.windowing")

#: a row's room, in windows (plus a hop): the held samples move back to the front about once every
#: (room - held) / chunk chunks (window 2048, hop 512, chunks of 1024: every 5th block). Four
#: windows moved them every 6th block but cost the replay RSS benchmark (python -m runtime.bench.rss,
#: 64 sensors) 140.3 MiB against 137.4 with two; three: 139.0 MiB (one run each; 135.7 at 494f34d)
_CAPACITY_WINDOWS = 3


@dataclass
class WindowerStats:
    """Running counts for one sensor, read by the daemon's metrics."""

    samples: int = 0
    windows: int = 0
    gaps: int = 0
    dropped_samples: int = 0
    bad_chunks: int = 0
    restarts: int = 0
    #: gaps and dropped samples already carried into the metrics (by the daemon's chunk router)
    gaps_reported: int = field(default=0, compare=False, repr=False)
    dropped_reported: int = field(default=0, compare=False, repr=False)


class WindowStore:
    """Per-sensor window state of sensors sharing (window, hop, channels, normalisation), and the
    one-chunk path; :class:`~runtime.window_group.WindowGroup` adds the block path on the same rows."""

    def __init__(self, window: int, hop: int, channels: int, model_rate: float, normalization: Normalization,
                 normalize: bool, clock: Callable[[], float], wall_clock: Callable[[], float], *,
                 rows_raw: bool = False) -> None:
        """``rows_raw``: the one-chunk path leaves its windows raw (``normalized`` False) even when
        ``normalize`` is set, for a consumer that normalises a whole batch in one call (the daemon's
        batcher): a network sensor's chunk brings one or two windows, and normalising them alone
        costs about as much as the rest of its windowing (nine numpy calls of a few us each)."""
        self.window, self.hop, self.channels, self.model_rate = window, hop, channels, float(model_rate)
        self.normalization, self.normalize = normalization, normalize
        #: overlapping windows' sums built from shared block sums (None: this window and hop cannot)
        self._sum_block = sum_block(window, hop) if normalization.kind == "zscore" else None
        self.rows_raw = rows_raw
        self.clock, self.wall_clock = clock, wall_clock
        self._lock = threading.Lock()  # sensors of one model may be fed by several source threads
        #: grows whenever a row restarts (a gap, a bad chunk, a reset): its counts then changed
        self.incidents = 0
        self.sensor_ids: list[str] = []
        self.stats: list[WindowerStats] = []
        self._resamplers: list[StreamResampler | None] = []
        self._buf = np.empty((0, channels, _CAPACITY_WINDOWS * window + hop), dtype=np.float32)
        self._rate = np.empty(0, dtype=np.float64)
        self._start = np.empty(0, dtype=np.int64)  # where the row's held samples start
        self._len = np.empty(0, dtype=np.int64)  # samples held in the row's buffer
        self._used = np.empty(0, dtype=np.int64)  # leading samples already part of an emitted window
        self._skip = np.empty(0, dtype=np.int64)  # samples still to discard when hop > window
        self._next = np.empty(0, dtype=np.int64)  # the row's next window index
        # per row: the last sequence number (None: none since the last reset); Python ints, as a
        # frame's counter is a uint64
        self._last_seq: list[int | None] = []
        self._plain = np.empty(0, dtype=bool)  # one channel, no resampling: the block path may take it

    @property
    def size(self) -> int:
        return len(self.sensor_ids)

    def add_sensor(self, sensor_id: str, sensor_rate: float, resampler: StreamResampler | None) -> int:
        """A new row for a sensor; returns its row number."""
        with self._lock:
            row = self.size
            self.sensor_ids.append(sensor_id)
            self.stats.append(WindowerStats())
            self._resamplers.append(resampler)
            grown = np.empty((row + 1, *self._buf.shape[1:]), dtype=np.float32)
            grown[:row] = self._buf
            self._buf = grown
            self._rate = np.append(self._rate, float(sensor_rate))
            for name in ("_start", "_len", "_used", "_skip", "_next"):
                setattr(self, name, np.append(getattr(self, name), np.int64(0)))
            self._last_seq.append(None)
            self._plain = np.append(self._plain, resampler is None and self.channels == 1)
            return row

    def _grow(self, need: int) -> None:
        """Widen every row's buffer (a chunk longer than the room left: rare, then never again)."""
        cap = self._buf.shape[2]
        grown = np.empty((self._buf.shape[0], self.channels, max(need, 2 * cap)), dtype=np.float32)
        grown[:, :, :cap] = self._buf
        self._buf = grown

    def _to_front(self, rows: int | slice | np.ndarray, start: int, length: int) -> None:
        """Move the held samples of ``rows`` (all at ``start``, ``length`` long) to the front."""
        if start:
            self._buf[rows, :, :length] = self._buf[rows, :, start:start + length]
            self._start[rows] = 0

    def _room_for(self, row: int, n: int) -> int:
        """Make room for ``n`` more samples behind the row's held ones; returns where they go."""
        start, length = int(self._start[row]), int(self._len[row])
        if start + length + n <= self._buf.shape[2]:
            return start + length
        self._to_front(row, start, length)
        if length + n > self._buf.shape[2]:
            self._grow(length + n)
        return length

    # -- one sensor -------------------------------------------------------------------------

    def push_row(self, row: int, samples: object, seq: int | None, t0: float | None) -> WindowBlock | None:
        """One chunk of one sensor (see :meth:`runtime.windowing.SensorWindower.push`)."""
        t_mono, t_wall_now = self.clock(), self.wall_clock()
        with self._lock:
            return self._push_row(row, samples, seq, t0, t_mono, t_wall_now)

    def _push_row(self, row: int, samples: object, seq: int | None, t0: float | None, t_mono: float,
                  t_wall_now: float) -> WindowBlock | None:
        try:
            x = self._as_channels(row, samples)
        except DataError:
            self._reject(row, 0)
            raise
        n = x.shape[1]
        if seq is not None:
            self._check_seq(row, int(seq), n)
        if n == 0:
            return None
        # one float64 sum is NaN/inf exactly when a sample is (it cannot overflow for float32 input)
        if not math.isfinite(float(np.add.reduce(x, axis=None, dtype=np.float64))):
            self._reject(row, n)
            raise DataError(
                f"sensor {self.sensor_ids[row]!r}: chunk of {n} samples contains NaN or inf; it was dropped "
                "and the window restarted. Check the sensor's wiring and its driver's overflow handling"
            )
        self.stats[row].samples += n
        t_end = t_wall_now if t0 is None else float(t0) + (n - 1) / float(self._rate[row])
        resampler = self._resamplers[row]
        y = x if resampler is None else resampler.process(x)
        return self._emit_row(row, y, None if seq is None else int(seq), t_mono, t_end)

    def _as_channels(self, row: int, samples: object) -> np.ndarray:
        """Return the chunk as float32 of shape (channels, n)."""
        try:
            a: np.ndarray = np.asarray(samples, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(f"sensor {self.sensor_ids[row]!r}: samples are not numbers ({exc})") from exc
        if a.ndim == 1 and self.channels == 1:
            return a.reshape(1, -1)
        if a.ndim == 2 and a.shape[1] == self.channels:
            by_channel: np.ndarray = a.T
            return by_channel
        raise DataError(
            f"sensor {self.sensor_ids[row]!r}: samples of shape {a.shape} do not fit the model's "
            f"{self.channels} channel(s); send shape (n,) for one channel or (n, {self.channels})"
        )

    def _reject(self, row: int, n: int) -> None:
        """Count an unusable chunk of ``n`` samples; the stream now has a hole, so restart."""
        self.stats[row].bad_chunks += 1
        self.stats[row].dropped_samples += n
        self.restart(row)

    def _check_seq(self, row: int, seq: int, n: int) -> None:
        last = self._last_seq[row]
        self._last_seq[row] = seq
        if last is None or seq == last + 1:
            return
        missing = max(seq - last - 1, 0) * n  # estimate: the lost messages were the size of this one
        self.stats[row].gaps += 1
        self.stats[row].dropped_samples += missing
        log.warning("sensor %s: sequence jumped from %d to %d (~%d samples lost); window restarted",
                    self.sensor_ids[row], last, seq, missing)
        self.restart(row)

    def restart(self, row: int) -> None:
        """Forget the row's buffered samples (counted as dropped); its next window starts afresh."""
        self.incidents += 1
        unused = max(int(self._len[row]) - int(self._used[row]), 0)
        self.stats[row].dropped_samples += round(unused * float(self._rate[row]) / self.model_rate)
        self.stats[row].restarts += 1
        self._len[row] = self._used[row] = self._skip[row] = self._start[row] = 0
        resampler = self._resamplers[row]
        if resampler is not None:
            resampler.reset()

    def reset(self, row: int) -> None:
        """Forget buffered samples and the last sequence number (a source reconnected)."""
        with self._lock:
            self.restart(row)
            self._last_seq[row] = None

    def _emit_row(self, row: int, y: np.ndarray, seq: int | None, t_mono: float,
                  t_end: float) -> WindowBlock | None:
        """Append model-rate samples, cut every complete window, keep the tail for the next chunk.

        Runs once per chunk of a network sensor (one or two windows each), so it reads and writes
        each row counter once and builds the window block's few numbers in Python, not numpy.
        """
        skip = int(self._skip[row])
        if skip:
            k = min(skip, y.shape[1])
            y, self._skip[row] = y[:, k:], skip - k
        length = int(self._len[row])
        need = length + y.shape[1]
        at = self._room_for(row, y.shape[1])
        start = at - length
        buf = self._buf
        line = buf[row]  # (channels, capacity): a view of the row
        line[:, at:at + y.shape[1]] = y
        W, hop = self.window, self.hop
        if need < W:
            self._len[row] = need
            return None
        count = (need - W) // hop + 1
        c_stride, s_stride = line.strides
        # (count, channels, window) view into the row's linear buffer without copying
        view = np.ndarray((count, self.channels, W), dtype=np.float32, buffer=buf,
                          offset=row * buf.strides[0] + start * s_stride,
                          strides=(s_stride * hop, c_stride, s_stride))
        normalize = self.normalize and not self.rows_raw
        if normalize:
            data = normalize_windows(view, self.normalization)
            if self.normalization.kind == "none":
                data = data.copy()  # normalisation "none" returns the view; the buffer is about to move
        else:
            data = view.copy()  # raw: the batcher normalises the batch (the buffer is about to move)
        self._consume(row, need, count * hop)
        start = int(self._next[row])
        self._next[row] = start + count
        self.stats[row].windows += count
        # wall time of each window's last sample, counted back from the chunk's last sample
        first_end = t_end - (need - W) / self.model_rate
        step = hop / self.model_rate
        return WindowBlock([self.sensor_ids[row]] * count, np.arange(start, start + count, dtype=np.int64),
                           [seq] * count, np.array([t_mono] * count, dtype=np.float64),
                           np.array([first_end + k * step for k in range(count)], dtype=np.float64), data,
                           normalize)

    def _consume(self, row: int, length: int, consumed: int) -> None:
        """Drop the ``consumed`` leading samples of the row's ``length``: the rest now starts there."""
        if consumed >= length:
            self._skip[row] = consumed - length
            self._len[row] = self._used[row] = self._start[row] = 0
            return
        rest = length - consumed
        self._start[row] += consumed
        self._len[row] = rest
        self._used[row] = min(max(self.window - self.hop, 0), rest)
