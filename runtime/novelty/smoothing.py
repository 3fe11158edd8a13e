"""Per-window novelty scores -> a stable flag, with the fault state's smoothing and hysteresis.

A single window far from the training data can be a cable knock; a machine that is really
unfamiliar stays far. The flag therefore follows the mean score of the last ``history`` windows
(the same window history the class probabilities use), is raised when that mean reaches ``enter``
for ``min_windows`` windows in a row, and lowered only when it falls below ``exit`` (<= enter), so a
score hovering at the threshold cannot flap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.errors import ConfigError
from runtime.row_arrays import RowArrays


@dataclass(frozen=True)
class SmoothingSpec:
    """Window history, thresholds and how many windows a change must persist."""

    enter: float
    exit: float
    history: int = 5
    min_windows: int = 1

    def __post_init__(self) -> None:
        if self.history < 1 or self.min_windows < 1:
            raise ConfigError(f"history ({self.history}) and min_windows ({self.min_windows}) must be >= 1")
        if self.exit > self.enter:
            raise ConfigError(
                f"novelty exit threshold {self.exit} above enter threshold {self.enter} would flap; "
                "set exit <= enter"
            )


class FlagArray(RowArrays):
    """The flags of several sensors with one :class:`SmoothingSpec`, one row each, stepped per batch.

    The daemon scores a whole batch at once; stepping every sensor's flag of a batch round in one
    numpy call keeps the per-window Python work to the sensors whose flag is (or becomes) raised.
    """

    def __init__(self, spec: SmoothingSpec, capacity: int = 1) -> None:
        self.spec = spec
        self.rows = 0
        self._alloc(max(int(capacity), 1))

    _COLUMNS = ("ring", "count", "pending", "flagged", "smoothed", "calm")

    def _alloc(self, n: int) -> None:
        # the last scores, oldest first (a shift register: a new score goes in at the end; zeros
        # until the history is full, so the mean divides by ``count``)
        self.ring = np.zeros((n, self.spec.history), dtype=np.float64)
        self.count = np.zeros(n, dtype=np.int64)
        self.pending = np.zeros(n, dtype=np.int64)
        self.flagged = np.zeros(n, dtype=bool)
        self.smoothed = np.full(n, np.nan, dtype=np.float64)
        # a full history, nothing pending, no flag: set by step_quiet, cleared by step; and whether
        # every row in use is (so a pass need not look; cleared by step, add_row and copy_row)
        self.calm = np.zeros(n, dtype=bool)
        self._all_calm = False

    def step(self, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Add one score to each of ``rows`` (distinct); return whether each is flagged after it."""
        spec = self.spec
        self.calm[rows] = False  # a flag or what is pending may move: step_quiet looks again
        self._all_calm = False
        ring = np.concatenate([self.ring[rows][:, 1:], scores[:, None]], axis=1)
        self.ring[rows] = ring
        count = np.minimum(self.count[rows] + 1, spec.history)
        self.count[rows] = count
        smoothed = ring.sum(axis=1) / count
        self.smoothed[rows] = smoothed
        flagged = self.flagged[rows]
        full = count >= spec.history  # until the history is full the flag holds and nothing is pending
        wants = np.where(flagged, smoothed >= spec.exit, smoothed >= spec.enter)
        self.pending[rows[full & (wants == flagged)]] = 0
        moving = rows[full & (wants != flagged)]
        if moving.size:
            self.pending[moving] += 1
            flips = moving[self.pending[moving] >= spec.min_windows]
            self.flagged[flips] = ~self.flagged[flips]
            self.pending[flips] = 0
        out: np.ndarray = self.flagged[rows]
        return out

    def step_quiet(self, rows: np.ndarray, scores: np.ndarray) -> bool:
        """Several windows per row in one pass, when they change no flag: ``scores`` (m, n) are
        the ``rows`` (n, distinct) windows in order, one row of ``scores`` per window of each.

        True: no row was flagged, no smoothed mean reached ``enter`` after any of the windows, and
        the arrays now hold what m calls of :meth:`step` would have left (the same means, summed the
        same way: each window's history is a contiguous run of the rows' ring followed by the new
        scores). False: something would move, and nothing was changed: step window by window.
        Why: a batch holds two or more windows per sensor, and the rounds of :meth:`step` cost a
        few dozen numpy calls each where a flag almost never moves. Rows that are ``calm`` (a full
        history, nothing pending, no flag: what a pass leaves) need their ring and means only:
        about ten calls for the batch.
        """
        spec = self.spec
        h, m = spec.history, scores.shape[0]
        # rows r0 .. r0 + n - 1 in order (sensors recorded in turn, the usual batch): read and
        # written as a slice, a view where the row numbers took a gather and two scatters
        first = rows.tolist()
        at: np.ndarray | slice = rows
        if first and first == list(range(first[0], first[0] + len(first))):
            at = slice(first[0], first[0] + len(first))
        calm = self._all_calm or bool(self.calm[at].all())
        if not calm and self.flagged[at].any():
            return False
        run = np.concatenate([self.ring[at], scores.T], axis=1)  # (n, h + m): ring, then the windows
        count = None if calm else self.count[at]
        if calm and run.max() < spec.enter - (abs(spec.enter) * 1e-9 + 1e-300):
            # every score in every history below enter by more than a mean's rounding can add (a
            # history of up to millions of windows rounds by far less than 1e-9 of the sum): no mean
            # reaches it, and only the last one is kept (NaN fails the test and takes the rounds)
            smoothed = run[:, m:].sum(axis=1) / h
        else:
            smoothed = self.smoothed[:0]
            for r in range(1, m + 1):
                # the history after the r-th window; a calm row's count is h (step divides by the same)
                smoothed = run[:, r: r + h].sum(axis=1) / (h if count is None else np.minimum(count + r, h))
                if not smoothed.max() < spec.enter:  # a flag may start to rise (or NaN): the rounds decide
                    return False
        self.ring[at] = run[:, m:]
        self.smoothed[at] = smoothed
        if count is not None:
            count = np.minimum(count + m, h)
            self.count[at] = count
            full = count >= h
            self.pending[rows[full]] = 0  # a full history not wanting the flag clears what was pending
            self.calm[at] = full
            self._all_calm = bool(self.calm[: self.rows].all())
        return True

    def add_row(self) -> int:
        self._all_calm = False  # a fresh row has no history
        return super().add_row()

    def copy_row(self, src: RowArrays, src_row: int, row: int) -> None:
        self._all_calm = False
        super().copy_row(src, src_row, row)


