"""Helpers for the daemon tests: configs on disk, a recording MQTT subscriber, the daemon as a process.

Everything here is real: configs are YAML files read by ``load_config``, the subscriber is a
paho client on the test's Mosquitto, and :class:`DaemonProcess` runs ``python -m drsn_edge run``
in a child process (with torch made unimportable, as on a Jetson without it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from runtime.signals.simulator import BearingSimulator

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"
DEVICE = "line-3"
PREFIX = "drsn-edge"
RATE = 12000.0

#: Run the CLI in a child where ``import torch`` fails exactly as on a device without torch. A
#: meta-path finder is used rather than ``sys.modules['torch'] = None``: libraries such as scipy
#: look torch up in ``sys.modules`` and break on a ``None`` there, which no real device shows.
NO_TORCH = """
import sys
from importlib.abc import MetaPathFinder

class NoTorch(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, NoTorch())
from drsn_edge.cli import main
status = main()
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
raise SystemExit(status)
"""


def topic(*levels: str) -> str:
    return "/".join((PREFIX, DEVICE, *levels))


def fast_fault_state() -> dict[str, Any]:
    """Fault-state settings that follow a condition change within a few windows."""
    return {"smoothing": "mean", "history": 3, "min_windows": 3, "enter_threshold": 0.6,
            "exit_threshold": 0.4, "min_duration_s": 0.0}


def base_config(
    host: str, port: int, tmp: Path, sources: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """A daemon config for the test broker: the real model, ORT on one thread, a private outbox."""
    cfg: dict[str, Any] = {
        "model": str(MODEL),
        "backend": {"type": "onnxruntime", "providers": ["CPUExecutionProvider"], "intra_op_threads": 1},
        "sources": sources,
        "fault_state": fast_fault_state(),
        "batching": {"max_batch": 16, "max_wait_ms": 5},
        "mqtt": {
            "host": host, "port": port, "device_id": DEVICE, "topic_prefix": PREFIX,
            "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "connect_timeout_s": 2.0, "keepalive_s": 5,
            "metrics_interval_s": 0.5,
            "outbox": {"path": str(tmp / "outbox.sqlite3"), "synchronous": "normal"},
        },
        "logging": {"level": "INFO"},
    }
    cfg.update(extra)
    return cfg


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def simulate(condition: str, seconds: float, seed: int = 3) -> np.ndarray:
    sim = BearingSimulator(condition=condition, severity=1.0, sample_rate=RATE, seed=seed)
    return np.asarray(sim.generate(round(seconds * RATE)), dtype=np.float32)


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    retain: bool
    t: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A paho client that records every message on ``filters`` (QoS 1), re-subscribing on reconnect.

    ``client_id`` + ``clean=False`` gives a persistent session: a broker with persistence keeps
    the subscription and queues QoS 1 messages across its own restart.
    """

    def __init__(self, host: str, port: int, filters: tuple[str, ...] = (f"{PREFIX}/#",),
                 client_id: str = "", clean: bool = True) -> None:
        self.messages: list[Msg] = []
        self._cond = threading.Condition()
        self._filters = filters
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in self._filters])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_disconnect = lambda *_: self.subscribed.clear()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=5)
        self.client.loop_start()
        assert self.subscribed.wait(5), "the test subscriber could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Msg(msg.topic, bytes(msg.payload), bool(msg.retain), time.time()))
            self._cond.notify_all()

    def on(self, topic_name: str) -> list[Msg]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic_name]

    def wait_for(self, predicate: Callable[[Subscriber], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({m.topic for m in self.messages})
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                         f"topics seen: {seen}")
                self._cond.wait(min(left, 0.2))

    def wait_payload(self, topic_name: str, payload: bytes, timeout: float = 10.0) -> None:
        self.wait_for(lambda s: any(m.payload == payload for m in s.on(topic_name)), timeout,
                      f"{payload!r} on {topic_name}")

    def events(self, sensor: str) -> list[dict[str, Any]]:
        return [m.json() for m in self.on(topic(sensor, "event"))]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def unique_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop redeliveries: QoS 1 may deliver an event twice, and its id says it is the same one."""
    seen: set[str] = set()
    out = []
    for e in events:
        if e["id"] not in seen:
            seen.add(e["id"])
            out.append(e)
    return out


def retained(host: str, port: int, topic_name: str, timeout: float = 5.0) -> Msg:
    """Subscribe afresh and return the retained message on ``topic_name``."""
    sub = Subscriber(host, port, (topic_name,))
    try:
        sub.wait_for(lambda s: any(m.retain for m in s.on(topic_name)), timeout, f"retained {topic_name}")
        return next(m for m in sub.on(topic_name) if m.retain)
    finally:
        sub.close()


class DaemonProcess:
    """``python -m drsn_edge run --config ...`` in a child process without torch; logs to a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self._log = open(log, "ab")  # noqa: SIM115 - closed in wait()/kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", NO_TORCH, "run", "--config", str(config)],
            cwd=str(config.parent), env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise AssertionError(f"daemon did not exit within {timeout} s; log:\n{self.log()}") from exc
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]
