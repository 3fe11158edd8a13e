"""Every sensor of one model and window setting, windowed together: chunks in, blocks of windows out.

The rows (each sensor's buffer and counters, and the one-chunk path) live in
:class:`~runtime.window_store.WindowStore`; this module is the block path over them. A block of
chunks (one per sensor, from a source that delivers several at once) is handled with a few numpy
operations for all its sensors together: one finiteness check, one append per distinct fill
level, one gather that cuts every complete window into a ``(n, channels, window)`` array, one
tail move. Python work per chunk is then a handful of list operations instead of some thirty
calls, and no object is built per window (:class:`~runtime.window_block.WindowBlock` carries
them as arrays).

What does not fit the common case goes through :meth:`WindowStore.push_row`, the one-chunk path
with the full policy (see :mod:`runtime.windowing`): a sensor that is resampled, a multi-channel
chunk, a sequence-number jump, a chunk with NaN/inf, a hop longer than the window, and every
chunk of a block too small for the array path's fixed cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from runtime.errors import DataError
from runtime.signals.normalize import normalize_windows
from runtime.window_block import WindowBlock
from runtime.window_store import WindowerStats, WindowStore

__all__ = ["SMALL_BLOCK", "WindowGroup", "WindowerStats"]

#: blocks of fewer chunks than this take the one-chunk path row by row: a block of one or two
#: chunks (sensors that arrive staggered, as independent gateways do) cost 2-3x more per chunk on
#: the array path than row by row, and the two break even near four (64 sensors, chunks of 256)
SMALL_BLOCK = 4


class WindowGroup(WindowStore):
    """Per-sensor window state of sensors sharing (window, hop, channels, normalisation), windowed
    a block of sensors at a time."""

    def push_block(self, rows: Sequence[int], samples: Sequence[np.ndarray], seqs: Sequence[int | None],
                   t0s: Sequence[float | None], arrivals: Sequence[float] | None = None
                   ) -> tuple[list[WindowBlock], list[tuple[int, DataError]]]:
        """One chunk per row (rows distinct): the windows they completed, and each row's DataError.

        A row's bad chunk is counted and reported for that row; the other rows are windowed.
        ``arrivals``: each chunk's monotonic receipt time (a network source's socket stamp), which
        becomes its windows' ``t_mono``; without them every window gets the time of this call.
        """
        now, t_wall_now = self.clock(), self.wall_clock()
        times = None if arrivals is None else np.asarray(arrivals, dtype=np.float64)
        blocks: list[WindowBlock] = []
        errors: list[tuple[int, DataError]] = []
        with self._lock:
            fast, slow = self._split(rows, samples, seqs)
            for n, members in fast.items():
                rest = self._push_many(n, members, rows, samples, seqs, t0s,
                                       now if times is None else times[members], t_wall_now, blocks)
                slow.extend(rest)
            for i in slow:
                try:
                    block = self._push_row(rows[i], samples[i], seqs[i], t0s[i],
                                           now if arrivals is None else float(arrivals[i]), t_wall_now)
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
                   seqs: Sequence[int | None], t0s: Sequence[float | None], t_mono: float | np.ndarray,
                   t_wall_now: float, out: list[WindowBlock]) -> list[int]:
        """The block path for chunks of ``n`` samples; returns the positions with NaN/inf (one-chunk path).

        ``t_mono``: one receipt time for all, or one per member."""
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
            if isinstance(t_mono, np.ndarray):
                t_mono = t_mono[finite]
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
                                     t_mono[at] if isinstance(t_mono, np.ndarray) else t_mono))
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
             t_mono: float | np.ndarray) -> WindowBlock:
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
        t_monos = np.repeat(t_mono, count) if isinstance(t_mono, np.ndarray) else np.full(k * count, t_mono)
        return WindowBlock(ids, index, seqs, t_monos, t_wall, data, self.normalize)

def _rows(r: np.ndarray) -> slice | np.ndarray:
    """Rows ``r`` as a slice when they are consecutive and in order (views instead of copies)."""
    first, k = int(r[0]), r.size
    if int(r[-1]) - first + 1 == k and (k < 2 or bool((r[1:] > r[:-1]).all())):
        return slice(first, first + k)
    return r
