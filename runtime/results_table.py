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

import numpy as np

from runtime.fault_state import FaultStateTracker
from runtime.pipeline import SensorPipeline


@dataclass(frozen=True, slots=True)
class BatchRows:
    """The served windows of one batch, as arrays over them (in batch order).

    ``pos``: the window's row in the batch; ``sensor``: its dense sensor index; ``members[r]``: the
    positions (into ``pos``) of round ``r``, a sensor's r-th window of the batch, at most one per
    sensor; ``distinct``: the batch's sensors, once each.
    """

    pos: np.ndarray
    sensor: np.ndarray
    members: list[np.ndarray]
    distinct: list[int]

    @property
    def rounds(self) -> int:
        return len(self.members)


def _rounds(idx: list[int]) -> tuple[list[list[int]], list[int]]:
    """Per round the positions of ``idx`` that are a sensor's r-th occurrence; the distinct values.

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
    return rounds, list(seen)


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

    def rows_of(self, idx: np.ndarray, sensors: Mapping[str, SensorPipeline], t_done: float,
                refresh: Callable[[int], None]) -> BatchRows:
        """The batch's windows (dense sensor indices ``idx``) whose sensor is served, with their rounds.

        Every sensor of the batch is visited first (:meth:`visit`); ``refresh(j)`` is called for
        those that must be (re)recorded, before anything reads their numbers.
        """
        listed = idx.tolist()
        rounds, distinct = _rounds(listed)
        for j in self.visit(distinct, sensors, t_done):
            refresh(j)
        if self.served[distinct].all():
            pos = np.arange(len(listed))
            if len(rounds) == 1:
                return BatchRows(pos, idx, [pos], distinct)
            return BatchRows(pos, idx, [np.array(r) for r in rounds], distinct)
        keep = np.flatnonzero(self.served[idx])  # windows of sensors no longer served are skipped
        if not len(keep):
            return BatchRows(keep, keep, [], [])
        sensor = idx[keep]
        rounds, distinct = _rounds(sensor.tolist())
        return BatchRows(keep, sensor, [np.array(r) for r in rounds], distinct)

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
