"""Every sensor of one model and window setting, windowed together: chunks in, blocks of windows out.

Each sensor's samples wait in its row of one ``(sensors, channels, capacity)`` float32 array (a
linear buffer per row: a window is never stitched from two pieces). A block of chunks (one per
sensor, from a source that delivers several at once) is handled with a few numpy operations for
all its sensors together: one finiteness check, one append per distinct fill level, one gather
that cuts every complete window into a ``(n, channels, window)`` array, one tail move. Python
work per chunk is then a handful of list operations instead of some thirty calls, and no object
is built per window (:class:`~runtime.window_block.WindowBlock` carries them as arrays).

What does not fit the common case goes through :meth:`WindowGroup.push_row`, the one-chunk path
with the full policy (see :mod:`runtime.windowing`): a sensor that is resampled, a multi-channel
chunk, a sequence-number jump (a gap restarts the window), a chunk with NaN/inf (counted,
dropped, the window restarted, a :class:`DataError` for that sensor only), a hop longer than
the window (samples to skip). Both paths share the per-row state, so a sensor moves between
them chunk by chunk.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from runtime.artifact import Normalization
from runtime.errors import DataError
from runtime.signals.normalize import normalize_windows
from runtime.signals.resample import StreamResampler
from runtime.window_block import WindowBlock

log = logging.getLogger("runtime.windowing")


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


#: blocks of fewer chunks than this take the one-chunk path row by row: a block of one or two
#: chunks (sensors that arrive staggered, as independent gateways do) cost 2-3x more per chunk on
#: the array path than row by row, and the two break even near four (64 sensors, chunks of 256)
SMALL_BLOCK = 4


class WindowGroup:
    """Per-sensor window state of sensors sharing (window, hop, channels, normalisation)."""

    def __init__(self, window: int, hop: int, channels: int, model_rate: float, normalization: Normalization,
                 normalize: bool, clock: Callable[[], float], wall_clock: Callable[[], float]) -> None:
        self.window, self.hop, self.channels, self.model_rate = window, hop, channels, float(model_rate)
        self.normalization, self.normalize = normalization, normalize
        self.clock, self.wall_clock = clock, wall_clock
        self._lock = threading.Lock()  # sensors of one model may be fed by several source threads
        #: grows whenever a row restarts (a gap, a bad chunk, a reset): its counts then changed
        self.incidents = 0
        self.sensor_ids: list[str] = []
        self.stats: list[WindowerStats] = []
        self._resamplers: list[StreamResampler | None] = []
        self._buf = np.empty((0, channels, 2 * window + hop), dtype=np.float32)
        self._rate = np.empty(0, dtype=np.float64)
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
            for name in ("_len", "_used", "_skip", "_next"):
                setattr(self, name, np.append(getattr(self, name), np.int64(0)))
            self._last_seq.append(None)
            self._plain = np.append(self._plain, resampler is None and self.channels == 1)
            return row

    # -- several sensors at once ------------------------------------------------------------

    def push_block(self, rows: Sequence[int], samples: Sequence[np.ndarray], seqs: Sequence[int | None],
                   t0s: Sequence[float | None]) -> tuple[list[WindowBlock], list[tuple[int, DataError]]]:
        """One chunk per row (rows distinct): the windows they completed, and each row's DataError.

        A row's bad chunk is counted and reported for that row; the other rows are windowed.
        """
        t_mono, t_wall_now = self.clock(), self.wall_clock()
        blocks: list[WindowBlock] = []
        errors: list[tuple[int, DataError]] = []
        with self._lock:
            fast, slow = self._split(rows, samples, seqs)
            for n, members in fast.items():
                rest = self._push_many(n, members, rows, samples, seqs, t0s, t_mono, t_wall_now, blocks)
                slow.extend(rest)
            for i in slow:
                try:
                    block = self._push_row(rows[i], samples[i], seqs[i], t0s[i], t_mono, t_wall_now)
                except DataError as exc:
                    errors.append((rows[i], exc))
                    continue
                if block is not None:
                    blocks.append(block)
        return blocks, errors

    def _split(self, rows: Sequence[int], samples: Sequence[np.ndarray],
               seqs: Sequence[int | None]) -> tuple[dict[int, list[int]], list[int]]:
        """Positions the block path takes, by chunk length, and those that need the one-chunk path
        (every position of a block smaller than :data:`SMALL_BLOCK`)."""
        if len(rows) < SMALL_BLOCK:
            return {}, list(range(len(rows)))
        r = np.fromiter(rows, dtype=np.intp, count=len(rows))
        ok = self._plain[r] & (self._skip[r] == 0)
        last = self._last_seq  # a sequence jump restarts the window: the one-chunk path
        in_step = [s is None or (prev := last[row]) is None or s == prev + 1
                   for row, s in zip(rows, seqs, strict=True)]
        nd, f32 = np.ndarray, np.dtype(np.float32)  # builtin dtypes are singletons: ``is`` compares them
        lengths = [x.size if type(x) is nd and x.ndim == 1 and x.dtype is f32 else 0 for x in samples]
        fast: dict[int, list[int]] = {}
        slow: list[int] = []
        first = lengths[0]
        if first and ok.all() and all(in_step) and lengths.count(first) == len(lengths):  # the usual block
            fast[first] = list(range(len(lengths)))
            return fast, slow
        for i, (good, step, n) in enumerate(zip(ok.tolist(), in_step, lengths, strict=True)):
            if good and step and n:
                fast.setdefault(n, []).append(i)
            else:
                slow.append(i)
        return fast, slow

    def _push_many(self, n: int, members: list[int], rows: Sequence[int], samples: Sequence[np.ndarray],
                   seqs: Sequence[int | None], t0s: Sequence[float | None], t_mono: float, t_wall_now: float,
                   out: list[WindowBlock]) -> list[int]:
        """The block path for chunks of ``n`` samples; returns the positions with NaN/inf (one-chunk path)."""
        r = np.array([rows[i] for i in members], dtype=np.intp)
        old = self._len[r]
        top = int(old.max()) + n
        if top > self._buf.shape[2]:
            self._grow(top)
        rows_sel, level = _rows(r), int(old[0])
        # steady state (every sensor in row order, all at one fill level): the chunks are copied
        # straight into the buffer; otherwise stacked first and appended per fill level below
        direct = isinstance(rows_sel, slice) and int(old.min()) == int(old.max())
        if direct:
            x = self._buf[rows_sel, 0, level:level + n]
            np.stack([samples[i] for i in members], out=x)
        else:
            x = np.concatenate([samples[i] for i in members]).reshape(len(members), n)
        bad: list[int] = []
        # one sum is finite only when every sample is (NaN and inf propagate); when it is not (a
        # bad sample, or a sum beyond float32), each row is checked exactly. A bad row's samples,
        # already in its buffer beyond what it holds, are overwritten by its next chunk
        if not math.isfinite(float(np.add.reduce(x, axis=None))) and not (
                finite := np.isfinite(x).all(axis=1)).all():
            bad = [members[j] for j in np.flatnonzero(~finite).tolist()]
            members = [members[j] for j in np.flatnonzero(finite).tolist()]
            if not members:
                return bad
            r, old, x = r[finite], old[finite], x[finite]
        seq = [seqs[i] for i in members]
        last = self._last_seq
        for row, s in zip(r.tolist(), seq, strict=True):
            if s is not None:
                last[row] = s
        need = old + n
        if not direct:
            for fill in np.unique(old).tolist():
                at = old == fill
                self._buf[r[at], 0, fill:fill + n] = x[at]
        self._len[r] = need
        ends = self._ends(members, r, n, t0s, t_wall_now)
        W, hop = self.window, self.hop
        counts = np.where(need >= W, (need - W) // hop + 1, 0)
        for st, c in zip([self.stats[i] for i in r.tolist()], counts.tolist(), strict=True):
            st.samples += n
            st.windows += c
        cutting = need[counts > 0]
        if cutting.size == need.size and need.min() == need.max():
            out.append(self._cut(r, int(need[0]), seq, ends, t_mono))
        else:
            for level in np.unique(cutting).tolist():
                at = need == level
                out.append(self._cut(r[at], level, [seq[j] for j in np.flatnonzero(at).tolist()], ends[at],
                                     t_mono))
        return bad

    def _ends(self, members: list[int], r: np.ndarray, n: int, t0s: Sequence[float | None],
              t_wall_now: float) -> np.ndarray:
        """Wall time of each chunk's last sample: from the sensor's own stamp, else the arrival."""
        t0 = [t0s[i] for i in members]
        if any(t is None for t in t0):
            return np.array([t_wall_now if t is None else t + (n - 1) / self._rate[ri]
                             for t, ri in zip(t0, r.tolist(), strict=True)], dtype=np.float64)
        ends: np.ndarray = np.array(t0, dtype=np.float64) + (n - 1) / self._rate[r]
        return ends

    def _cut(self, r: np.ndarray, level: int, seq: list[int | None], t_end: np.ndarray,
             t_mono: float) -> WindowBlock:
        """Every complete window of rows ``r`` (all holding ``level`` samples), then the tails moved."""
        W, hop, k = self.window, self.hop, r.size
        count = (level - W) // hop + 1
        steps = np.arange(count)
        buf = self._buf
        # every row's windows as a (sensors, count, channels, W) view; taking rows r copies them once
        s_row, s_chan, s_sample = buf.strides
        view = np.ndarray((buf.shape[0], count, self.channels, W), dtype=np.float32, buffer=buf,
                          strides=(s_row, s_sample * hop, s_chan, s_sample))
        rows = _rows(r)
        if isinstance(rows, slice):  # the usual block (every sensor, in order): a view, copied once below
            picked = view[rows]
            data = (normalize_windows(picked, self.normalization, out=np.empty(picked.shape, np.float32))
                    if self.normalize else picked.copy())
        else:
            data = view[r]  # a copy: normalised where it is
            if self.normalize:
                data = normalize_windows(data, self.normalization, out=data)
        data = data.reshape(k * count, self.channels, W)
        index = (self._next[r][:, None] + steps).ravel()
        self._next[r] += count
        first_end = t_end - (level - W) / self.model_rate
        t_wall = (first_end[:, None] + steps * (hop / self.model_rate)).ravel()
        names = self.sensor_ids
        ids = [names[i] for i in r.tolist() for _ in range(count)]
        consumed = count * hop
        rest = level - consumed
        if rest <= 0:
            self._skip[r] = -rest
            self._len[r] = self._used[r] = 0
        else:
            self._buf[rows, :, :rest] = self._buf[rows, :, consumed:level]
            self._len[r] = rest
            self._used[r] = min(max(W - hop, 0), rest)
        seqs = seq if count == 1 else [s for s in seq for _ in range(count)]
        return WindowBlock(ids, index, seqs, np.full(k * count, t_mono), t_wall, data, self.normalize)

    def _grow(self, need: int) -> None:
        """Widen every row's buffer (a chunk longer than the room left: rare, then never again)."""
        cap = self._buf.shape[2]
        grown = np.empty((self._buf.shape[0], self.channels, max(need, 2 * cap)), dtype=np.float32)
        grown[:, :, :cap] = self._buf
        self._buf = grown

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
        self._len[row] = self._used[row] = self._skip[row] = 0
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
        """Append model-rate samples, cut every complete window, keep the tail for the next chunk."""
        skip = int(self._skip[row])
        if skip:
            k = min(skip, y.shape[1])
            y, self._skip[row] = y[:, k:], skip - k
        length = int(self._len[row])
        need = length + y.shape[1]
        if need > self._buf.shape[2]:
            self._grow(need)
        self._buf[row, :, length:need] = y
        self._len[row] = need
        if need < self.window:
            return None
        count = (need - self.window) // self.hop + 1
        line = self._buf[row]
        c_stride, s_stride = line.strides
        # (count, channels, window) view into the row's linear buffer without copying
        view = np.ndarray((count, self.channels, self.window), dtype=np.float32, buffer=self._buf,
                          offset=row * self._buf.strides[0],
                          strides=(s_stride * self.hop, c_stride, s_stride))
        if self.normalize:
            data = normalize_windows(view, self.normalization)
            if self.normalization.kind == "none":
                data = data.copy()  # normalisation "none" returns the view; the buffer is about to move
        else:
            data = view.copy()  # raw: the batcher normalises the batch (the buffer is about to move)
        # wall time of each window's last sample, counted back from the chunk's last sample
        first_end = t_end - (need - self.window) / self.model_rate
        steps = np.arange(count)
        start = int(self._next[row])
        self._next[row] = start + count
        self.stats[row].windows += count
        self._consume(row, count * self.hop)
        return WindowBlock([self.sensor_ids[row]] * count, start + steps, [seq] * count,
                           np.full(count, t_mono), first_end + steps * (self.hop / self.model_rate), data,
                           self.normalize)

    def _consume(self, row: int, consumed: int) -> None:
        length = int(self._len[row])
        if consumed >= length:
            self._skip[row] = consumed - length
            self._len[row] = self._used[row] = 0
            return
        rest = length - consumed
        self._buf[row, :, :rest] = self._buf[row, :, consumed:length]
        self._len[row] = rest
        self._used[row] = min(max(self.window - self.hop, 0), rest)


def _rows(r: np.ndarray) -> slice | np.ndarray:
    """Rows ``r`` as a slice when they are consecutive and in order (views instead of copies)."""
    first, k = int(r[0]), r.size
    if int(r[-1]) - first + 1 == k and (k < 2 or bool((r[1:] > r[:-1]).all())):
        return slice(first, first + k)
    return r
