"""Where the daemon's results go: window probabilities -> fault states -> events, states and
predictions on the publisher.

Runs on each model's inference thread (:meth:`ResultRouter.on_batch`) and on the supervisor
(no-data changes, reloads). Kept apart from :mod:`runtime.daemon`, which owns the lifecycle
(start, supervise, reload, stop), so the per-batch path can be read, measured and changed on
its own; the payloads themselves are built in :mod:`runtime.results`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from runtime.batching import BatchResult
from runtime.config import DaemonConfig
from runtime.diagnostics.monitor import EnvelopeMonitor
from runtime.fault_state import StateChange, step_rows
from runtime.metrics import Metrics
from runtime.mqtt.outbox import NewMessage
from runtime.mqtt.payload import encode_payload
from runtime.mqtt.publisher import Ack, MqttPublisher
from runtime.novelty.route import batch_scores, round_novelty, window_novelty
from runtime.novelty.smoothing import FlagArray, SmoothingSpec
from runtime.pipeline import SensorPipeline
from runtime.publish_hooks import PublishHook, WindowRef
from runtime.results import ResultPayloads
from runtime.state_array import StateArray

#: how often the inference thread carries its window counts into Prometheus (flush_counts)
_COUNT_EVERY_S = 0.25
#: per-window prediction waiting to be sent: (window reference, payload)
_Prediction = tuple[WindowRef, Any]
#: a state change found in a batch: (row of the batch, 0 class / 1 novelty, sensor, change)
_Found = tuple[int, int, SensorPipeline, StateChange]
#: the served windows of a batch: (row of the batch, its sensor)
_Rows = list[tuple[int, SensorPipeline]]


class ResultRouter:
    """Routes one daemon's results; ``publisher()`` returns the current publisher (None when stopped)."""

    def __init__(self, config: DaemonConfig, metrics: Metrics, sensors: Mapping[str, SensorPipeline],
                 state_lock: threading.Lock, publisher: Callable[[], MqttPublisher | None],
                 hooks: Sequence[PublishHook] = ()) -> None:
        self.config = config
        self.metrics = metrics
        self.sensors = sensors
        self.state_lock = state_lock
        self.publisher = publisher
        self.hooks = hooks
        self.payloads = ResultPayloads(config.mqtt.device_id)
        mode = config.mqtt.predictions if config.mqtt.publish_predictions else None
        self.per_window = mode in ("window", "both")
        self.per_batch = mode in ("batch", "both")
        #: envelope diagnostics (runtime.diagnostics.monitor), set by the daemon when a sensor has them
        self.diagnostics: EnvelopeMonitor | None = None
        #: the fault-state arrays shared by the sensors of one model and config, and which tracker
        #: of each sensor was moved into one (a reload builds new trackers: they move on first sight)
        self._arrays: dict[tuple[int, str, int], tuple[Any, StateArray]] = {}
        self._attached: dict[str, Any] = {}
        self._flags: dict[tuple[int, SmoothingSpec], tuple[Any, FlagArray]] = {}
        #: windows per sensor not yet in the Prometheus counters (see flush_counts)
        self._window_counts: dict[str, int] = {}
        self._counts_due = 0.0

    # -- inference thread -----------------------------------------------------------------------

    def on_batch(self, batch: BatchResult) -> None:
        """Probabilities -> fault states -> events (outbox first), states and predictions.

        The fault states of a batch advance as arrays (:mod:`runtime.state_array`): one step per
        round over every sensor of the batch, a sensor's second window in the second round, so
        Python work is spent on windows only where a state changes (and on novelty, which
        smooths per sensor).
        """
        self.metrics.observe_batch(batch.size, batch.infer_s, batch.latencies())
        scores = batch_scores(batch, self.sensors, self.metrics)  # None: no novelty for this batch
        with self.state_lock:
            rows, rounds, counts = self._rounds(batch)
            pending = self._window_counts
            for sensor_id, n in counts.items():
                pending[sensor_id] = pending.get(sensor_id, 0) + n
            if rounds and self._usable(batch.probs, rows):
                found = self._step_rounds(batch, rows, rounds, scores)
            else:  # a batch the arrays cannot take: window by window, raising where the old path raised
                found = self._step_windows(batch, rows, scores)
        if batch.t_done >= self._counts_due:
            self.flush_counts()
        if found:
            found.sort(key=lambda c: (c[0], c[1]))  # window order, each class change before its novelty
            self.publish_changes([(sp, ch) for _, _, sp, ch in found])
        if self.per_window and rows:
            self._publish_predictions(self._window_predictions(batch, rows))
        if self.per_batch and rows:
            self._publish_batch(batch, [i for i, _ in rows])

    def _rounds(self, batch: BatchResult) -> tuple[_Rows, list[list[int]], dict[str, int]]:
        """The batch's served windows as (row, sensor), and per round the positions (into that list)
        that each sensor's n-th window takes; the trackers moved into their model's shared array."""
        rows: _Rows = []
        rounds: list[list[int]] = []
        seen: dict[str, int] = {}
        sensors, attached, t_done = self.sensors, self._attached, batch.t_done
        for i, w in enumerate(batch.windows):
            sp = sensors.get(w.sensor_id)
            if sp is None:
                continue
            if attached.get(w.sensor_id) is not sp.tracker:
                self._attach(sp)
            sp.last_window = t_done
            k = seen.get(w.sensor_id, 0)
            seen[w.sensor_id] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(len(rows))
            rows.append((i, sp))
        return rows, rounds, seen

    def _attach(self, sp: SensorPipeline) -> None:
        """Move a sensor's tracker into the array of its model and config (once per tracker)."""
        tracker = sp.tracker
        key = (id(sp.model), *tracker.array_key)
        found = self._arrays.get(key)
        if found is None or found[0] is not sp.model:
            found = (sp.model, tracker.new_array(capacity=len(self.sensors)))
            self._arrays[key] = found
        tracker.move_to(found[1])
        flag = sp.novelty.flag if sp.novelty is not None else None
        if flag is not None:  # the novelty flags of a model's sensors step together too
            fkey = (id(sp.model), flag.spec)
            flags = self._flags.get(fkey)
            if flags is None or flags[0] is not sp.model:
                flags = self._flags[fkey] = (sp.model, FlagArray(flag.spec, len(self.sensors)))
            flag.move_to(flags[1])
        self._attached[sp.sensor_id] = tracker

    @staticmethod
    def _usable(probs: np.ndarray, rows: _Rows) -> bool:
        """Every row finite and as wide as the trackers' class lists (else the per-window path)."""
        k = len(rows[0][1].tracker.classes)
        return bool(probs.ndim == 2 and probs.shape[1] == k and np.isfinite(probs).all()
                    and all(len(sp.tracker.classes) == k for _, sp in rows))

    def _step_rounds(self, batch: BatchResult, rows: _Rows, rounds: list[list[int]],
                     scores: np.ndarray | None) -> list[_Found]:
        """Advance the fault states one round at a time, one array step per shared array and round."""
        found: list[_Found] = []
        windows, probs = batch.windows, np.asarray(batch.probs, dtype=np.float32)
        first = rows[0][1].tracker.array
        single = all(sp.tracker.array is first for _, sp in rows)  # the usual case: one model, one config
        for members in rounds:
            if single:
                groups: Iterable[list[int]] = (members,)
            else:
                by_array: dict[int, list[int]] = {}
                for j in members:
                    by_array.setdefault(id(rows[j][1].tracker.array), []).append(j)
                groups = by_array.values()
            for group in groups:
                picked = [rows[j] for j in group]
                idx = [i for i, _ in picked]
                ts = [windows[i].t_wall for i in idx]
                now = [windows[i].t_mono if sp.local_clock else windows[i].t_wall for i, sp in picked]
                for pos, change in step_rows([sp.tracker for _, sp in picked], probs[idx], ts, now):
                    found.append((idx[pos], 0, picked[pos][1], change))
            if scores is not None:
                self._novelty(batch, rows, members, scores, found)
        return found

    @staticmethod
    def _novelty(batch: BatchResult, rows: _Rows, members: list[int], scores: np.ndarray,
                 found: list[_Found]) -> None:
        """One round's windows through their sensors' novelty trackers (after the round's class step)."""
        for i, sp, change in round_novelty(batch, [rows[j] for j in members], scores):
            found.append((i, 1, sp, change))

    @staticmethod
    def _step_windows(batch: BatchResult, rows: _Rows,
                      scores: np.ndarray | None) -> list[_Found]:
        """Window by window (a batch with non-finite or mis-shaped probabilities: raises DataError)."""
        found: list[_Found] = []
        for i, sp in rows:
            w = batch.windows[i]
            change = sp.tracker.update(batch.probs[i], w.t_wall, now=w.t_mono if sp.local_clock else w.t_wall)
            if change is not None:
                found.append((i, 0, sp, change))
            if scores is not None and sp.novelty is not None:
                assert batch.features is not None
                change = window_novelty(sp, batch.features[i], batch.probs[i], scores[i], w.t_wall)
                if change is not None:
                    found.append((i, 1, sp, change))
        return found

    def flush_counts(self) -> None:
        """Carry the windows classified since the last call into the per-sensor counters.

        Called by the inference thread at most every :data:`_COUNT_EVERY_S` (a Prometheus child's
        ``inc`` per sensor and batch cost more than a sensor's fault state), and by the daemon once
        its models are drained, so the final figures are complete.
        """
        with self.state_lock:
            pending, self._window_counts = self._window_counts, {}
            self._counts_due = time.monotonic() + _COUNT_EVERY_S
        for sensor_id, n in pending.items():
            self.metrics.sensor(sensor_id).windows.inc(n)

    def _window_predictions(self, batch: BatchResult, rows: _Rows) -> list[_Prediction]:
        """One payload per window (``mqtt.predictions: window``); rounded with one numpy call."""
        rounded = np.round(batch.probs, 6).tolist()
        build = self.payloads.prediction
        out: list[_Prediction] = []
        for i, sp in rows:
            w = batch.windows[i]
            payload = build(w.sensor_id, w.index, w.t_wall, sp.model.metadata.classes, rounded[i])
            out.append(((w.sensor_id, w.index, w.t_mono), payload))
        return out

    def _publish_predictions(self, predictions: list[_Prediction]) -> None:
        """QoS 0: straight to the broker while connected. QoS 1: through the outbox, like events."""
        pub = self.publisher()
        if pub is None:
            return
        if self.config.prediction_qos == 0:
            for (sensor, _, _), payload in predictions:
                pub.publish_prediction(sensor, payload)
            return
        messages = [NewMessage(pub.topics.prediction(ref[0]), encode_payload(payload, "prediction"), 1, False)
                    for ref, payload in predictions]
        rows = pub.enqueue(messages)
        for hook in self.hooks:
            hook.predictions_enqueued(rows, [ref for ref, _ in predictions])

    def _publish_batch(self, batch: BatchResult, served: list[int]) -> None:
        """One message for the whole batch (``mqtt.predictions: batch``); one outbox row at QoS 1."""
        pub = self.publisher()
        if pub is None:
            return
        windows = [batch.windows[i] for i in served]
        model = self.sensors[windows[0].sensor_id].model.metadata  # a batch holds one model's windows
        payload = self.payloads.prediction_batch(
            model.model.name, model.classes, [w.sensor_id for w in windows], [w.index for w in windows],
            [w.t_wall for w in windows], batch.probs[served] if len(served) < batch.size else batch.probs)
        if self.config.prediction_qos == 0:
            pub.publish_prediction_batch(payload)
            return
        rows = pub.enqueue([NewMessage(pub.topics.predictions, encode_payload(payload, "prediction batch"),
                                       1, False)])
        refs = [(w.sensor_id, w.index, w.t_mono) for w in windows]
        for hook in self.hooks:
            hook.predictions_enqueued(rows * len(refs), refs)

    # -- any thread --------------------------------------------------------------------------------

    def publish_changes(self, changes: Sequence[tuple[SensorPipeline, StateChange]]) -> None:
        """Events for the changes (one outbox transaction), then the changed sensors' states."""
        pub = self.publisher()
        if pub is None:
            return
        events = [(sp.sensor_id, self.payloads.event(ch, sp.model.identity).to_json_dict())
                  for sp, ch in changes]
        if self.diagnostics is not None:  # diagnosed sensors' events leave with their evidence, in order
            events = self.diagnostics.route(events, [ch for _, ch in changes])
        if events:
            pub.publish_events(events)  # counted in on_committed once on disk
        for sp, _ in changes:
            self.publish_state(sp)

    def publish_state(self, sp: SensorPipeline, extra: Mapping[str, Any] | None = None) -> None:
        """Set the sensor's retained state; ``extra``: optional fields (envelope evidence)."""
        pub = self.publisher()
        if pub is None:
            return
        if extra is None and self.diagnostics is not None:
            extra = self.diagnostics.state_fields(sp.sensor_id)
        pub.publish_state(sp.sensor_id, self.payloads.state(sp.tracker.snapshot(), sp.model.identity, extra))

    def on_committed(self, sensors: list[str]) -> None:
        """Publisher (daemon or MQTT worker thread): count events once they are in the outbox."""
        for sensor_id in sensors:
            self.metrics.sensor(sensor_id).events.inc()

    def on_acked(self, ack: Ack) -> None:
        """MQTT worker thread: pass each PUBACK on to the publish hooks."""
        for hook in self.hooks:
            hook.acked(ack)
