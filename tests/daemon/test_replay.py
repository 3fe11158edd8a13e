"""Replaying a recording of a known fault, as fast as possible, ends in that fault's retained state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from tests.daemon.support import RATE, DaemonProcess, base_config, retained, simulate, topic, write_config
from tests.support.broker import MosquittoBroker


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["wav", "npy"])
def test_fast_replay_of_an_inner_race_fault_ends_in_inner_race(
    fmt: str, tmp_path: Path, broker: MosquittoBroker, daemon_process: Callable[[Path, Path], DaemonProcess]
) -> None:
    x = simulate("inner_race", seconds=4.0, seed=11)
    rec = tmp_path / f"bearing-ir.{fmt}"
    if fmt == "wav":
        wavfile.write(rec, int(RATE), x)  # float32 WAV: the rate travels in the header
        entry = {"id": "gearbox-de", "path": rec.name}
    else:
        np.save(rec, x)
        entry = {"id": "gearbox-de", "path": rec.name, "sample_rate": RATE}
    cfg = base_config(broker.host, broker.port, tmp_path,
                      [{"type": "replay", "files": [entry], "pacing": "fast", "loop": False}],
                      exit_when_sources_finish=True)
    proc = daemon_process(write_config(tmp_path / "replay.yaml", cfg), tmp_path / "daemon.log")

    assert proc.wait(60) == 0, proc.log()

    state = retained(broker.host, broker.port, topic("gearbox-de", "state")).json()
    assert state["state"] == "inner_race" and state["fault"] is True
    assert state["windows"] == (x.size - 2048) // 512 + 1  # every window of the file was classified
    assert state["model"]["name"] == "drsn_cw_paper"
    assert retained(broker.host, broker.port, topic("status")).payload == b"stopped"
