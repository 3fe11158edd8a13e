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
        self.pos = np.zeros(n, dtype=np.int64)
        self.filled = np.zeros(n, dtype=np.int64)
        self.windows = np.zeros(n, dtype=np.int64)
        self.state = np.full(n, _NONE, dtype=np.int64)
        self.pending = np.full(n, _NONE, dtype=np.int64)
        self.pending_since = np.zeros(n, dtype=np.float64)
        self.confidence = np.zeros(n, dtype=np.float64)
        self.no_data = np.zeros(n, dtype=bool)

    _COLUMNS = ("hist", "sums", "pos", "filled", "windows", "state", "pending", "pending_since",
                "confidence", "no_data")

    def forget(self, row: int) -> None:
        """Empty the history of ``row`` (the state itself is the tracker's to set)."""
        self.hist[row] = 0
        self.sums[row] = 0
        self.pos[row] = self.filled[row] = self.windows[row] = 0
        self.pending[row] = _NONE

    def step(self, rows: np.ndarray, probs: np.ndarray, now: np.ndarray) -> StepOutcome:
        """Advance each of ``rows`` (distinct) by one window of ``probs`` (n, K), finite float32,
        with ``now`` (n,) the clock the minimum duration is measured on."""
        self._record(rows, probs)
        no_data = self.no_data[rows]
        eligible = ~no_data & (self.windows[rows] >= self.min_windows)
        filled = self.filled[rows]
        scores = self._scores(rows, filled)
        n = len(rows)
        idx = np.arange(n)
        state = self.state[rows]
        has = state >= 0
        current = scores[idx, np.maximum(state, 0)]
        keep = eligible & has
        if keep.any():
            self.confidence[rows[keep]] = current[keep]
        top = scores.argmax(axis=1)
        top_score = scores[idx, top]
        holds = (top == state) | (has & (current >= self.exit))
        if self.mean:
            qualifies = top_score >= self.enter
        else:
            qualifies = np.round(top_score * filled) >= self.required_votes
        target = np.where(eligible & ~holds & qualifies, top, _NONE)
        pending = self.pending[rows]
        wants = target >= 0
        self.pending[rows[eligible & ~wants]] = _NONE
        moved = wants & (pending != target)
        if moved.any():
            self.pending[rows[moved]] = target[moved]
            self.pending_since[rows[moved]] = now[moved]
        fired = np.flatnonzero(wants & (now - self.pending_since[rows] >= self.min_duration_s))
        return StepOutcome(np.flatnonzero(no_data), fired, target[fired], top_score[fired])

    def _record(self, rows: np.ndarray, probs: np.ndarray) -> None:
        """Write one window per row into the rings and keep the running sums."""
        pos = self.pos[rows]
        old = self.hist[rows, pos]
        self.sums[rows] += probs - old  # running sum: the mean needs no pass over the history
        self.hist[rows, pos] = probs
        pos = (pos + 1) % self.h
        self.pos[rows] = pos
        lap = rows[pos == 0]
        if lap.size:  # once per lap, recompute exactly so rounding cannot drift
            self.sums[lap] = self.hist[lap].sum(axis=1, dtype=np.float64)
        self.filled[rows] = np.minimum(self.filled[rows] + 1, self.h)
        self.windows[rows] += 1

    def _scores(self, rows: np.ndarray, filled: np.ndarray) -> np.ndarray:
        """Smoothed score per row and class: mean probability, or the fraction of votes won."""
        if self.mean:
            out: np.ndarray = self.sums[rows] / filled[:, None]
            return out
        tops = self.hist[rows].argmax(axis=2)  # (n, H): each window's top class
        valid = np.arange(self.h)[None, :] < filled[:, None]  # the ring fills from position 0
        wins = ((tops[:, :, None] == np.arange(self.k)) & valid[:, :, None]).sum(axis=1)
        votes: np.ndarray = wins / filled[:, None]
        return votes
