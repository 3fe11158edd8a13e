"""Where the result router's output goes: events, retained states and per-window results on the
publisher, and the publisher's reports back (events on disk, PUBACKs).

Why apart from :mod:`runtime.results_router`: the router decides *what* changed (fault states and
novelty flags stepped as arrays per batch); this module decides *how it leaves*: at QoS 1 a
batch's events and results in one outbox transaction, at QoS 0 straight to the broker, then the
changed sensors' states. The payloads themselves are built in :mod:`runtime.results`.
"""

from __future__ import annotations

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
from runtime.pipeline import SensorPipeline
from runtime.publish_hooks import PublishHook, WindowRef
from runtime.results import ResultPayloads
from runtime.results_table import BatchRows

Change = tuple[SensorPipeline, StateChange]


class ResultOutput:
    """Publishes one daemon's results; ``publisher()`` returns the current publisher (None when stopped)."""

    def __init__(self, config: DaemonConfig, metrics: Metrics, publisher: Callable[[], MqttPublisher | None],
                 hooks: Sequence[PublishHook] = ()) -> None:
        self.config = config
        self.metrics = metrics
        self.publisher = publisher
        self.hooks = hooks
        self.payloads = ResultPayloads(config.mqtt.device_id)
        mode = config.mqtt.predictions if config.mqtt.publish_predictions else None
        self.per_window = mode in ("window", "both")
        self.per_batch = mode in ("batch", "both")
        #: envelope diagnostics (runtime.diagnostics.monitor), set by the daemon when a sensor has them
        self.diagnostics: EnvelopeMonitor | None = None

    @property
    def results(self) -> bool:
        """Whether every window's result is published (``mqtt.publish_predictions``)."""
        return self.per_window or self.per_batch

    # -- inference thread -----------------------------------------------------------------------

    def publish_results(self, batch: BatchResult, rows: BatchRows, changes: list[Change],
                        pipes: Sequence[SensorPipeline | None]) -> None:
        """The batch's state changes and its results: at QoS 1 the events and the results in one
        outbox transaction (:meth:`MqttPublisher.publish_batch`), then the changed sensors' states.
        ``pipes``: the pipeline of each dense sensor index of ``rows``."""
        pub = self.publisher()
        if pub is None:
            return
        events = self._events(changes)
        t_wall, t_mono = batch_times(batch)
        refs = _refs(batch, rows, t_mono)
        per_window = self._window_predictions(batch, rows, refs, t_wall, pipes) if self.per_window else []
        qos0 = self.config.prediction_qos == 0
        whole = self._batch_payload(batch, rows, refs, t_wall, pipes, qos0) if self.per_batch else None
        if qos0:
            if events:
                pub.publish_events(events)
            for (sensor, _, _), payload in zip(refs, per_window, strict=False):
                pub.publish_prediction(sensor, payload)
            if whole is not None:
                assert not isinstance(whole, bytes)
                pub.publish_prediction_batch(whole)
        else:
            topic = pub.topics.prediction
            messages = [NewMessage(topic(ref[0]), encode_payload(payload, "prediction"), 1, False)
                        for ref, payload in zip(refs, per_window, strict=False)]
            if whole is not None:
                assert isinstance(whole, bytes)
                messages.append(NewMessage(pub.topics.predictions, whole, 1, False))
            _, stored = pub.publish_batch(events, messages)
            if self.per_window:
                self._enqueued(stored[: len(refs)], refs)
            if whole is not None:
                self._enqueued(stored[-1:] * len(refs), refs)
        for sp, _ in changes:
            self.publish_state(sp)

    def _enqueued(self, stored: list[int | None], refs: list[WindowRef]) -> None:
        for hook in self.hooks:
            hook.predictions_enqueued(stored, refs)

    def _window_predictions(self, batch: BatchResult, rows: BatchRows, refs: list[WindowRef],
                            t_wall: np.ndarray, pipes: Sequence[SensorPipeline | None]) -> list[Any]:
        """One payload per served window (``mqtt.predictions: window``); rounded with one numpy call."""
        rounded = np.round(batch.probs, 6).tolist()
        build = self.payloads.prediction
        out: list[Any] = []
        for i, j, (sensor, index, _), ts in zip(rows.pos.tolist(), rows.sensor.tolist(), refs,
                                                t_wall[rows.pos].tolist(), strict=True):
            sp = pipes[j]
            assert sp is not None
            out.append(build(sensor, index, ts, sp.model.metadata.classes, rounded[i]))
        return out

    def _batch_payload(self, batch: BatchResult, rows: BatchRows, refs: list[WindowRef],
                       t_wall: np.ndarray, pipes: Sequence[SensorPipeline | None], model_object: bool) -> Any:
        """One message for the whole batch (``mqtt.predictions: batch``): its encoded bytes (the
        outbox stores bytes; :meth:`ResultPayloads.prediction_batch_json`), or with ``model_object``
        the payload model (the QoS 0 publisher encodes it)."""
        sp = pipes[int(rows.sensor[0])]
        assert sp is not None
        model = sp.model.metadata  # a batch holds one model's windows
        whole = len(rows.pos) == batch.size
        build = self.payloads.prediction_batch if model_object else self.payloads.prediction_batch_json
        sensors, windows, _ = zip(*refs, strict=True)  # tuples: the payload takes any sequence
        return build(model.model.name, model.classes, sensors, windows,
                     (t_wall if whole else t_wall[rows.pos]).tolist(),
                     batch.probs if whole else batch.probs[rows.pos])

    # -- any thread --------------------------------------------------------------------------------

    def _events(self, changes: Sequence[Change]) -> list[tuple[str, Any]]:
        """The event payloads of ``changes`` (diagnosed sensors' events may wait for their evidence)."""
        if not changes:
            return []
        events = [(sp.sensor_id, self.payloads.event(ch, sp.model.identity).to_json_dict())
                  for sp, ch in changes]
        if self.diagnostics is not None:  # diagnosed sensors' events leave with their evidence, in order
            events = self.diagnostics.route(events, [ch for _, ch in changes])
        return events

    def publish_changes(self, changes: Sequence[Change]) -> None:
        """Events for the changes (one outbox transaction), then the changed sensors' states."""
        pub = self.publisher()
        if pub is None:
            return
        events = self._events(changes)
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


