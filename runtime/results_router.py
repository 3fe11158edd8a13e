"""Where the daemon's results go: window probabilities -> fault states -> events, states and
predictions on the publisher.

Runs on each model's inference thread (:meth:`ResultRouter.on_batch`) and on the supervisor
(no-data changes, reloads). Kept apart from :mod:`runtime.daemon`, which owns the lifecycle
(start, supervise, reload, stop), so the per-batch path can be read, measured and changed on
its own; the payloads themselves are built in :mod:`runtime.results`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from runtime.batching import BatchResult
from runtime.config import DaemonConfig
from runtime.diagnostics.monitor import EnvelopeMonitor
from runtime.fault_state import StateChange
from runtime.metrics import Metrics
from runtime.mqtt.outbox import NewMessage
from runtime.mqtt.payload import encode_payload
from runtime.mqtt.publisher import Ack, MqttPublisher
from runtime.novelty.route import batch_scores, window_novelty
from runtime.pipeline import SensorPipeline
from runtime.publish_hooks import PublishHook, WindowRef
from runtime.results import ResultPayloads

#: per-window prediction waiting to be sent: (window reference, payload)
_Prediction = tuple[WindowRef, Any]


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

    # -- inference thread -----------------------------------------------------------------------

    def on_batch(self, batch: BatchResult) -> None:
        """Probabilities -> fault states -> events (outbox first), states and predictions."""
        self.metrics.observe_batch(batch.size, batch.infer_s, batch.latencies())
        changes: list[tuple[SensorPipeline, StateChange]] = []
        predictions: list[_Prediction] = []
        served: list[int] = []  # rows of the batch whose sensor is still served
        per_window = self.per_window
        rounded = np.round(batch.probs, 6).tolist() if per_window else []  # one call per batch
        per_sensor: dict[str, int] = {}
        build = self.payloads.prediction
        scores = batch_scores(batch, self.sensors, self.metrics)  # None: no novelty for this batch
        with self.state_lock:
            for i, w in enumerate(batch.windows):
                sp = self.sensors.get(w.sensor_id)
                if sp is None:
                    continue
                served.append(i)
                per_sensor[w.sensor_id] = per_sensor.get(w.sensor_id, 0) + 1
                sp.last_window = batch.t_done
                now = w.t_mono if sp.local_clock else w.t_wall  # durations: local clock, see fault_state
                change = sp.tracker.update(batch.probs[i], w.t_wall, now=now)
                if change is not None:
                    changes.append((sp, change))
                if scores is not None and sp.novelty is not None:
                    assert batch.features is not None
                    change = window_novelty(sp, batch.features[i], batch.probs[i], scores[i], w.t_wall)
                    if change is not None:
                        changes.append((sp, change))
                if per_window:
                    payload = build(w.sensor_id, w.index, w.t_wall, sp.model.metadata.classes, rounded[i])
                    predictions.append(((w.sensor_id, w.index, w.t_mono), payload))
        for sensor_id, n in per_sensor.items():  # one counter update per sensor and batch
            self.metrics.sensor(sensor_id).windows.inc(n)
        if changes:
            self.publish_changes(changes)
        if predictions:
            self._publish_predictions(predictions)
        if self.per_batch and served:
            self._publish_batch(batch, served)

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
