"""The daemon runs and serves its sensors on a device where torch cannot be imported."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon.support import NO_TORCH, REPO, DaemonProcess, base_config, retained, topic, write_config
from tests.support.broker import MosquittoBroker


def test_the_blocker_really_hides_torch() -> None:
    probe = NO_TORCH.split("from drsn_edge.cli")[0] + "import torch\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode != 0 and "No module named 'torch' (blocked by the test)" in done.stderr


@pytest.mark.slow
def test_daemon_serves_its_sensors_without_torch(
    tmp_path: Path, broker: MosquittoBroker, daemon_process: Callable[[Path, Path], DaemonProcess]
) -> None:
    source = {"type": "synthetic", "pacing": "fast", "duration_s": 2.0,
              "sensors": [{"id": "pump-1", "condition": "outer_race"}, {"id": "pump-2", "condition": "ball"}]}
    cfg = base_config(broker.host, broker.port, tmp_path, [source], exit_when_sources_finish=True)
    proc = daemon_process(write_config(tmp_path / "no-torch.yaml", cfg), tmp_path / "daemon.log")

    # exit status 0 also means the child's final check found no torch module loaded
    assert proc.wait(60) == 0, proc.log()
    for sensor, condition in (("pump-1", "outer_race"), ("pump-2", "ball")):
        state = retained(broker.host, broker.port, topic(sensor, "state")).json()
        assert state["state"] == condition and state["windows"] == (24000 - 2048) // 512 + 1
