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


#: the columns of StateArray.num, each also an attribute (a view) of the same name
_NUM = {"pos": 0, "filled": 1, "windows": 2, "state": 3, "pending": 4, "pending_since": 5, "confidence": 6,
        "no_data": 7}
_POS, _FILLED, _WINDOWS, _STATE, _PENDING, _SINCE, _CONFIDENCE, _NO_DATA = range(8)
