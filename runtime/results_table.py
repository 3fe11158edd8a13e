"""The result router's per-sensor numbers as arrays: one dense index per served sensor.

Why: a batch of 32 windows over 16 sensors used to cost a dict lookup, an identity check, a
counter update and a tuple per window before any fault state moved (grouping the windows by
sensor into rounds was the router's largest Python cost). Here every sensor the router has seen
gets a dense index, and what a batch step reads per sensor (its row in the shared state array,
which array, its clock, its novelty flag row) sits in numpy columns under that index. A batch is
then one list of indices, one ``bincount`` for the window counters, one stable sort for the rounds
(a sensor's n-th window of the batch in round n) and fancy indexing; Python runs once per
*distinct* sensor of a batch (is it still served by the same pipeline?) and once per state change.

No locks: the daemon's state lock covers every caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.fault_state import FaultStateTracker
from runtime.pipeline import SensorPipeline

_EMPTY = np.empty(0, dtype=np.int64)
_EMPTY.flags.writeable = False
#: batch shapes kept (SensorTable._shapes) before the oldest are forgotten: the fast replay repeats a
#: few shapes; real-time batches may never repeat, and must not grow the cache without bound
_SHAPES = 256


@dataclass(frozen=True, slots=True)
class BatchRows:
    """The served windows of one batch, as arrays over them (in batch order).

    ``pos``: the window's row in the batch; ``sensor``: its dense sensor index; ``members[r]``: the
    positions (into ``pos``) of round ``r``, a sensor's r-th window of the batch, at most one per
    sensor; ``distinct``: the batch's sensors, once each. The rest is derived once per batch shape
    (:meth:`SensorTable.rows_of` keeps them while the shape repeats): ``rank``, each window's round;
    ``grid`` (rounds, sensors), when every sensor of the batch has the same number of windows,
    ``grid[r, s]`` the position of sensor ``distinct[s]``'s r-th window (else None); ``row``,
    ``group``, ``local``: the table's columns at ``sensor``; ``groups``: the distinct groups;
    ``counts``: windows per dense index (the window counters' share of one batch). Kept and
    handed out again for every batch of the same shape: read them, never write into them.
    The grid's columns are ordered by state row, not by first appearance.
    """

    pos: np.ndarray
    sensor: np.ndarray
    members: list[np.ndarray]
    distinct: list[int]
    rank: np.ndarray
    grid: np.ndarray | None
    row: np.ndarray
    group: np.ndarray
    local: np.ndarray
    groups: tuple[int, ...]
    counts: np.ndarray
    #: the state rows of the grid's sensors (``row[grid[0]]``, ascending: the grid's columns are in
    #: state-row order), and the same as a slice when they are consecutive (a view, no gather)
    grid_rows: np.ndarray
    grid_at: slice | np.ndarray | None

    @property
    def rounds(self) -> int:
        return len(self.members)


def _distinct(idx: list[int]) -> list[int]:
    """The values of ``idx`` once each, in order of first appearance."""
    return list(dict.fromkeys(idx))


def _rounds(idx: list[int]) -> tuple[list[list[int]], list[int], np.ndarray | None]:
    """Per round the positions of ``idx`` that are a sensor's r-th occurrence; the distinct values;
    when every sensor has as many, the grid (rounds, sensors) of their positions, each round in
    the order of its sensors' values (else None).

    A dict pass: for a batch of tens of windows it costs a third of the numpy way (argsort,
    searchsorted, scatter), whose per-call overhead dominates at this size.
    """
    seen: dict[int, int] = {}
    rounds: list[list[int]] = [[]]
    for p, j in enumerate(idx):
        k = seen.get(j, 0)
        seen[j] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(p)
    grid = None
    if len(rounds[-1]) == len(seen):  # the last round holds every sensor: all have as many windows
        grid = np.array(rounds, dtype=np.intp)
        if len(rounds) > 1:  # the same sensor in the same column of every round
            values = np.asarray(idx)[grid]
            grid = np.take_along_axis(grid, np.argsort(values, axis=1, kind="stable"), axis=1)
    return rounds, list(seen), grid


class SensorTable:
    """Dense sensor indices and the numbers a batch step reads per sensor."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.ids: list[str] = []
        self.pipes: list[SensorPipeline | None] = []
        self.trackers: list[FaultStateTracker | None] = []
        self._alloc(16)
        #: windows per sensor not yet carried into the Prometheus counters (plus each kept shape's
        #: counts times its hits, folded in by take_counts)
        self.counts = np.zeros(16, dtype=np.int64)
        #: batch shapes seen: sensor ids -> [dense indices, served rows, hits not yet counted, the
        #: batch's distinct sensors, served or not]
        self._shapes: dict[tuple[str, ...], list[Any]] = {}

    def _alloc(self, n: int) -> None:
        old = {name: getattr(self, name, None) for name in ("row", "group", "local", "served")}
        self.row = np.zeros(n, dtype=np.int64)  # the sensor's row in its StateArray
        self.group = np.zeros(n, dtype=np.int64)  # which StateArray (SensorTable.arrays)
        self.local = np.zeros(n, dtype=bool)  # fault-state durations on the local monotonic clock
        self.served = np.zeros(n, dtype=bool)  # a pipeline serves this id now
        for name, values in old.items():
            if values is not None:
                getattr(self, name)[: len(values)] = values

    def lookup(self, ids: Sequence[str]) -> np.ndarray:
        """The dense index of every id (new ids get one, not yet served: :meth:`refresh` serves them)."""
        index = self.index
        try:
            return np.fromiter(map(index.__getitem__, ids), dtype=np.int64, count=len(ids))
        except KeyError:
            pass
        for sid in ids:
            if sid not in index:
                self._add(sid)
        return np.fromiter(map(index.__getitem__, ids), dtype=np.int64, count=len(ids))

    def _add(self, sid: str) -> None:
        j = len(self.ids)
        if j == len(self.row):
            self._alloc(2 * j)
            self.counts = np.concatenate([self.counts, np.zeros(j, dtype=np.int64)])
        self.index[sid] = j
        self.ids.append(sid)
        self.pipes.append(None)
        self.trackers.append(None)

    def rows_of(self, ids: Sequence[str], sensors: Mapping[str, SensorPipeline], t_done: float,
                refresh: Callable[[int], None]) -> tuple[np.ndarray, BatchRows]:
        """The dense index of every window of a batch (sensor ``ids``), and the windows whose sensor
        is served, with their rounds; counts the served windows (:meth:`take_counts`).

        Every sensor of the batch is visited first (:meth:`visit`); ``refresh(j)`` is called for
        those that must be (re)recorded, before anything reads their numbers. Why the cache: a
        batch's shape (which sensors, in which order) repeats batch after batch (a fast replay
        cycles through a few), and its rounds, grid and columns are the same each time until a
        sensor is (re)recorded, which forgets every shape (:meth:`record`).
        """
        key = tuple(ids)
        hit = self._shapes.get(key)
        if hit is not None:
            idx, rows, _, everyone = hit
            stale = self.visit(everyone, sensors, t_done)  # served or not: one may be served now
            if not stale:
                hit[2] += 1
                return idx, rows
            for j in stale:
                refresh(j)  # records, which forgets the kept shapes
            self._forget_shapes()
            return idx, self._shape(key, idx, everyone)
        idx = self.lookup(ids)
        everyone = _distinct(idx.tolist())
        for j in self.visit(everyone, sensors, t_done):
            refresh(j)
        return idx, self._shape(key, idx, everyone)

    def _shape(self, key: tuple[str, ...], idx: np.ndarray, everyone: list[int]) -> BatchRows:
        """The served windows of a batch shape (its sensors visited and refreshed), counted once and
        kept for the next batch of the same shape."""
        if len(self._shapes) >= _SHAPES:
            self._forget_shapes()
        keep = np.flatnonzero(self.served[idx])  # windows of sensors no longer served are skipped
        if len(keep) == len(idx):
            keep, sensor = np.arange(len(idx)), idx
        else:
            sensor = idx[keep]
        rows = self._rows(keep, sensor)
        self.counts[: len(rows.counts)] += rows.counts
        self._shapes[key] = [idx, rows, 0, everyone]
        return rows

    def _rows(self, pos: np.ndarray, sensor: np.ndarray) -> BatchRows:
        if not len(pos):
            return BatchRows(pos, sensor, [], [], _EMPTY, None, _EMPTY, _EMPTY, _EMPTY, (), _EMPTY, _EMPTY,
                             None)
        rounds, distinct, grid = _rounds(sensor.tolist())
        members = [pos] if len(rounds) == 1 else [np.array(r, dtype=np.intp) for r in rounds]
        rank = np.empty(len(pos), dtype=np.int64)
        for r, m in enumerate(members):
            rank[m] = r
        group, row = self.group[sensor], self.row[sensor]
        grid_rows, grid_at = _EMPTY, None
        if grid is not None:  # columns in state-row order: consecutive rows make a slice
            order = np.argsort(row[grid[0]], kind="stable")
            grid = grid[:, order]
            grid_rows = row[grid[0]]
            first, last = int(grid_rows[0]), int(grid_rows[-1])
            grid_at = slice(first, last + 1) if last - first == len(grid_rows) - 1 else grid_rows
        out = BatchRows(pos, sensor, members, distinct, rank, grid, row, group, self.local[sensor],
                        tuple(sorted(set(group.tolist()))), np.bincount(sensor, minlength=len(self.ids)),
                        grid_rows, grid_at)
        return out

    def _forget_shapes(self) -> None:
        """Carry the kept shapes' window counts into :attr:`counts` and forget the shapes."""
        for _, rows, hits, _ in self._shapes.values():
            if hits:
                self.counts[: len(rows.counts)] += hits * rows.counts
        self._shapes.clear()

    def take_counts(self) -> dict[str, int]:
        """The pending window counts per sensor id (non-zero only), reset to zero."""
        for entry in self._shapes.values():
            if entry[2]:
                self.counts[: len(entry[1].counts)] += entry[2] * entry[1].counts
                entry[2] = 0
        nz = np.flatnonzero(self.counts).tolist()
        out = {self.ids[j]: int(self.counts[j]) for j in nz}
        self.counts[nz] = 0
        return out

    def visit(self, distinct: list[int], sensors: Mapping[str, SensorPipeline], t_done: float) -> list[int]:
        """Mark the sensors of a batch classified at ``t_done`` (the no-data watchdog reads it); the
        indices among ``distinct`` whose pipeline or tracker changed since they were recorded (a
        reload builds new ones), or that were never recorded or are not served: :meth:`record` them."""
        pipes, trackers, ids = self.pipes, self.trackers, self.ids
        stale = []
        for j in distinct:
            sp = pipes[j]
            if sp is None or sensors.get(ids[j]) is not sp or sp.tracker is not trackers[j]:
                stale.append(j)
            else:
                sp.last_window = t_done
        return stale

    def record(self, j: int, sp: SensorPipeline | None, group: int) -> None:
        """Remember sensor ``j``'s pipeline (None: no longer served) and where its state row lives
        (every kept batch shape is forgotten: their columns and served windows may change)."""
        if self._shapes:
            self._forget_shapes()
        self.pipes[j] = sp
        self.trackers[j] = None if sp is None else sp.tracker
        self.served[j] = sp is not None
        if sp is not None:
            self.row[j] = sp.tracker.row
            self.group[j] = group
            self.local[j] = sp.local_clock
