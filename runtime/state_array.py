"""The numbers of many sensors' fault states in one set of arrays, updated per batch.

Why: with the model on a GPU a window costs a few microseconds, and a per-window Python state
machine (a handful of numpy calls on a 5 x 4 history each) cost more than the model. A
:class:`StateArray` holds, for every sensor that shares one fault-state config and one class
list, the probability history ring, the running sums, the fill counts, the current class, the
pending change and its start time, one row per sensor. :meth:`StateArray.step` advances any set
of *distinct* rows by one window each with a few numpy operations over all of them and reports
only the rows where something happens (a change is due, or data resumed after ``no_data``);
the per-sensor :class:`~runtime.fault_state.FaultStateTracker` then makes the event for those
rows alone. A batch that holds two windows of one sensor is stepped in two rounds, so each
sensor still sees its windows one after another, exactly as the per-window machine did.

numpy only; no events, no logging, no locks (the daemon's state lock covers every caller).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from runtime.row_arrays import RowArrays

_NONE = -1  # "no class" in the integer columns (state, pending)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one :meth:`StateArray.step` found: positions into the rows it was given.

    ``resumed``: rows that were in ``no_data`` (their window brings the data back);
    ``fired``: rows whose change is due, with the ``target`` class and its smoothed ``score``.
    """

    resumed: np.ndarray
    fired: np.ndarray
    target: np.ndarray
    score: np.ndarray


