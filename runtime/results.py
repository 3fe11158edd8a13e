"""What the daemon decided, as the typed payloads it publishes.

The daemon's lifecycle and routing live in :mod:`runtime.daemon`; this module only turns fault
states, state changes, window probabilities and metrics into the models of
:mod:`runtime.mqtt.messages`, so the contract with subscribers is built in one place.

State and event payloads are filled from the fields of :class:`~runtime.fault_state.StateSnapshot`
and :class:`~runtime.fault_state.StateChange` by name (with the few renames below), so a field
added to a snapshot or a change and declared on its payload model flows through without an
edit here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from pydantic import ValidationError
from pydantic_core import to_json

from runtime.errors import DataError
from runtime.fault_state import StateChange, StateSnapshot
from runtime.mqtt.messages import (
    SCHEMA_VERSION,
    EventPayload,
    MetricsPayload,
    Payload,
    PredictionBatchPayload,
    PredictionPayload,
    StatePayload,
)
from runtime.mqtt.payload import encode_payload

P = TypeVar("P", bound=Payload)

#: dataclass field -> wire name, where they differ
_SNAPSHOT_NAMES = {"sensor_id": "sensor"}
_CHANGE_NAMES = {"sensor_id": "sensor", "from_state": "from", "to_state": "to", "since": "previous_since"}
_DIGITS = 6  # probabilities are published to 6 decimals: enough for any threshold, half the bytes


def _fields(obj: Any, names: Mapping[str, str]) -> dict[str, Any]:
    return {names.get(f.name, f.name): getattr(obj, f.name) for f in dataclasses.fields(obj)}


def build(model: type[P], fields: Mapping[str, Any], what: str) -> P:
    """Validate ``fields`` as ``model``; a value the contract does not allow (NaN, a wrong type)
    is a DataError naming the payload, not a malformed message on the wire."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DataError(f"{what} payload does not match its schema ({exc.error_count()} error(s)): "
                        f"{first['loc']}: {first['msg']}; fix the value that sets it") from exc


