"""runtime.results builds the published payloads from fault states, changes and probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtime.errors import DataError
from runtime.fault_state import FaultStateConfig, FaultStateTracker
from runtime.mqtt.messages import EventPayload, PredictionBatchPayload, StatePayload
from runtime.mqtt.payload import encode_payload
from runtime.results import ResultPayloads

CLASSES = ("normal", "ball", "inner_race")
MODEL = {"name": "m", "version": "1", "sha256": "ab", "precision": "fp32", "backend": "onnxruntime"}


def _tracker() -> FaultStateTracker:
    cfg = FaultStateConfig(history=1, min_windows=1, enter_threshold=0.5, exit_threshold=0.5)
    return FaultStateTracker("pump-1", CLASSES, "normal", cfg, start_seq=6)


def test_event_and_state_carry_the_wire_names_the_schema_and_rounded_confidence() -> None:
    t = _tracker()
    change = t.update(np.array([0.0, 0.123456789, 0.876543211]), 10.0)
    assert change is not None
    results = ResultPayloads("line-3")
    event = json.loads(encode_payload(results.event(change, MODEL), "event"))
    assert event["schema"] == 1 and event["seq"] == 7 and event["id"] == change.id
    wire = (event["sensor"], event["from"], event["to"], event["class"])
    assert wire == ("pump-1", "unknown", "inner_race", "inner_race")
    assert event["confidence"] == 0.876543 and event["device"] == "line-3" and event["model"]["name"] == "m"
    EventPayload.model_validate(event)

    state = json.loads(encode_payload(results.state(t.snapshot(), MODEL, ts=12.5), "state"))
    assert state["schema"] == 1 and state["state"] == state["class"] == "inner_race"
    assert (state["seq"], state["windows"], state["ts"], state["fault"]) == (7, 1, 12.5, True)
    assert "envelope" in state and state["envelope"] is None
    with_evidence = results.state(t.snapshot(), MODEL, {"envelope": {"verdict": "inner", "ts": 11.0}})
    assert isinstance(with_evidence, StatePayload) and with_evidence.envelope is not None
    assert with_evidence.envelope.verdict == "inner"


def test_a_value_json_cannot_carry_is_a_data_error_naming_the_payload() -> None:
    with pytest.raises(DataError, match=r"prediction of sensor 'fan'.*probs"):
        ResultPayloads.prediction("fan", 0, 1.0, CLASSES, [0.5, float("nan"), 0.5])


def test_a_batch_is_one_message_with_one_row_per_window() -> None:
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.2, 0.7]], dtype=np.float32)
    batch = ResultPayloads("d").prediction_batch("m", CLASSES, ["a", "b"], [3, 9], [1.0, 2.0], probs)
    wire = json.loads(encode_payload(batch, "prediction batch"))
    PredictionBatchPayload.model_validate(wire)
    assert wire["sensor"] == ["a", "b"] and wire["window"] == [3, 9] and wire["class_index"] == [0, 2]
    assert wire["confidence"] == pytest.approx([0.9, 0.7]) and len(wire["probs"]) == 2
    assert wire["classes"] == list(CLASSES) and wire["schema"] == 1
