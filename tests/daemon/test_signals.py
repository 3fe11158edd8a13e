"""Signals a service manager sends: SIGHUP reloads the model file, SIGTERM stops with ``stopped``.

A replacement with a new model version is swapped in (the retained state names it); a corrupt
replacement is refused and the loaded model keeps classifying.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from runtime.artifact import METADATA_KEY
from runtime.backends import open_model
from tests.daemon.support import (
    MODEL,
    DaemonProcess,
    Subscriber,
    base_config,
    retained,
    topic,
    unique_events,
    write_config,
)
from tests.support.broker import MosquittoBroker


def replace_atomically(target: Path, data: bytes) -> None:
    """What a deployment tool does: write beside the file, then rename over it."""
    tmp = target.with_name(target.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def with_version(version: str) -> bytes:
    proto = onnx.load(str(MODEL))
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            meta = json.loads(prop.value)
            meta["model"]["version"] = version
            prop.value = json.dumps(meta)
    return proto.SerializeToString()


def wait_log(proc: DaemonProcess, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.log():
        assert proc.proc.poll() is None, f"daemon exited:\n{proc.log()}"
        assert time.monotonic() < deadline, f"{text!r} not logged within {timeout} s:\n{proc.log()}"
        time.sleep(0.05)


def windows_classified(sub: Subscriber) -> float:
    return max((m.json()["windows"]["total"] for m in sub.on(topic("metrics"))), default=0.0)


@pytest.mark.slow
def test_sighup_swaps_a_new_model_keeps_the_old_on_a_corrupt_one_and_sigterm_says_stopped(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Callable[..., Subscriber],
    daemon_process: Callable[[Path, Path], DaemonProcess],
) -> None:
    model = tmp_path / "models" / "bearing.onnx"
    model.parent.mkdir()
    shutil.copy(MODEL, model)
    source = {"type": "synthetic", "pacing": "realtime", "chunk": 512,
              "sensors": [{"id": "mill-1", "condition": "inner_race"}]}
    cfg = base_config(broker.host, broker.port, tmp_path, [source], model="models/bearing.onnx")
    sub = subscriber()
    proc = daemon_process(write_config(tmp_path / "daemon.yaml", cfg), tmp_path / "daemon.log")
    state = topic("mill-1", "state")
    sub.wait_for(lambda s: any(m.json()["state"] == "inner_race" for m in s.on(state)), 20, "inner_race")
    old_version = open_model(MODEL).model.version
    new_version = f"{old_version}-reloaded"
    assert sub.on(state)[-1].json()["model"]["version"] == old_version

    replace_atomically(model, b"this is not an ONNX model" * 100)
    proc.signal(signal.SIGHUP)
    wait_log(proc, "is unusable")
    before = windows_classified(sub)
    sub.wait_for(lambda s: windows_classified(s) >= before + 10, 10,
                 "windows classified after the refused reload")
    assert proc.proc.poll() is None

    replace_atomically(model, with_version(new_version))
    proc.signal(signal.SIGHUP)
    sub.wait_for(lambda s: any(m.json()["model"]["version"] == new_version for m in s.on(state)), 15,
                 "the state to name the reloaded model's version")
    sub.wait_for(lambda s: s.on(state)[-1].json()["state"] == "inner_race", 10,
                 "the new model to classify mill-1 again")

    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0, proc.log()
    assert retained(broker.host, broker.port, topic("status")).payload == b"stopped"
    final = retained(broker.host, broker.port, state).json()
    assert final["model"]["version"] == new_version and final["state"] == "inner_race"
    events = unique_events(sub.events("mill-1"))
    assert [(e["from"], e["to"], e["model"]["version"]) for e in events] == [
        ("unknown", "inner_race", old_version),
        ("inner_race", "unknown", old_version),  # the reload leaves the old model's verdict with an event
        ("unknown", "inner_race", new_version),
    ]
    assert [e["seq"] for e in events] == [1, 2, 3] and events[1]["reason"] == "model reloaded"
