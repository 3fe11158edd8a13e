"""Where the daemon's results go: window probabilities -> fault states -> events, states and
predictions on the publisher.

Runs on each model's inference thread (:meth:`ResultRouter.on_batch`) and on the supervisor
(no-data changes, reloads). Kept apart from :mod:`runtime.daemon`, which owns the lifecycle
(start, supervise, reload, stop), so the per-batch path can be read, measured and changed on
its own. This module steps the fault states and novelty flags of a batch; the arrays they live in
are kept by :mod:`runtime.results_arrays`, what leaves goes through :mod:`runtime.results_output`,
and the payloads themselves are built in :mod:`runtime.results`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from runtime.batching import BatchResult
from runtime.config import DaemonConfig
from runtime.diagnostics.monitor import EnvelopeMonitor
from runtime.fault_state import StateChange
from runtime.metrics import Metrics
from runtime.mqtt.publisher import Ack, MqttPublisher
from runtime.novelty.envelope_cache import EnvelopeCache
from runtime.novelty.route import (
    NoveltyPlan,
    plan_novelty,
    quiet_rounds,
    round_novelty,
    score_batch,
    window_novelty,
)
from runtime.novelty.sensor import SensorNovelty
from runtime.pipeline import SensorPipeline
from runtime.publish_hooks import PublishHook
from runtime.results_arrays import SharedArrays
from runtime.results_output import ResultOutput, batch_sensor_ids, batch_times
from runtime.results_table import BatchRows, SensorTable
from runtime.state_array import StepOutcome

#: how often the inference thread carries its window counts into Prometheus (flush_counts)
_COUNT_EVERY_S = 0.25
#: a state change found in a batch: (row of the batch, 0 class / 1 novelty, sensor, change)
_Found = tuple[int, int, SensorPipeline, StateChange]


class ResultRouter:
    """Routes one daemon's results; ``publisher()`` returns the current publisher (None when stopped)."""

    def __init__(self, config: DaemonConfig, metrics: Metrics, sensors: Mapping[str, SensorPipeline],
                 state_lock: threading.Lock, publisher: Callable[[], MqttPublisher | None],
                 hooks: Sequence[PublishHook] = ()) -> None:
        self.config = config
        self.metrics = metrics
        self.sensors = sensors
        self.state_lock = state_lock
        #: events, states and results on the publisher, and the publisher's reports back
        self.output = ResultOutput(config, metrics, publisher, hooks)
        #: the fault-state and flag arrays shared by the sensors of one model and config (a reload
        #: builds new trackers: SensorTable.visit notices, and they move into their array on first sight)
        self.arrays = SharedArrays()
        self._table = SensorTable()
        #: each sensor's last envelope bands, by the table's dense index (runtime.novelty.envelope_cache)
        self.envelopes = EnvelopeCache()
        self._plan: NoveltyPlan | None = None  # see _novelty_plan
        #: CPU seconds the inference threads spent in the novelty path (scores, envelope bands, flags),
        #: for `bench daemon`: the path's share of the daemon's CPU without differencing two noisy runs
        #: (several models' threads add to it unlocked; a lost update only makes it read low)
        self.novelty_cpu_s = 0.0
        self._plan_changes = -1
        self._counts_due = 0.0

    @property
    def diagnostics(self) -> EnvelopeMonitor | None:
        """Envelope diagnostics (runtime.diagnostics.monitor), set by the daemon when a sensor has them."""
        return self.output.diagnostics

    @diagnostics.setter
    def diagnostics(self, monitor: EnvelopeMonitor | None) -> None:
        self.output.diagnostics = monitor

    # -- inference thread -----------------------------------------------------------------------

    def on_batch(self, batch: BatchResult) -> None:
        """Probabilities -> fault states -> events (outbox first), states and predictions.

        The fault states of a batch advance as arrays (:mod:`runtime.state_array`): the sensors
        whose windows change nothing in one pass, the others one step per round (a sensor's second
        window in the second round), so Python work is spent only where a state changes (and on
        novelty while a flag is up). Which sensor each window belongs to, its round and its row in
        the shared arrays come from :class:`~runtime.results_table.SensorTable` as arrays; events
        and QoS 1 results leave in one outbox transaction.
        """
        t_wall, t_mono = batch_times(batch)
        self.metrics.observe_batch(batch.size, batch.infer_s, batch.t_done - t_mono)
        table = self._table
        with self.state_lock:
            idx, rows = table.rows_of(batch_sensor_ids(batch), self.sensors, batch.t_done,
                                      lambda j: self._refresh(j, batch.t_done))
            scores = self._scores(batch, rows, idx)  # None: no novelty for this batch
            if rows.rounds and self._usable(batch.probs, rows):
                found = self._step_rounds(batch, rows, t_wall, t_mono, scores)
            else:  # a batch the arrays cannot take: window by window, raising where the old path raised
                found = self._step_windows(batch, rows, scores)
        if batch.t_done >= self._counts_due:
            self.flush_counts()
        if found:
            found.sort(key=lambda c: (c[0], c[1]))  # window order, each class change before its novelty
        changes = [(sp, ch) for _, _, sp, ch in found]
        if self.output.results and rows.rounds:
            self.output.publish_results(batch, rows, changes, table.pipes)
        elif changes:
            self.output.publish_changes(changes)

    def _refresh(self, j: int, t_done: float) -> None:
        """Sensor ``j`` is new, was rebuilt (reload) or is no longer served: move its tracker into
        the shared array of its model and config and record where its row lives."""
        table = self._table
        self._plan = None  # the novelty plan covers the known sensors: make it again
        sp = self.sensors.get(table.ids[j])
        if sp is None:
            self.envelopes.record(j, None)
            table.record(j, None, 0)
            return
        group, forgot = self.arrays.attach(sp, self.sensors)  # before the envelope record below
        if forgot:  # a reload: the old pipelines go too (recorded afresh at their next window)
            self._forget_replaced()
        self.envelopes.record(j, sp)
        table.record(j, sp, group)
        sp.last_window = t_done

    def _forget_replaced(self) -> None:
        """Forget the table's record of sensors whose pipeline changed or left: held here, they
        would keep the model a reload replaced (its backend, scorer and metadata) alive."""
        table = self._table
        for j, sp in enumerate(table.pipes):
            if sp is not None and self.sensors.get(table.ids[j]) is not sp:
                table.record(j, None, 0)
                self.envelopes.record(j, None)

    def _scores(self, batch: BatchResult, rows: BatchRows, idx: np.ndarray) -> np.ndarray | None:
        """The batch's novelty scores, when it has features and one of its sensors uses novelty
        (``idx``: every row's dense sensor index, for the sensors' envelope bands)."""
        if batch.features is None:
            return None
        pipes = self._table.pipes
        for j in rows.distinct:
            sp = pipes[j]
            if sp is not None and sp.novelty is not None:
                t0 = time.thread_time()
                out = score_batch(batch, sp.model.scorer, self.metrics, self.envelopes, idx)
                self.novelty_cpu_s += time.thread_time() - t0
                return out
        return None

    def _usable(self, probs: np.ndarray, rows: BatchRows) -> bool:
        """Every row finite and as wide as the trackers' class lists (else the per-window path)."""
        # one reduction: a sum is finite only when every value is (a sum that overflows sends a
        # finite batch the per-window way, which decides the same)
        if probs.ndim != 2 or not math.isfinite(np.add.reduce(probs, axis=None)):
            return False
        k, arrays = probs.shape[1], self.arrays.by_group
        return all(arrays[g].k == k for g in rows.groups)

    def _step_rounds(self, batch: BatchResult, rows: BatchRows, t_wall: np.ndarray, t_mono: np.ndarray,
                     scores: np.ndarray | None) -> list[_Found]:
        """Advance the fault states: first every sensor whose windows change nothing, all rounds in
        one pass (:meth:`StateArray.advance_quiet`), then the others one round at a time, one array
        step per shared array and round, each round's novelty after its class step.

        Exact as window by window, except that a novelty flag raised *and* lowered within one batch
        by a sensor stepped in the one pass gives its lowering event the batch's last confidence."""
        found: list[_Found] = []
        table = self._table
        probs = np.asarray(batch.probs, dtype=np.float32)
        pos, sensor, grid = rows.pos, rows.sensor, rows.grid
        whole = len(pos) == len(probs)  # every window served: pos is 0 .. n - 1
        state_rows, groups = rows.row, rows.group
        single = len(rows.groups) == 1  # the usual case: one model, one config
        plan: NoveltyPlan | None = None
        busy: np.ndarray | None = None
        if scores is not None:  # novelty flags in one pass when none moves (the rounds then skip them)
            t0 = time.thread_time()
            plan = self._novelty_plan()
            if quiet_rounds(plan, pos, sensor, rows.members, scores):
                plan = None
            elif single and rows.rounds > 1:
                busy = plan.busy(sensor)
            self.novelty_cpu_s += time.thread_time() - t0
        left = None  # windows the rounds must still step (None: all)
        probs_at = probs if whole else probs[pos]
        if single and rows.rounds > 1:
            array = self.arrays.by_group[int(groups[0])]
            if grid is not None and rows.grid_at is not None:  # the usual shape: every sensor as many
                # windows, one pass over a grid; most batches are steady (StateArray.advance_steady)
                grid_probs = probs[grid if whole else pos[grid]]
                if busy is None and array.advance_steady(rows.grid_at, grid_probs):
                    noisy = None
                else:
                    noisy = array.advance_quiet_grid(rows.grid_rows, grid_probs,
                                                     None if busy is None else busy[grid])
                if noisy is None and plan is None:
                    return found  # every window quiet: nothing to step, no event
                left = np.zeros(len(pos), dtype=bool)
                if noisy is not None:
                    left[grid[:, noisy]] = True
            else:
                left = array.advance_quiet(state_rows, probs_at, rows.rank, rows.members, busy)
        wall = t_wall[pos]
        now = np.where(rows.local, t_mono[pos], wall) if rows.local.any() else wall
        for members in rows.members:
            todo = members if left is None else members[left[members]]
            parts = ((groups[0], todo),) if single else [
                (g, todo[groups[todo] == g]) for g in np.unique(groups[todo]).tolist()]
            for g, sel in parts:
                if not len(sel):
                    continue
                outcome = self.arrays.by_group[int(g)].step(state_rows[sel], probs_at[sel], now[sel])
                if outcome.resumed.size or outcome.fired.size:
                    self._fired(outcome, sel, rows, wall, found)
            if plan is not None and scores is not None:
                t0 = time.thread_time()
                for i, sp, change in round_novelty(batch, pos[members], sensor[members], table.pipes, plan,
                                                   scores, t_wall):
                    found.append((i, 1, sp, change))
                self.novelty_cpu_s += time.thread_time() - t0
        return found

    def _novelty_plan(self) -> NoveltyPlan:
        """How every known sensor scores novelty, re-made only when a sensor was (re)recorded or a
        sensor's way of scoring changed (:attr:`SensorNovelty.changes`), not per batch."""
        if self._plan is None or self._plan_changes != SensorNovelty.changes:
            self._plan_changes = SensorNovelty.changes
            table = self._table
            self._plan = plan_novelty(table.pipes, range(len(table.ids)), len(table.ids))
        return self._plan

    def _fired(self, outcome: StepOutcome, sel: np.ndarray, rows: BatchRows, wall: np.ndarray,
               found: list[_Found]) -> None:
        """The events of the rows a step resumed or fired (Python per change only)."""
        pipes = self._table.pipes
        for i in outcome.resumed.tolist():
            m = int(sel[i])
            sp = pipes[int(rows.sensor[m])]
            assert sp is not None
            found.append((int(rows.pos[m]), 0, sp, sp.tracker.resume(float(wall[m]))))
        for i, target, score in zip(outcome.fired.tolist(), outcome.target.tolist(), outcome.score.tolist(),
                                    strict=True):
            m = int(sel[i])
            sp = pipes[int(rows.sensor[m])]
            assert sp is not None
            change = sp.tracker.fire(target, score, float(wall[m]))
            if change is not None:
                found.append((int(rows.pos[m]), 0, sp, change))

    def _step_windows(self, batch: BatchResult, rows: BatchRows,
                      scores: np.ndarray | None) -> list[_Found]:
        """Window by window (a batch with non-finite or mis-shaped probabilities: raises DataError)."""
        found: list[_Found] = []
        pipes = self._table.pipes
        t_wall, t_mono = batch_times(batch)
        for i, j in zip(rows.pos.tolist(), rows.sensor.tolist(), strict=True):
            sp = pipes[j]
            assert sp is not None
            wall = float(t_wall[i])
            change = sp.tracker.update(batch.probs[i], wall, now=float(t_mono[i]) if sp.local_clock else wall)
            if change is not None:
                found.append((i, 0, sp, change))
            if scores is not None and sp.novelty is not None:
                assert batch.features is not None
                t0 = time.thread_time()
                change = window_novelty(sp, batch.features[i], batch.probs[i], scores[i], wall)
                self.novelty_cpu_s += time.thread_time() - t0
                if change is not None:
                    found.append((i, 1, sp, change))
        return found

    def flush_counts(self) -> None:
        """Carry the windows classified since the last call into the per-sensor counters, and the
        batches' buffered histogram observations into their histograms.

        Called by the inference thread at most every :data:`_COUNT_EVERY_S` (a Prometheus child's
        ``inc`` per sensor and batch cost more than a sensor's fault state), and by the daemon once
        its models are drained, so the final figures are complete.
        """
        with self.state_lock:
            pending = self._table.take_counts()
            self._counts_due = time.monotonic() + _COUNT_EVERY_S
        for sensor_id, n in pending.items():
            self.metrics.sensor(sensor_id).windows.inc(n)
        self.metrics.flush_batches()
        t0 = time.thread_time()
        if self.metrics.flush_novelty():  # the novelty scores' histogram: part of the novelty path's CPU
            self.novelty_cpu_s += time.thread_time() - t0

    # -- any thread: what leaves goes through the output ------------------------------------------

    def publish_changes(self, changes: Sequence[tuple[SensorPipeline, StateChange]]) -> None:
        """Events for the changes (one outbox transaction), then the changed sensors' states."""
        self.output.publish_changes(changes)

    def publish_state(self, sp: SensorPipeline, extra: Mapping[str, Any] | None = None) -> None:
        """Set the sensor's retained state; ``extra``: optional fields (envelope evidence)."""
        self.output.publish_state(sp, extra)

    def on_committed(self, sensors: list[str]) -> None:
        """Publisher (daemon or MQTT worker thread): count events once they are in the outbox."""
        self.output.on_committed(sensors)

    def on_acked(self, ack: Ack) -> None:
        """MQTT worker thread: pass each PUBACK on to the publish hooks."""
        self.output.on_acked(ack)
