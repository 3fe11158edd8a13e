"""The batch payload written without building its model (ResultPayloads.prediction_batch_json) is
byte for byte what the model encodes (encode_payload of ResultPayloads.prediction_batch), on
random batches; what the model refuses is refused the same way."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import DataError
from runtime.mqtt.messages import PredictionBatchPayload
from runtime.mqtt.payload import encode_payload
from runtime.results import ResultPayloads

_TS = b',"ts":'


def _model_bytes(results: ResultPayloads, *args: Any) -> bytes:
    return encode_payload(results.prediction_batch(*args), "prediction batch")


def _same_but_ts(fast: bytes, slow: bytes) -> None:
    """Equal bytes up to the batch's own ``ts`` (time.time() at each build), which ends both."""
    assert fast[: fast.rindex(_TS)] == slow[: slow.rindex(_TS)]
    assert isinstance(json.loads(fast)["ts"], float)


text = st.text(min_size=1, max_size=12)  # any unicode: escapes and non-ASCII must come out the same
floats32 = st.floats(0.0, 1.0, width=32) | st.sampled_from([1e-7, 5e-7, 1e-6, 0.9999995, 0.0, 1.0])


@st.composite
def batches(draw: st.DrawFn) -> tuple[Any, ...]:
    k = draw(st.integers(1, 6))
    n = draw(st.integers(1, 40))
    classes = draw(st.lists(text, min_size=k, max_size=k))
    pool = draw(st.lists(text, min_size=1, max_size=8))
    sensors = [draw(st.sampled_from(pool)) for _ in range(n)]
    windows = draw(st.lists(st.integers(0, 2**62), min_size=n, max_size=n))
    stamps = st.floats(0.0, 4e9, allow_nan=False) | st.sampled_from([1.7e9 + 0.123456789, 0.0, 1e-300])
    ts = draw(st.lists(stamps, min_size=n, max_size=n))
    probs = np.array(draw(st.lists(st.lists(floats32, min_size=k, max_size=k), min_size=n, max_size=n)),
                     dtype=draw(st.sampled_from([np.float32, np.float64])))
    return draw(text), classes, sensors, windows, ts, probs


@settings(max_examples=200, deadline=None)
@given(device=text, batch=batches())
def test_the_fast_bytes_are_the_models_bytes(device: str, batch: tuple[Any, ...]) -> None:
    results = ResultPayloads(device)
    fast = results.prediction_batch_json(*batch)
    _same_but_ts(fast, _model_bytes(results, *batch))
    PredictionBatchPayload.model_validate_json(fast)
    again = results.prediction_batch_json(*batch)  # the kept head of the same shape
    _same_but_ts(again, fast)


def test_values_the_model_converts_or_refuses_take_the_models_way() -> None:
    results = ResultPayloads("dev")
    probs = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)
    args = ("m", ["a", "b"], ["s1", "s2"], [1, 2], [10.0, 11.0], probs)
    _same_but_ts(results.prediction_batch_json(*args), _model_bytes(results, *args))
    # an int where the model declares float, a bool where it declares int: the model converts them
    for odd in (("m", ["a", "b"], ["s1", "s2"], [1, 2], [10, 11.0], probs),
                ("m", ["a", "b"], ["s1", "s2"], [True, 2], [10.0, 11.0], probs),
                ("m", ["a", "b"], ["s1", "s2"], [np.int64(1), 2], [10.0, 11.0], probs)):
        _same_but_ts(results.prediction_batch_json(*odd), _model_bytes(results, *odd))
    # numbers JSON cannot carry: the model's DataError, naming the payload
    for bad in (("m", ["a", "b"], ["s1", "s2"], [1, 2], [10.0, float("nan")], probs),
                ("m", ["a", "b"], ["s1", "s2"], [1, 2], [10.0, 11.0], probs * np.float32(np.inf))):
        with pytest.raises(DataError, match="prediction batch"):
            results.prediction_batch_json(*bad)