class ResultPayloads:
    """Builds the payloads of one daemon (``device`` is its ``mqtt.device_id``)."""

    def __init__(self, device: str) -> None:
        self.device = device
        #: (model, classes, sensors) -> the encoded head of a batch payload (see _head)
        self._heads: dict[tuple[str, tuple[str, ...], tuple[str, ...]], bytes | None] = {}

    def state(self, snapshot: StateSnapshot, model: Mapping[str, Any], extra: Mapping[str, Any] | None = None,
              ts: float | None = None) -> StatePayload:
        """The retained state of one sensor; ``extra``: optional fields such as envelope evidence."""
        fields = _fields(snapshot, _SNAPSHOT_NAMES)
        fields.update(extra or {})
        fields.update({"class": snapshot.state, "confidence": round(snapshot.confidence, _DIGITS),
                       "device": self.device, "model": model, "ts": time.time() if ts is None else ts})
        return build(StatePayload, fields, f"state of sensor {snapshot.sensor_id!r}")

    def event(self, change: StateChange, model: Mapping[str, Any]) -> EventPayload:
        """One state change (an event through the outbox)."""
        fields = _fields(change, _CHANGE_NAMES)
        fields.update({"class": change.to_state, "confidence": round(change.confidence, _DIGITS),
                       "device": self.device, "model": model})
        return build(EventPayload, fields, f"event of sensor {change.sensor_id!r}")

    @staticmethod
    def prediction(sensor: str, window: int, ts: float, classes: Sequence[str],
                   probs: list[float]) -> PredictionPayload:
        """One window's classification; ``probs`` already rounded (one numpy call per batch)."""
        k = max(range(len(probs)), key=probs.__getitem__)
        return build(PredictionPayload, {"sensor": sensor, "window": window, "ts": ts, "class": classes[k],
                                         "confidence": probs[k], "probs": probs},
                     f"prediction of sensor {sensor!r}")

    def prediction_batch(self, model: str, classes: Sequence[str], sensors: Sequence[str],
                         windows: Sequence[int], ts: Sequence[float],
                         probs: np.ndarray) -> PredictionBatchPayload:
        """Every window of one inference batch in one message, as arrays (one row per window)."""
        rounded = np.round(probs, _DIGITS)
        top = rounded.argmax(axis=1)
        return build(PredictionBatchPayload, {
            "device": self.device, "model": model, "classes": list(classes), "sensor": list(sensors),
            "window": list(windows), "window_ts": list(ts), "class_index": top.tolist(),
            "confidence": rounded[np.arange(len(top)), top].tolist(), "probs": rounded.tolist(),
            "ts": time.time()}, f"prediction batch of model {model!r}")

    def prediction_batch_json(self, model: str, classes: Sequence[str], sensors: Sequence[str],
                              windows: Sequence[int], ts: Sequence[float], probs: np.ndarray) -> bytes:
        """:meth:`prediction_batch` encoded as :func:`~runtime.mqtt.payload.encode_payload` encodes it,
        byte for byte, without building the model: validating and dumping a model of a few hundred
        numbers cost the inference thread more per batch than the fault states of all its windows.

        The model stays the schema (a test holds the two to the same bytes on random batches), and
        the same serializer (pydantic-core's) writes the values. The fields that repeat batch after
        batch (device, model, classes, the batch's sensors) are encoded once per shape and kept.
        Anything the model would refuse or convert (a number that is not finite, a value not of
        the field's exact type, arrays of different lengths) goes through :meth:`prediction_batch`,
        which raises its DataError or converts as it always did.
        """
        rounded = np.round(probs, _DIGITS)
        n = len(sensors)
        head = self._head(model, classes, sensors)
        if (head is None or rounded.ndim != 2 or len(rounded) != n or not _all(windows, int, n)
                or not _all(ts, float, n) or not math.isfinite(sum(ts))
                or not math.isfinite(_SUM(rounded, axis=None))):  # a sum of finite values is finite
            return encode_payload(self.prediction_batch(model, classes, sensors, windows, ts, probs),
                                  "prediction batch")
        top = rounded.argmax(axis=1)
        rest = to_json({"window": list(windows), "window_ts": list(ts), "class_index": top.tolist(),
                        "confidence": rounded[_arange(n), top].tolist(), "probs": rounded.tolist(),
                        "ts": time.time()})
        return head + rest[1:]  # rest's own "{" gives way to the head's fields

    def _head(self, model: str, classes: Sequence[str], sensors: Sequence[str]) -> bytes | None:
        """The encoded fields of a batch payload before ``window``, ending in a comma; None when
        one of them is not of the model's type (the model then builds the payload)."""
        key = (model, tuple(classes), tuple(sensors))
        head = self._heads.get(key, b"")
        if head == b"":
            if len(self._heads) >= _HEADS:
                self._heads.clear()
            plain = (type(model) is str and type(self.device) is str and _all(classes, str, len(classes))
                     and _all(sensors, str, len(sensors)))
            head = self._heads[key] = to_json({
                "schema": SCHEMA_VERSION, "device": self.device, "model": model, "classes": list(classes),
                "sensor": list(sensors)})[:-1] + b"," if plain else None
        return head

    @staticmethod
    def metrics(snapshot: Mapping[str, Any], mqtt: Mapping[str, Any] | None,
                disabled: Mapping[str, str]) -> MetricsPayload:
        """The periodic metrics message: the Prometheus counters plus the broker link's figures."""
        fields = dict(snapshot)
        if mqtt is not None:
            fields["mqtt"] = dict(mqtt)
        fields.update({"disabled_sensors": dict(disabled), "ts": time.time()})
        return build(MetricsPayload, fields, "metrics")


_SUM = np.add.reduce


@functools.lru_cache(maxsize=64)
def _arange(n: int) -> np.ndarray:
    out = np.arange(n)
    out.flags.writeable = False
    return out
#: encoded payload heads kept (ResultPayloads._heads): one per batch shape and model
_HEADS = 256


def _all(values: Sequence[Any], kind: type, n: int) -> bool:
    """Whether ``values`` has ``n`` items, each of type ``kind`` exactly (a bool is no int here)."""
    return len(values) == n and (not n or set(map(type, values)) == {kind})
