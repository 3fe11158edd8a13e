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
from itertools import chain
from operator import itemgetter
from typing import TypeVar, cast

import numpy as np

from runtime.errors import DataError
from runtime.signals.normalize import normalize_windows, overlapping_sums
from runtime.window_block import WindowBlock
from runtime.window_store import WindowerStats, WindowStore

__all__ = ["SMALL_BLOCK", "WindowGroup", "WindowerStats"]

#: windows in a cut from which their sums are built from shared blocks: below, the few extra numpy
#: calls (about 10 us) cost more than summing each window whole (a block of two or three network
#: sensors' chunks in real time)
SHARED_SUMS_FROM = 32

T = TypeVar("T")

#: blocks of fewer chunks than this take the one-chunk path row by row: a block of one or two
#: chunks (sensors that arrive staggered, as independent gateways do) cost 2-3x more per chunk on
#: the array path than row by row, and the two break even near four (64 sensors, chunks of 256)
SMALL_BLOCK = 4


class WindowGroup(WindowStore):
    """Per-sensor window state of sensors sharing (window, hop, channels, normalisation), windowed
    a block of sensors at a time."""

    def push_block(self, rows: Sequence[int], samples: Sequence[np.ndarray] | np.ndarray,
                   seqs: Sequence[int | None], t0s: Sequence[float | None],
                   arrivals: Sequence[float] | None = None, *, finite: bool = False
                   ) -> tuple[list[WindowBlock], list[tuple[int, DataError]]]:
        """One chunk per row (rows distinct): the windows they completed, and each row's DataError.

        ``samples``: one 1-D array per row, or one 2-D array whose rows are the chunks (copied into
        the buffer in one go). A row's bad chunk is counted and reported for that row; the other
        rows are windowed. ``arrivals``: each chunk's monotonic receipt time (a network source's
        socket stamp), which becomes its windows' ``t_mono``; without them every window gets the
        time of this call. ``finite``: the caller vouches that no sample is NaN or inf (a replay
        checked its recordings once when it loaded them), so the block path skips its check.
        """
        now, t_wall_now = self.clock(), self.wall_clock()
        times = None if arrivals is None else np.asarray(arrivals, dtype=np.float64)
        blocks: list[WindowBlock] = []
        errors: list[tuple[int, DataError]] = []
        with self._lock:
            fast, slow = self._split(rows, samples, seqs)
            for n, members in fast.items():
                rest = self._push_many(n, members, rows, samples, seqs, t0s,
                                       now if times is None else times[members], t_wall_now, blocks, finite)
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

    def _split(self, rows: Sequence[int], samples: Sequence[np.ndarray] | np.ndarray,
               seqs: Sequence[int | None]) -> tuple[dict[int, list[int]], list[int]]:
        """Positions the block path takes, by chunk length, and those that need the one-chunk path
        (every position of a block smaller than :data:`SMALL_BLOCK`)."""
        k = len(rows)
        if k < SMALL_BLOCK:
            return {}, list(range(k))
        r = np.fromiter(rows, dtype=np.intp, count=k)
        ok = self._plain[r] & (self._skip[r] == 0)
        in_step = self._in_step_each(rows, seqs)
        nd, f32 = np.ndarray, np.dtype(np.float32)  # builtin dtypes are singletons: ``is`` compares them
        if type(samples) is nd:  # one 2-D array: every chunk of one length
            n = samples.shape[1] if samples.ndim == 2 and samples.dtype is f32 else 0
            lengths = [n] * k
        else:
            lengths = [x.size if type(x) is nd and x.ndim == 1 and x.dtype is f32 else 0 for x in samples]
        fast: dict[int, list[int]] = {}
        slow: list[int] = []
        first = lengths[0]
        if first and ok.all() and in_step is None and lengths.count(first) == k:  # the usual block
            fast[first] = list(range(k))
            return fast, slow
        steps = [True] * k if in_step is None else in_step
        for i, (good, step, n) in enumerate(zip(ok.tolist(), steps, lengths, strict=True)):
            if good and step and n:
                fast.setdefault(n, []).append(i)
            else:
                slow.append(i)
        return fast, slow

    def _in_step_each(self, rows: Sequence[int], seqs: Sequence[int | None]) -> list[bool] | None:
        """None when every chunk follows its row's last one (or its row has no sequence number yet),
        else whether each does; a sequence jump restarts the window, on the one-chunk path."""
        last, k = self._last_seq, len(rows)
        s0 = seqs[0]
        if s0 is not None and seqs.count(s0) == k:  # one cohort's block: every chunk has one number
            prev = itemgetter(*rows)(last) if k > 1 else (last[rows[0]],)
            if prev.count(s0 - 1) + prev.count(None) == k:
                return None
        return [s is None or (p := last[row]) is None or s == p + 1
                for row, s in zip(rows, seqs, strict=True)]

    def _push_many(self, n: int, members: list[int], rows: Sequence[int],
                   samples: Sequence[np.ndarray] | np.ndarray, seqs: Sequence[int | None],
                   t0s: Sequence[float | None], t_mono: float | np.ndarray, t_wall_now: float,
                   out: list[WindowBlock], finite: bool = False) -> list[int]:
        """The block path for chunks of ``n`` samples; returns the positions with NaN/inf (one-chunk path).

        ``t_mono``: one receipt time for all, or one per member. ``finite``: no sample is NaN/inf
        (the caller checked), so the check is skipped."""
        r = np.array([rows[i] for i in members], dtype=np.intp)
        rows_sel = _rows(r)
        old, start = self._len[r], self._start[r]
        held_lo, held_hi, at_lo, at_hi = int(old.min()), int(old.max()), int(start.min()), int(start.max())
        if at_hi + held_hi + n > self._buf.shape[2]:  # (maybe early for some rows: a move they need soon)
            self._make_room(r, rows_sel, n)
            start = self._start[r]
            at_lo, at_hi = int(start.min()), int(start.max())
        level = int(old[0])
        # steady state (every sensor in row order, all at one fill level and start): the chunks are
        # copied straight into the buffer; otherwise stacked first and appended per fill level below
        alike = held_lo == held_hi and at_lo == at_hi
        direct = alike and isinstance(rows_sel, slice)
        whole = type(samples) is np.ndarray and len(members) == len(samples)  # a 2-D block, every row
        if direct:
            at = int(start[0]) + level
            x = self._buf[rows_sel, 0, at:at + n]
            if whole:
                np.copyto(x, samples)
            else:
                np.stack([samples[i] for i in members], out=x)
        elif whole:
            x = np.array(samples, dtype=np.float32)
        else:
            x = np.concatenate([samples[i] for i in members]).reshape(len(members), n)
        bad: list[int] = []
        # one sum is finite only when every sample is (NaN and inf propagate); when it is not (a
        # bad sample, or a sum beyond float32), each row is checked exactly. A bad row's samples,
        # already in its buffer beyond what it holds, are overwritten by its next chunk
        if not finite and not math.isfinite(float(np.add.reduce(x, axis=None))) and not (
                good := np.isfinite(x).all(axis=1)).all():
            bad = [members[j] for j in np.flatnonzero(~good).tolist()]
            members = [members[j] for j in np.flatnonzero(good).tolist()]
            if not members:
                return bad
            r, old, start, x = r[good], old[good], start[good], x[good]
            if isinstance(t_mono, np.ndarray):
                t_mono = t_mono[good]
        seq = list(seqs) if len(members) == len(seqs) else [seqs[i] for i in members]
        last = self._last_seq
        if isinstance(sel := _rows(r), slice) and None not in seq:
            last[sel] = seq
        else:
            for row, s in zip(r.tolist(), seq, strict=True):
                if s is not None:
                    last[row] = s
        need = old + n
        if not direct:
            tails = start + old
            for fill in np.unique(tails).tolist():
                at = tails == fill
                self._buf[r[at], 0, fill:fill + n] = x[at]
        self._len[r] = need
        ends = self._ends(members, r, n, t0s, t_wall_now)
        W, hop = self.window, self.hop
        counts = np.where(need >= W, (need - W) // hop + 1, 0)
        for st, c in zip([self.stats[i] for i in r.tolist()], counts.tolist(), strict=True):
            st.samples += n
            st.windows += c
        cutting = counts > 0
        if alike and cutting.all():  # (rows dropped for NaN leave the others alike)
            out.append(self._cut(r, int(need[0]), int(start[0]), seq, ends, t_mono))
        else:  # a cut per (start, fill level): each is one strided view
            key = start * (self._buf.shape[2] + 1) + need
            for k in np.unique(key[cutting]).tolist():
                at = key == k
                first = int(np.flatnonzero(at)[0])
                out.append(self._cut(r[at], int(need[first]), int(start[first]),
                                     [seq[j] for j in np.flatnonzero(at).tolist()], ends[at],
                                     t_mono[at] if isinstance(t_mono, np.ndarray) else t_mono))
        return bad

    def _make_room(self, r: np.ndarray, rows_sel: slice | np.ndarray, n: int) -> None:
        """Move the held samples of rows ``r`` to the front (about once every few chunks), so that
        ``n`` more fit behind them; widen the buffer if even that is not enough."""
        start, length = self._start[r], self._len[r]
        if int(start.min()) == int(start.max()) and int(length.min()) == int(length.max()):
            self._to_front(rows_sel, int(start[0]), int(length[0]))  # rows in lockstep: one copy
        else:
            for row, s, held in zip(r.tolist(), start.tolist(), length.tolist(), strict=True):
                self._to_front(row, s, held)
        top = int(length.max()) + n
        if top > self._buf.shape[2]:
            self._grow(top)

    def _ends(self, members: list[int], r: np.ndarray, n: int, t0s: Sequence[float | None],
              t_wall_now: float) -> np.ndarray:
        """Wall time of each chunk's last sample: from the sensor's own stamp, else the arrival."""
        t0 = list(t0s) if len(members) == len(t0s) else [t0s[i] for i in members]
        if None in t0:
            return np.array([t_wall_now if t is None else t + (n - 1) / self._rate[ri]
                             for t, ri in zip(t0, r.tolist(), strict=True)], dtype=np.float64)
        ends: np.ndarray = np.array(t0, dtype=np.float64) + (n - 1) / self._rate[r]
        return ends

    def _cut(self, r: np.ndarray, level: int, start: int, seq: list[int | None], t_end: np.ndarray,
             t_mono: float | np.ndarray) -> WindowBlock:
        """Every complete window of rows ``r`` (all holding ``level`` samples from ``start``), then
        what the next windows need kept (from where it is)."""
        W, hop, k = self.window, self.hop, r.size
        count = (level - W) // hop + 1
        steps = np.arange(count)
        buf = self._buf
        # every row's windows as a (sensors, count, channels, W) view; taking rows r copies them once
        s_row, s_chan, s_sample = buf.strides
        view = np.ndarray((buf.shape[0], count, self.channels, W), dtype=np.float32, buffer=buf,
                          offset=start * s_sample, strides=(s_row, s_sample * hop, s_chan, s_sample))
        rows = _rows(r)
        shared = self.normalize and count > 1 and k * count >= SHARED_SUMS_FROM and self._sum_block
        sums = self._sums(rows, start, count) if shared else None
        if isinstance(rows, slice):  # the usual block (every sensor, in order): a view, copied once below
            picked = view[rows]
            data = (normalize_windows(picked, self.normalization, out=np.empty(picked.shape, np.float32),
                                      sums=sums) if self.normalize else picked.copy())
        else:
            data = view[r]  # a copy: normalised where it is
            if self.normalize:
                data = normalize_windows(data, self.normalization, out=data, sums=sums)
        data = data.reshape(k * count, self.channels, W)
        index = (self._next[r][:, None] + steps).ravel()
        self._next[r] += count
        first_end = t_end - (level - W) / self.model_rate
        t_wall = (first_end[:, None] + steps * (hop / self.model_rate)).ravel()
        names = self.sensor_ids
        part = names[rows] if isinstance(rows, slice) else [names[i] for i in r.tolist()]
        ids = part if count == 1 else _repeat_each(part, count)
        consumed = count * hop
        rest = level - consumed
        if rest <= 0:
            self._skip[r] = -rest
            self._len[r] = self._used[r] = self._start[r] = 0
        else:  # the rest stays where it is, now the start of what the rows hold
            self._start[r] = start + consumed
            self._len[r] = rest
            self._used[r] = min(max(W - hop, 0), rest)
        if count == 1:
            seqs = seq
        elif seq.count(seq[0]) == k:  # one cohort's block: one sequence number
            seqs = [seq[0]] * (k * count)
        else:
            seqs = _repeat_each(seq, count)
        t_monos = np.repeat(t_mono, count) if isinstance(t_mono, np.ndarray) else np.full(k * count, t_mono)
        return WindowBlock(ids, index, seqs, t_monos, t_wall, data, self.normalize)

    def _sums(self, rows: slice | np.ndarray, start: int, count: int) -> np.ndarray:
        """The sums of ``count`` overlapping windows of ``rows`` from ``start``, each sample summed once
        (:func:`~runtime.signals.normalize.sum_block`: the bits ``np.add.reduce`` gives per window)."""
        b, W, hop = cast(int, self._sum_block), self.window, self.hop
        buf = self._buf
        s_row, s_chan, s_sample = buf.strides
        shape = (buf.shape[0], (W + (count - 1) * hop) // b, self.channels, b)
        blocks = np.ndarray(shape, dtype=np.float32, buffer=buf, offset=start * s_sample,
                            strides=(s_row, s_sample * b, s_chan, s_sample))
        return overlapping_sums(np.add.reduce(blocks[rows], axis=-1), count, W // b, hop // b)


def _repeat_each(items: list[T], count: int) -> list[T]:
    """Each item ``count`` times in a row (a, a, b, b, ...), without a Python loop per item."""
    return list(chain.from_iterable(zip(*([items] * count), strict=True)))


def _rows(r: np.ndarray) -> slice | np.ndarray:
    """Rows ``r`` as a slice when they are consecutive and in order (views instead of copies)."""
    first, k = int(r[0]), r.size
    if int(r[-1]) - first + 1 == k and (k < 2 or bool((r[1:] > r[:-1]).all())):
        return slice(first, first + k)
    return r
