"""The registry, the config union, and what the base class promises every source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from runtime.errors import DataError
from runtime.sources import SOURCES, SampleChunk, SourceConfig, create_source
from runtime.sources.replay import ReplaySource
from runtime.sources.udp import UdpSensor, UdpSource, UdpSourceConfig
from tests.sources.collector import Collector

ADAPTER: TypeAdapter[Any] = TypeAdapter(SourceConfig)


def test_registry_keys_match_config_and_source_types() -> None:
    for key, (config_cls, source_cls) in SOURCES.items():
        assert config_cls.model_fields["type"].default == key
        assert source_cls.type == key


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """Every pydantic model reachable from a field annotation (list[X], X | None, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models(field.annotation)
    for arg in get_args(annotation):
        yield from _models(arg)


def test_every_config_field_is_described_including_nested_ones() -> None:
    models = {m for config_cls, _ in SOURCES.values() for m in _models(config_cls)}
    assert {"SyntheticSensor", "FaultStep", "SeverityRamp", "MqttRawSensor", "ReplayFile"} <= {
        m.__name__ for m in models}
    missing = [f"{m.__name__}.{name}" for m in models for name, f in m.model_fields.items()
               if not f.description]
    assert missing == []


def test_union_picks_the_config_by_type_and_create_source_builds_it() -> None:
    config = ADAPTER.validate_python({"type": "udp", "port": 0, "sensors": [{"id": "s", "sample_rate": 100}]})
    assert isinstance(config, UdpSourceConfig)
    source = create_source(config)
    assert isinstance(source, UdpSource) and source.sensors == {"s": 100.0}


def test_unknown_type_and_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        ADAPTER.validate_python({"type": "serial", "sensors": []})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ADAPTER.validate_python({"type": "udp", "port": 1, "sensors": [{"id": "s", "sample_rate": 1}],
                                 "prot": 2})


def test_create_source_refuses_a_foreign_object() -> None:
    with pytest.raises(TypeError, match="source types are mqtt_raw, replay, synthetic, udp"):
        create_source(UdpSensor(id="s", sample_rate=1.0))


def test_chunk_is_float32_and_one_dimensional() -> None:
    chunk = SampleChunk("s", np.arange(4, dtype=np.float64), 100.0, 0, 0.0)
    assert chunk.samples.dtype == np.float32 and chunk.duration == pytest.approx(0.04)
    with pytest.raises(DataError, match="1-D array"):
        SampleChunk("s", np.zeros((2, 2)), 100.0, 0, 0.0)


def test_a_failing_consumer_is_reported_and_the_source_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.arange(1000, dtype=np.float32))
    source = create_source(ADAPTER.validate_python(
        {"type": "replay", "files": [{"id": "s", "path": str(path), "sample_rate": 1000}],
         "pacing": "fast", "loop": False, "chunk": 100}))
    assert isinstance(source, ReplaySource)
    got = Collector()

    def picky(chunk: SampleChunk) -> None:
        if chunk.seq == 3:
            raise RuntimeError("queue full")
        got.emit(chunk)

    source.start(picky, got.on_error)
    assert source.finished.wait(5)
    source.stop()
    assert [c.seq for c in got.chunks] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert [(sid, str(exc)) for sid, exc in got.errors] == [("s", "queue full")]
    with pytest.raises(RuntimeError, match="already started"):
        source.start(got.emit, got.on_error)
