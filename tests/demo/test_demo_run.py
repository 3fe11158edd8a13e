"""`drsn-edge demo` end to end: a real broker, the real daemon, the packaged model, no torch.

The four machines of the kind the model knows are diagnosed and never go ``unfamiliar`` (the
verdict counts that as a false alarm); the fifth, of another kind, goes ``unfamiliar``.

The demo runs as a child process whose stdout is a pipe (not a terminal), so it prints plain
lines, and with ``import torch`` made impossible, so the device-side claim "the demo needs
only the runtime" is checked rather than assumed. Its exit code is its verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drsn_edge.assets import packaged_model
from drsn_edge.demo.scenario import default_scenario
from tests.support.broker import MosquittoBroker, mosquitto_binary

REPO = Path(__file__).resolve().parents[2]
DURATION = 10.0
#: the CLI in a child where torch cannot be imported, as on a device without it
NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed here (blocked by the test)")
        return None

sys.meta_path.insert(0, NoTorch())
from drsn_edge.cli import main
raise SystemExit(main())
"""


def run_demo(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    summary = tmp_path / "summary.json"
    argv = [sys.executable, "-c", NO_TORCH, "demo", "--duration", str(DURATION), "--json", str(summary),
            *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert summary.is_file(), f"no summary written; stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc, json.loads(summary.read_text())


def check_verdict(proc: subprocess.CompletedProcess[str], doc: Any) -> None:
    assert proc.returncode == 0, f"demo failed:\n{proc.stdout}\n{proc.stderr}"
    assert doc["passed"] is True and doc["problems"] == []
    scenario = default_scenario(DURATION)
    by_id = {m["sensor"]: m for m in doc["machines"]}
    assert set(by_id) == {m.sensor_id for m in scenario.machines}
    for machine in scenario.machines:
        got = by_id[machine.sensor_id]
        assert got["false_alarms"] == [] and got["wrong_class"] == []
        if machine.fault is None:
            assert got["final_state"] == "normal" and got["detected_at_s"] is None
            continue
        if machine.novel:  # the machine the model never saw went unfamiliar after its fault appeared
            assert got["final_state"] == "unfamiliar"
            assert machine.onset_s is not None and 0 < got["delay_s"] < DURATION - machine.onset_s
            assert "ok: unfamiliar" in proc.stdout
            assert f"{machine.sensor_id}     daemon published" in proc.stdout
            assert "-> unfamiliar" in proc.stdout
            continue
        assert got["final_state"] == machine.fault
        # published after the fault appeared, and within the rest of the run
        assert machine.onset_s is not None
        assert 0 < got["delay_s"] < DURATION - machine.onset_s
        assert f"ok: {machine.fault} detected" in proc.stdout
    assert "PASS" in proc.stdout


def test_demo_detects_every_fault_without_torch_on_the_builtin_broker(tmp_path: Path) -> None:
    proc, doc = run_demo(tmp_path)
    check_verdict(proc, doc)
    assert "built-in broker 127.0.0.1:" in proc.stdout
    # plain lines, not a redrawn table: the simulator's injection and the daemon's event, per fault
    assert "\x1b[" not in proc.stdout
    assert "fan-2       simulator: the bearing develops outer_race" in proc.stdout
    assert "fan-2       daemon published normal -> outer_race" in proc.stdout


@pytest.mark.skipif(mosquitto_binary() is None, reason="needs mosquitto: apt-get install mosquitto")
def test_demo_on_an_external_broker_leaves_no_retained_messages(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    with MosquittoBroker() as broker:
        proc, doc = run_demo(tmp_path, "--broker", f"{broker.host}:{broker.port}")
        check_verdict(proc, doc)
        assert f"broker {broker.host}:{broker.port}" in proc.stdout
        left: list[str] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.on_message = lambda _c, _u, msg: left.append(msg.topic)
        client.connect(broker.host, broker.port)
        client.subscribe("drsn-edge-demo/#", qos=1)
        client.loop_start()
        import time

        time.sleep(1.0)  # retained messages arrive right after SUBACK
        client.loop_stop()
        client.disconnect()
        assert left == [], f"the demo left retained messages on a shared broker: {left}"


def test_demo_with_a_model_of_other_classes_explains_the_mismatch(tmp_path: Path) -> None:
    cwru = packaged_model().with_name("drsn_cw_cwru0hp.onnx")
    if not cwru.is_file():
        pytest.skip(f"{cwru} is not packaged")
    argv = [sys.executable, "-c", NO_TORCH, "demo", "--duration", "10", "--model", str(cwru)]
    proc = subprocess.run(argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "omit --model" in proc.stderr and "inner_race" in proc.stderr
