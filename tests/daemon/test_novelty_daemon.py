"""Novelty in the daemon, on a real broker with the packaged simulator model: a sensor fed by
another machine (other bearing geometry, shaft speed and resonance) goes ``unfamiliar`` and says
which class the model would have named, while sensors on the machine the model knows keep their
class; and the novelty config's bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from drsn_edge.study.novelty_sim import SECOND_GEOMETRY, SECOND_RESONANCE_HZ
from runtime.artifact import METADATA_KEY
from runtime.backends import OnnxRuntimeConfig, open_model
from runtime.batching import BatchResult
from runtime.config import BatchingConfig, validate_config_dict
from runtime.daemon import Daemon
from runtime.errors import ConfigError
from runtime.pipeline import open_model_runtime
from runtime.signals.simulator import BearingSimulator
from runtime.windowing import SensorWindower, Window
from tests.daemon.support import MODEL, RATE, Subscriber, base_config, retained, topic, unique_events
from tests.support.broker import MosquittoBroker

SECONDS = 4.0


def other_machine(path: Path, condition: str = "outer_race", seed: int = 3) -> Path:
    """A recording of a machine the model never saw (the novelty study's second machine)."""
    sim = BearingSimulator(condition, 1.0, RATE, rpm=1200.0, seed=seed, geometry=SECOND_GEOMETRY,
                           resonance_hz=SECOND_RESONANCE_HZ)
    np.save(path, np.asarray(sim.generate(round(SECONDS * RATE)), dtype=np.float32))
    return path


def config(host: str, port: int, tmp: Path, **extra: Any) -> dict[str, Any]:
    familiar = {"type": "synthetic", "pacing": "fast", "duration_s": SECONDS, "seed": 3, "sensors": [
        {"id": "fan", "condition": "normal"}, {"id": "mill", "condition": "inner_race", "severity": 0.7}]}
    stranger = {"type": "replay", "pacing": "fast", "loop": False, "files": [
        {"id": "press", "path": str(other_machine(tmp / "press.npy")), "sample_rate": RATE}]}
    return base_config(host, port, tmp, [familiar, stranger], exit_when_sources_finish=True, **extra)


@pytest.mark.slow
def test_another_machine_goes_unfamiliar_while_the_known_one_keeps_its_class(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Callable[..., Subscriber]
) -> None:
    p99 = open_model(MODEL).novelty["thresholds"]["p99"]  # type: ignore[index]
    cfg = config(broker.host, broker.port, tmp_path, novelty={"threshold": "p99"})
    sub = subscriber(topic("#"))
    daemon = Daemon(validate_config_dict(cfg))
    assert daemon.run(install_signals=False) == 0

    sub.wait_for(lambda s: any(e["to"] == "unfamiliar" for e in s.events("press")), 10, "press unfamiliar")
    state = retained(broker.host, broker.port, topic("press", "state")).json()
    assert state["state"] == state["class"] == "unfamiliar"
    assert state["class_index"] is None and state["fault"] is None
    # the model alone would say "ball" with near certainty: wrong, the recording is an outer-race fault
    assert state["closest_class"] == "ball" and state["closest_probability"] > 0.9
    assert state["novelty_score"] > p99
    entered = [e for e in unique_events(sub.events("press")) if e["to"] == "unfamiliar"]
    assert len(entered) == 1 and entered[0]["closest_class"] == "ball"
    assert "novelty score" in entered[0]["reason"]

    for sensor, truth in (("fan", "normal"), ("mill", "inner_race")):
        events = unique_events(sub.events(sensor))
        assert [e["to"] for e in events] == [truth], f"{sensor}: {events}"
        known = retained(broker.host, broker.port, topic(sensor, "state")).json()
        assert known["state"] == truth and known["closest_class"] is None

    scored = daemon.metrics.snapshot()["novelty_score"]
    windows = 3 * ((round(SECONDS * RATE) - 2048) // 512 + 1)
    assert scored["count"] == windows  # every window of the three sensors was scored


@pytest.mark.slow
def test_novelty_off_for_one_sensor_keeps_its_class_decision(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Callable[..., Subscriber]
) -> None:
    cfg = config(broker.host, broker.port, tmp_path, novelty={"threshold": "p99"})
    cfg["sensors"] = {"press": {"novelty": {"threshold": "off"}}}
    sub = subscriber(topic("#"))
    assert Daemon(validate_config_dict(cfg)).run(install_signals=False) == 0
    sub.wait_for(lambda s: bool(s.events("press")), 10, "an event of press")
    state = retained(broker.host, broker.port, topic("press", "state")).json()
    assert state["state"] == "ball"  # the confident wrong answer novelty exists to catch
    assert not any(e["to"] == "unfamiliar" for e in sub.events("press"))


def test_novelty_is_off_unless_configured() -> None:
    cfg = validate_config_dict(base_config("localhost", 1883, Path("/tmp"), [
        {"type": "synthetic", "sensors": [{"id": "fan"}]}]))
    assert cfg.novelty.threshold == "off"


@pytest.mark.parametrize(("novelty", "needle"), [
    ({"threshold": "p95"}, "threshold"),
    ({"history": 0}, "history"),
    ({"exit_ratio": 1.5}, "exit_ratio"),
    ({"min_duration_s": -2}, "min_duration_s"),
    ({"thresold": "p99"}, "thresold"),
])
def test_bad_novelty_config_is_refused_naming_the_field(novelty: dict[str, Any], needle: str) -> None:
    raw = base_config("localhost", 1883, Path("/tmp"), [{"type": "synthetic", "sensors": [{"id": "fan"}]}],
                      novelty=novelty)
    with pytest.raises(ConfigError, match=needle):
        validate_config_dict(raw)


def with_novelty(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the packaged model whose metadata's novelty section ``edit`` changed."""
    proto = onnx.load(str(src))
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            meta = json.loads(prop.value)
            edit(meta)
            prop.value = json.dumps(meta)
    onnx.save(proto, str(dst))
    return dst


def _singular(meta: dict[str, Any]) -> None:
    meta["novelty"]["covariance"] = np.zeros_like(np.asarray(meta["novelty"]["covariance"])).tolist()


def _truncated(meta: dict[str, Any]) -> None:
    del meta["novelty"]["means"]


@pytest.mark.parametrize("edit", [_singular, _truncated], ids=["singular covariance", "missing means"])
def test_broken_novelty_statistics_turn_novelty_off_and_the_model_serves(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], caplog: pytest.LogCaptureFixture
) -> None:
    model = with_novelty(MODEL, tmp_path / "broken.onnx", edit)
    seen: list[BatchResult] = []
    backend = OnnxRuntimeConfig(providers=["CPUExecutionProvider"], intra_op_threads=1)
    with caplog.at_level("ERROR", logger="runtime.pipeline"):
        runtime = open_model_runtime(model, backend, BatchingConfig(max_batch=4, max_wait_ms=1), seen.append)
    try:
        assert runtime.scorer is None
        assert any("novelty is off for broken.onnx" in r.getMessage() for r in caplog.records)
        x = np.stack([w.data for w in SensorWindower("s", RATE, runtime.metadata).push(
            np.asarray(BearingSimulator("inner_race", 1.0, RATE, seed=1).generate(4096), dtype=np.float32))])
        runtime.batcher.submit_many([Window("s", i, x[i], i, 0.0, 0.0) for i in range(len(x))])
    finally:
        runtime.close()
    assert sum(b.size for b in seen) == len(x)
    assert all(b.probs.argmax(axis=1).tolist() == [2] * b.size for b in seen)  # still classifies