def _refs(batch: BatchResult, rows: BatchRows, t_mono: np.ndarray) -> list[WindowRef]:
    """(sensor, window index, t_mono) of every served window, in batch order (zipped in C: the
    hooks and the batch payload read them once per window)."""
    ids, index = batch_sensor_ids(batch), _indices(batch)
    if len(rows.pos) == len(ids):  # every window served
        return list(zip(ids, index, t_mono.tolist(), strict=True))
    at = rows.pos.tolist()
    return [(ids[i], index[i], t) for i, t in zip(at, t_mono[rows.pos].tolist(), strict=True)]


def batch_times(batch: BatchResult) -> tuple[np.ndarray, np.ndarray]:
    """Every window's wall-clock and monotonic time, as two arrays (the batch's own when it has them)."""
    wall, mono = getattr(batch, "t_wall", None), getattr(batch, "t_mono", None)
    if wall is not None and mono is not None:
        return wall, mono
    ws, n = batch.windows, batch.size
    return (np.fromiter((w.t_wall for w in ws), dtype=np.float64, count=n),
            np.fromiter((w.t_mono for w in ws), dtype=np.float64, count=n))


def batch_sensor_ids(batch: BatchResult) -> list[str]:
    """Every window's sensor id (the batch's own list when it has one)."""
    ids: list[str] | None = getattr(batch, "sensor_ids", None)
    return ids if ids is not None else [w.sensor_id for w in batch.windows]


def _indices(batch: BatchResult) -> list[int]:
    index = getattr(batch, "index", None)
    return index.tolist() if index is not None else [w.index for w in batch.windows]
