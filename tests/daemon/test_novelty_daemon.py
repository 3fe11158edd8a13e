"""Novelty in the daemon, on a real broker with the packaged simulator model: a sensor fed by
another machine (other bearing geometry, shaft speed and resonance) goes ``unfamiliar`` and says
which class the model would have named, while sensors on the machine the model knows keep their
class; and the novelty config's bad input."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from drsn_edge.novelty.learn import learn_baseline
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
    stats = open_model(MODEL).novelty
    p99 = stats["thresholds"]["p99"]  # type: ignore[index]
    # the packaged model's score reads the windows: the daemon must hand the scorer each batch's
    # normalised model inputs, or every batch's scoring fails and nothing goes unfamiliar
    assert stats["score"] == "sqrt_envelope_mahalanobis" and stats["envelope_bands"] == 4  # type: ignore[index]
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


def test_novelty_is_on_at_p999_for_a_second_unless_turned_off() -> None:
    sources = [{"type": "synthetic", "sensors": [{"id": "fan"}]}]
    cfg = validate_config_dict(base_config("localhost", 1883, Path("/tmp"), sources))
    assert (cfg.novelty.threshold, cfg.novelty.min_duration_s) == ("p99.9", 1.0)  # docs/novelty.md, default
    off = validate_config_dict(
        base_config("localhost", 1883, Path("/tmp"), sources, novelty={"threshold": "off"})
    )
    assert off.novelty.threshold == "off"


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


def second_machine(condition: str, seconds: float, seed: int) -> np.ndarray:
    sim = BearingSimulator(condition, 1.0, RATE, rpm=1200.0, seed=seed, geometry=SECOND_GEOMETRY,
                           resonance_hz=SECOND_RESONANCE_HZ)
    return np.asarray(sim.generate(round(seconds * RATE)), dtype=np.float32)


def baseline_config(host: str, port: int, tmp: Path, recording: np.ndarray, name: str) -> dict[str, Any]:
    np.save(tmp / name, recording)
    source = {"type": "replay", "pacing": "fast", "loop": False, "files": [
        {"id": "press", "path": str(tmp / name), "sample_rate": RATE}]}
    cfg = base_config(host, port, tmp, [source], exit_when_sources_finish=True, state_dir="state")
    cfg["sensors"] = {"press": {"novelty": {"threshold": "off"}, "baseline": {"learn": "10s"}}}
    return cfg


@pytest.mark.slow
def test_a_learned_baseline_survives_a_restart_and_flags_a_later_fault_as_anomalous(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Callable[..., Subscriber]
) -> None:
    """Commissioning: 10 s of the machine running healthy are learned (and stored), 6 s more stay
    normal (3 s learned gave 12 false flags in 230 windows offline: learn longer); after a restart
    the stored baseline is used at once and a fault makes the state anomalous, which the
    training-data score (off here) is not asked to report."""
    sub = subscriber(topic("#"))
    healthy = baseline_config(broker.host, broker.port, tmp_path, second_machine("normal", 16.0, 1), "h.npy")
    healthy["state_dir"] = str(tmp_path / "state")
    assert Daemon(validate_config_dict(healthy)).run(install_signals=False) == 0
    stored = tmp_path / "state" / "baselines" / "press.json"
    assert stored.is_file()
    sub.wait_for(lambda s: bool(s.events("press")), 10, "press normal")
    assert [e["to"] for e in unique_events(sub.events("press"))] == ["normal"]  # no false alarm

    written = stored.stat().st_mtime_ns
    faulty = baseline_config(broker.host, broker.port, tmp_path, np.concatenate(
        [second_machine("normal", 1.0, 2), second_machine("outer_race", 3.0, 2)]), "f.npy")
    faulty["state_dir"] = str(tmp_path / "state")
    assert Daemon(validate_config_dict(faulty)).run(install_signals=False) == 0
    sub.wait_for(lambda s: any(e["to"] == "anomalous" for e in s.events("press")), 10, "press anomalous")
    state = retained(broker.host, broker.port, topic("press", "state")).json()
    assert state["state"] == "anomalous" and state["closest_class"] is not None
    assert state["novelty_score"] > 0
    assert stored.stat().st_mtime_ns == written  # used as stored, not learned again


def test_a_baseline_without_state_dir_or_with_a_bad_duration_is_refused(tmp_path: Path) -> None:
    cfg = baseline_config("localhost", 1883, tmp_path, np.zeros(4096, dtype=np.float32), "z.npy")
    del cfg["state_dir"]
    with pytest.raises(ConfigError, match="state_dir"):
        validate_config_dict(cfg)
    cfg["sensors"]["press"]["baseline"]["learn"] = "soon"
    cfg["state_dir"] = str(tmp_path)
    with pytest.raises(ConfigError, match="not a duration"):
        validate_config_dict(cfg)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_the_relearn_command_learns_the_baseline_again_and_stores_it(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    """A baseline learned beforehand (`drsn-edge baseline`) is used as stored; the MQTT command
    {"action": "relearn", "sensor": "press"} learns it again from the next windows and replaces the
    file; unknown sensors and sensors without a baseline are refused without effect."""
    np.save(tmp_path / "healthy.npy", second_machine("normal", 10.0, 4))
    learned = learn_baseline(MODEL, [tmp_path / "healthy.npy"], state_dir=tmp_path / "state", sensor="press",
                             rate=RATE)
    before = learned.path.read_bytes()
    source = {"type": "synthetic", "pacing": "realtime", "chunk": 512, "sensors": [
        {"id": "press", "condition": "normal", "rpm": 1500.0}, {"id": "fan", "condition": "normal"}]}
    cfg = base_config(broker.host, broker.port, tmp_path, [source], state_dir=str(tmp_path / "state"))
    # hop 128: 2.5 s of signal are 235 windows, over the 200 a 16-feature baseline needs
    cfg["sensors"] = {"press": {"novelty": {"threshold": "off"}, "baseline": {"learn": "2.5s"}, "hop": 128}}
    daemon = Daemon(validate_config_dict(cfg))
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="operator")
    sender.connect(broker.host, broker.port)
    sender.loop_start()
    try:
        daemon.start()
        press = daemon.sensors["press"].novelty
        assert press is not None and press.baseline is not None and not press.learning  # used as stored
        for bad in ({"action": "relearn", "sensor": "nope"}, {"action": "relearn", "sensor": "fan"},
                    {"action": "relearn"}):
            sender.publish(topic("cmd"), json.dumps(bad), qos=1).wait_for_publish(5)
        sender.publish(topic("cmd"), json.dumps({"action": "relearn", "sensor": "press"}),
                       qos=1).wait_for_publish(5)
        wait_until(lambda: press.learning, 5, "press to start learning")
        fan = daemon.sensors["fan"].novelty  # novelty on by default, but no baseline to relearn
        assert fan is None or (fan.baseline is None and not fan.learning)
        wait_until(lambda: not press.learning and learned.path.read_bytes() != before, 15, "the new baseline")
    finally:
        daemon.stop()
        sender.loop_stop()
        sender.disconnect()
    assert press.baseline is not None and press.baseline.n + press.baseline.n_holdout == math.ceil(
        2.5 * RATE / 128)