class StateArray(RowArrays):
    """Fault-state numbers of several sensors (rows) with one smoothing config and class count.

    ``smoothing``, ``history``, thresholds, ``min_duration_s``, ``min_windows`` and
    ``required_votes`` are those of :class:`~runtime.fault_state.FaultStateConfig`.
    """

    #: views of the columns of ``num`` (see _NUM)
    pos: np.ndarray
    filled: np.ndarray
    windows: np.ndarray
    state: np.ndarray
    pending: np.ndarray
    pending_since: np.ndarray
    confidence: np.ndarray
    no_data: np.ndarray

    def __init__(self, classes: int, smoothing: str, history: int, enter: float, exit_: float,
                 min_duration_s: float, min_windows: int, required_votes: int, capacity: int = 1) -> None:
        self.k, self.h = int(classes), int(history)
        self.mean = smoothing == "mean"
        self.enter, self.exit = float(enter), float(exit_)
        self.min_duration_s, self.min_windows = float(min_duration_s), int(min_windows)
        self.required_votes = int(required_votes)
        self.rows = 0
        self._alloc(max(int(capacity), 1))

    def _alloc(self, n: int) -> None:
        self.hist = np.zeros((n, self.h, self.k), dtype=np.float32)
        self.sums = np.zeros((n, self.k), dtype=np.float64)
        # the per-row numbers in one float64 matrix (integers exact below 2**53), so a step gathers
        # and scatters them with one fancy index each instead of one per column; named columns
        # are views of it (the tracker reads and sets single values through them)
        self.num = np.zeros((n, len(_NUM)), dtype=np.float64)
        for name, col in _NUM.items():
            setattr(self, name, self.num[:, col])
        self.state[:] = _NONE
        self.pending[:] = _NONE

    _COLUMNS = ("hist", "sums", "num")

    def forget(self, row: int) -> None:
        """Empty the history of ``row`` (the state itself is the tracker's to set)."""
        self.hist[row] = 0
        self.sums[row] = 0
        self.pos[row] = self.filled[row] = self.windows[row] = 0
        self.pending[row] = _NONE

    def step(self, rows: np.ndarray, probs: np.ndarray, now: np.ndarray) -> StepOutcome:
        """Advance each of ``rows`` (distinct) by one window of ``probs`` (n, K), finite float32,
        with ``now`` (n,) the clock the minimum duration is measured on."""
        num = self.num[rows]  # (n, columns): a copy, written back once at the end
        pos = num[:, _POS].astype(np.intp)
        filled, sums = self._record(rows, probs, pos, num)
        no_data = num[:, _NO_DATA] != 0
        eligible = (num[:, _WINDOWS] >= self.min_windows) & ~no_data
        scores = sums / filled[:, None] if self.mean else self._votes(rows, filled)
        idx = np.arange(len(rows))
        state = num[:, _STATE].astype(np.intp)
        has = state >= 0
        current = scores[idx, np.maximum(state, 0)]
        np.copyto(num[:, _CONFIDENCE], current, where=eligible & has)
        top = scores.argmax(axis=1)
        top_score = scores[idx, top]
        holds = (top == state) | (has & (current >= self.exit))
        if self.mean:
            qualifies = top_score >= self.enter
        else:
            qualifies = np.round(top_score * filled) >= self.required_votes
        wants = eligible & ~holds & qualifies
        pending = num[:, _PENDING]
        moved = wants & (pending != top)
        np.copyto(num[:, _SINCE], now, where=moved)
        np.copyto(pending, np.where(wants, top, _NONE), where=eligible)
        fired = np.flatnonzero(wants & (now - num[:, _SINCE] >= self.min_duration_s))
        self.num[rows] = num
        return StepOutcome(np.flatnonzero(no_data), fired, top[fired], top_score[fired])

    def advance_quiet(self, rows: np.ndarray, probs: np.ndarray, rank: np.ndarray,
                      members: list[np.ndarray], busy: np.ndarray | None = None) -> np.ndarray:
        """Advance, in one pass, every row whose windows of this batch change nothing; return the
        mask of the windows left for :meth:`step` (their rows' windows, untouched here).

        ``rows`` may repeat: ``rank`` says which of its row's windows each one is (0, 1, ...) and
        ``members[r]`` lists the windows of rank ``r``. Why: a batch holds two or more windows of a
        sensor, and stepping it round by round costs one full :meth:`step` per round, while
        nearly every window of a monitored machine only moves the smoothed scores (no change
        wanted, none pending): those windows need one pass for all rounds. A row is *quiet* when
        none of its windows wants a change, none is pending and it is not in ``no_data``; then the
        per-window rules reduce to: the ring takes every window, the confidence follows the last
        eligible one, nothing else moves. Mean smoothing only (votes go round by round). ``busy``:
        windows whose rows must go round by round whatever they hold (the caller's reasons).
        """
        n = len(rows)
        left = np.ones(n, dtype=bool)
        if not self.mean or len(members) > self.h:  # more windows of a sensor than its ring holds
            return left
        num0 = self.num[rows]  # per window: its row's numbers before the batch
        slot = (num0[:, _POS].astype(np.intp) + rank) % self.h
        # in float64, as step() adds to the sums (each window's slot held a value from before the batch)
        delta = probs.astype(np.float64) - self.hist[rows, slot]
        sums = np.empty((n, self.k), dtype=np.float64)
        where = np.zeros(len(self.num), dtype=np.intp)  # row -> its window of the previous round
        for r, m in enumerate(members):  # running sums in window order, as step() adds them
            at = rows[m]
            sums[m] = (self.sums[at] if r == 0 else sums[where[at]]) + delta[m]
            where[at] = m
        filled = np.minimum(num0[:, _FILLED] + rank + 1, self.h)
        eligible = (num0[:, _WINDOWS] + rank + 1 >= self.min_windows) & (num0[:, _NO_DATA] == 0)
        scores = sums / filled[:, None]
        idx = np.arange(n)
        state = num0[:, _STATE].astype(np.intp)
        has = state >= 0
        current = scores[idx, np.maximum(state, 0)]
        top = scores.argmax(axis=1)
        wants = eligible & (top != state) & ~(has & (current >= self.exit)) & (scores[idx, top] >= self.enter)
        noisy = wants | (num0[:, _PENDING] >= 0) | (num0[:, _NO_DATA] != 0)
        if busy is not None:
            noisy |= busy
        bad = np.zeros(len(self.num), dtype=bool)
        bad[rows[noisy]] = True
        left = np.asarray(bad[rows], dtype=bool)
        last = ~left & (rank == np.bincount(rows, minlength=len(self.num))[rows] - 1)
        if not last.any():
            return left
        quiet = ~left
        self.hist[rows[quiet], slot[quiet]] = probs[quiet]
        at = rows[last]
        num = num0[last]
        end = num[:, _POS] + rank[last] + 1
        num[:, _POS] = end % self.h
        num[:, _FILLED] = filled[last]
        num[:, _WINDOWS] += rank[last] + 1
        np.copyto(num[:, _CONFIDENCE], current[last], where=eligible[last] & has[last])
        self.num[at] = num
        row_sums = sums[last]
        lap = end >= self.h
        if lap.any():  # the ring wrapped: recompute exactly, as step() does once per lap
            row_sums[lap] = self.hist[at[lap]].sum(axis=1, dtype=np.float64)
        self.sums[at] = row_sums
        return left

    def advance_steady(self, at: slice | np.ndarray, probs: np.ndarray) -> bool:
        """The usual batch of :meth:`advance_quiet_grid` in about half its numpy calls: True when
        every row was *steady* and is advanced (the same numbers to the bit); False, with nothing
        changed, otherwise (then call :meth:`advance_quiet_grid`).

        ``at``: the rows, a slice where they are consecutive (the columns are then written in
        place, no gather and scatter), else an index array; ``probs`` (R, S, K) as for the grid
        pass. Steady: a row has a class, none pending, is not in ``no_data``, and the smoothed
        score of its class stays at or above the exit threshold after each of its windows. Such a
        window holds its state whatever the other classes score, so the pass need not look for a
        top class or a pending change at all, the checks that cost the grid pass most of its calls.
        """
        r_n = probs.shape[0]
        num = self.num[at]  # a view for a slice: written only once every row is known steady
        # ufunc reductions, not the methods: .min() and .any() add a Python layer each
        if (not self.mean or r_n > self.h or _MIN(num[:, _STATE]) < 0 or _MAX(num[:, _PENDING]) >= 0
                or _MAX(num[:, _NO_DATA]) > 0):
            return False
        view = isinstance(at, slice)
        hist = self.hist[at] if view else self.hist
        index = _columns(len(num)) if view else at
        rank, after = _rounds(r_n)
        pos = num[:, _POS].astype(np.intp)
        slot = (pos + rank) % self.h  # (R, S)
        sums = np.subtract(probs, hist[index, slot], dtype=np.float64)
        sums[0] += self.sums[at]
        for r in range(1, r_n):  # sequential in round order, as advance_quiet adds them
            sums[r] += sums[r - 1]
        # every ring full (the usual case): no fill to count, the mean divides by the ring's length
        fills = None if _MIN(num[:, _FILLED]) >= self.h else np.minimum(num[:, _FILLED] + after, self.h)
        current = sums[:, _columns(len(num)), num[:, _STATE].astype(np.intp)] / (
            float(self.h) if fills is None else fills)  # (R, S)
        if _MIN(current, axis=None) < self.exit:
            return False
        hist[index, slot] = probs
        end = pos + r_n
        num[:, _POS] = end % self.h
        if fills is not None:
            num[:, _FILLED] = fills[-1]
        num[:, _WINDOWS] += r_n
        np.copyto(num[:, _CONFIDENCE], current[-1], where=num[:, _WINDOWS] >= self.min_windows)
        if not view:
            self.num[at] = num
        row_sums = sums[-1]
        if _MAX(end) >= self.h:  # the ring wrapped: recompute exactly, as step() does once per lap
            lap = end >= self.h
            lapped = self.hist[at[lap]] if isinstance(at, np.ndarray) else hist[lap]
            row_sums[lap] = lapped.sum(axis=1, dtype=np.float64)
        self.sums[at] = row_sums
        return True

    def advance_quiet_grid(self, rows: np.ndarray, probs: np.ndarray,
                           busy: np.ndarray | None = None) -> np.ndarray | None:
        """:meth:`advance_quiet` for the usual batch shape, the same numbers to the bit with about
        half the numpy calls: every row has the same number of windows R, ``rows`` (S,) distinct,
        ``probs`` (R, S, K) float32 with ``probs[r, s]`` row ``s``'s r-th window, ``busy`` (R, S)
        or None. The rows' windows are then a grid, so the running sums are one cumulative sum
        over the rounds instead of a Python loop, and nothing needs a per-window row lookup.

        Returns the mask (S,) of rows left for :meth:`step` (untouched here), or None when every
        row was quiet (the usual case: no step to make).
        """
        r_n = probs.shape[0]
        if not self.mean or r_n > self.h:
            return np.ones(len(rows), dtype=bool)
        num0 = self.num[rows]  # (S, columns): a copy, written back for the quiet rows
        rank, after = _rounds(r_n)  # (R, 1): the round, 0 .. R - 1, and the windows after it, 1 .. R
        slot = (num0[:, _POS].astype(np.intp) + rank) % self.h  # (R, S)
        sums = np.subtract(probs, self.hist[rows, slot], dtype=np.float64)
        sums[0] += self.sums[rows]
        sums = np.cumsum(sums, axis=0)  # sequential in round order, as advance_quiet adds them
        filled = np.minimum(num0[:, _FILLED] + after, self.h)  # (R, S)
        scores = sums / filled[:, :, None]
        state = num0[:, _STATE].astype(np.intp)
        has = state >= 0
        current = np.take_along_axis(scores, np.maximum(state, 0)[None, :, None], axis=2)[:, :, 0]
        # no_data rows are noisy below whatever they want, so eligibility needs only the window count
        eligible = num0[:, _WINDOWS] + after >= self.min_windows
        wants = (eligible & (scores.argmax(axis=2) != state) & (scores.max(axis=2) >= self.enter)
                 & ~(has & (current >= self.exit)))
        noisy: np.ndarray = wants.any(axis=0) | (num0[:, _PENDING] >= 0) | (num0[:, _NO_DATA] != 0)
        if busy is not None:
            noisy |= busy.any(axis=0)
        some = bool(noisy.any())
        if some:
            if noisy.all():
                return noisy
            keep = np.flatnonzero(~noisy)
            rows, slot, probs, num0 = rows[keep], slot[:, keep], probs[:, keep], num0[keep]
            filled, sums, current, eligible, has = (filled[:, keep], sums[:, keep], current[:, keep],
                                                    eligible[:, keep], has[keep])
        self.hist[rows, slot] = probs
        end = num0[:, _POS] + r_n
        num0[:, _POS] = end % self.h
        num0[:, _FILLED] = filled[-1]
        num0[:, _WINDOWS] += r_n
        np.copyto(num0[:, _CONFIDENCE], current[-1], where=eligible[-1] & has)
        self.num[rows] = num0
        row_sums = sums[-1]
        lap = end >= self.h
        if lap.any():  # the ring wrapped: recompute exactly, as step() does once per lap
            row_sums[lap] = self.hist[rows[lap]].sum(axis=1, dtype=np.float64)
        self.sums[rows] = row_sums
        return noisy if some else None

    def _record(self, rows: np.ndarray, probs: np.ndarray, pos: np.ndarray,
                num: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write one window per row into the rings and keep the running sums; the rows' fill counts
        and sums after it."""
        old = self.hist[rows, pos]
        self.hist[rows, pos] = probs
        sums = self.sums[rows]
        sums += probs
        sums -= old  # running sum: the mean needs no pass over the history
        pos += 1
        lap = pos == self.h
        if lap.any():  # once per lap, recompute exactly so rounding cannot drift
            pos[lap] = 0
            sums[lap] = self.hist[rows[lap]].sum(axis=1, dtype=np.float64)
        self.sums[rows] = sums
        num[:, _POS] = pos
        filled = np.minimum(num[:, _FILLED] + 1, self.h)
        num[:, _FILLED] = filled
        num[:, _WINDOWS] += 1
        return filled, sums

    def _votes(self, rows: np.ndarray, filled: np.ndarray) -> np.ndarray:
        """The fraction of the last windows whose top class each class was (``smoothing: vote``)."""
        tops = self.hist[rows].argmax(axis=2)  # (n, H): each window's top class
        valid = np.arange(self.h)[None, :] < filled[:, None]  # the ring fills from position 0
        wins = ((tops[:, :, None] == np.arange(self.k)) & valid[:, :, None]).sum(axis=1)
        votes: np.ndarray = wins / filled[:, None]
        return votes


@functools.lru_cache(maxsize=16)
def _rounds(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1) columns of the round numbers 0 .. n - 1 (intp) and of 1 .. n (float64), read-only."""
    rank = np.arange(n, dtype=np.intp)[:, None]
    after = (rank + 1).astype(np.float64)
    rank.flags.writeable = after.flags.writeable = False
    return rank, after


_MIN, _MAX = np.minimum.reduce, np.maximum.reduce


@functools.lru_cache(maxsize=64)
def _columns(n: int) -> np.ndarray:
    """0 .. n - 1 (intp), read-only: the rows of a view, for fancy indexing."""
    out = np.arange(n, dtype=np.intp)
    out.flags.writeable = False
    return out


#: the columns of StateArray.num, each also an attribute (a view) of the same name
_NUM = {"pos": 0, "filled": 1, "windows": 2, "state": 3, "pending": 4, "pending_since": 5, "confidence": 6,
        "no_data": 7}
_POS, _FILLED, _WINDOWS, _STATE, _PENDING, _SINCE, _CONFIDENCE, _NO_DATA = range(8)
