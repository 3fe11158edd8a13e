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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from runtime.fault_state import FaultStateTracker
from runtime.pipeline import SensorPipeline


@dataclass(frozen=True, slots=True)
class BatchRows:
    """The served windows of one batch, as arrays over them (in batch order).

    ``pos``: the window's row in the batch; ``sensor``: its dense sensor index; ``rank``: how many
    earlier windows of the same sensor the batch holds (its round); ``rounds``: ``rank.max() + 1``.
    """

    pos: np.ndarray
    sensor: np.ndarray
    rank: np.ndarray
    rounds: int
    distinct: list[int]

    def round_members(self, r: int) -> np.ndarray:
        """Positions (into ``pos``) of the windows of round ``r``, at most one per sensor."""
        if self.rounds == 1:
            return np.arange(len(self.pos))
        members: np.ndarray = np.flatnonzero(self.rank == r)
        return members


class SensorTable:
    """Dense sensor indices and the numbers a batch step reads per sensor."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.ids: list[str] = []
        self.pipes: list[SensorPipeline | None] = []
        self.trackers: list[FaultStateTracker | None] = []
        self._alloc(16)
        #: windows per sensor not yet carried into the Prometheus counters
        self.counts = np.zeros(16, dtype=np.int64)

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

    def rows_of(self, idx: np.ndarray, uniq: np.ndarray) -> BatchRows:
        """The batch's windows whose sensor is served, with each window's round (``uniq``: the
        distinct values of ``idx``)."""
        served = self.served[idx]
        if served.all():
            pos = np.arange(len(idx))
            sensor = idx
        else:
            pos = np.flatnonzero(served)
            sensor = idx[pos]
            uniq = uniq[self.served[uniq]]
        n = len(sensor)
        if n == 0:
            return BatchRows(pos, sensor, pos, 0, [])
        if len(uniq) == n:  # every sensor once: one round
            return BatchRows(pos, sensor, np.zeros(n, dtype=np.int64), 1, uniq.tolist())
        order = np.argsort(sensor, kind="stable")
        ordered = sensor[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        first = np.repeat(starts, np.diff(np.r_[starts, n]))  # where each window's sensor run begins
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - first
        return BatchRows(pos, sensor, rank, int(rank.max()) + 1, uniq.tolist())

    def count(self, sensor: np.ndarray) -> None:
        """Add one window per entry of ``sensor`` to the pending window counters."""
        self.counts[: len(self.ids)] += np.bincount(sensor, minlength=len(self.ids))

    def take_counts(self) -> dict[str, int]:
        """The pending window counts per sensor id (non-zero only), reset to zero."""
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
        """Remember sensor ``j``'s pipeline (None: no longer served) and where its state row lives."""
        self.pipes[j] = sp
        self.trackers[j] = None if sp is None else sp.tracker
        self.served[j] = sp is not None
        if sp is not None:
            self.row[j] = sp.tracker.row
            self.group[j] = group
            self.local[j] = sp.local_clock