class NoveltyFlag:
    """Streaming flag for one sensor: feed it one score per window (a row of a :class:`FlagArray`)."""

    def __init__(self, spec: SmoothingSpec) -> None:
        self.spec = spec
        self.array = FlagArray(spec)
        self.row = self.array.add_row()

    @property
    def flagged(self) -> bool:
        return bool(self.array.flagged[self.row])

    @property
    def smoothed(self) -> float:
        """The mean score of the last ``history`` windows (NaN before the first)."""
        return float(self.array.smoothed[self.row])

    def move_to(self, array: FlagArray) -> None:
        """Carry this flag into a new row of ``array`` (same spec), shared with other sensors."""
        row = array.add_row()
        array.copy_row(self.array, self.row, row)
        self.array, self.row = array, row

    def update(self, score: float) -> bool:
        """Add one window's score; return whether the sensor is flagged after it."""
        return bool(self.array.step(np.array([self.row]), np.array([float(score)]))[0])


def flags(scores: np.ndarray, spec: SmoothingSpec) -> np.ndarray:
    """The flag after each window of one sensor's score sequence (bool array)."""
    flag = NoveltyFlag(spec)
    return np.fromiter(
        (flag.update(s) for s in np.asarray(scores, dtype=np.float64)), dtype=bool, count=len(scores)
    )


def episodes(flagged: np.ndarray) -> int:
    """How many times the flag was raised (rising edges): the alarms a plant would receive."""
    f = np.asarray(flagged, dtype=bool)
    return int(f[0]) + int(np.sum(f[1:] & ~f[:-1])) if len(f) else 0
