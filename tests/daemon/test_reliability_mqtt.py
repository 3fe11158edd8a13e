"""The daemon process against hostile MQTT conditions: a real Mosquitto, ``drsn-edge run`` as a child.

* A 2 KB command of nested brackets once ended paho's network thread: PUBACKs were never read
  again while the daemon looked connected. Now events keep being acknowledged after it.
* A full disk once lost events silently. Now they are held in memory and written when space
  returns: no event lost, seq contiguous, states published throughout (a real tmpfs, root only).
* A corrupt outbox once crashed the daemon at every start. Now it is moved aside and reported.
* A broker that accepts but never acknowledges makes the daemon exit non-zero, for systemd.
* A clean stop logs no ERROR; systemd hears READY, WATCHDOG and STOPPING.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.publish as mqtt_publish
import pytest

from runtime.mqtt.outbox import NewMessage, Outbox
from tests.daemon.support import DaemonProcess, Subscriber, base_config, topic, unique_events, write_config
from tests.mqtt.support import FakeSilentBroker
from tests.mqtt.test_outbox_faults import fill, small_tmpfs
from tests.support.broker import MosquittoBroker

Daemons = Callable[[Path, Path], DaemonProcess]
Subscribers = Callable[..., Subscriber]


def changing(sensor: str, every_s: float = 1.0, n: int = 12) -> dict[str, Any]:
    """A simulated machine whose condition changes every ``every_s`` seconds."""
    conditions = itertools.cycle(["inner_race", "normal", "outer_race", "normal", "ball", "normal"])
    return {"id": sensor, "condition": "normal",
            "schedule": [{"at_s": every_s * (i + 1), "condition": next(conditions)} for i in range(n)]}


def synthetic(*sensors: dict[str, Any]) -> dict[str, Any]:
    return {"type": "synthetic", "pacing": "realtime", "chunk": 512, "sensors": list(sensors)}


def metrics(sub: Subscriber) -> list[dict[str, Any]]:
    return [m.json() for m in sub.on(topic("metrics"))]


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]


@pytest.mark.slow
def test_a_2kb_nested_command_leaves_events_acknowledged_and_a_clean_stop_quiet(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Subscribers, daemon_process: Daemons,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # stands where systemd listens
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.2)
    states: list[str] = []

    def listen() -> None:
        with contextlib.suppress(OSError):
            while True:
                with contextlib.suppress(TimeoutError):
                    states.append(notify.recv(256).decode())

    threading.Thread(target=listen, daemon=True).start()
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    config = write_config(tmp_path / "daemon.yaml",
                          base_config(broker.host, broker.port, tmp_path, [synthetic(changing("fan", 0.8))]))
    sub = subscriber()
    proc = daemon_process(config, tmp_path / "daemon.log")
    sub.wait_payload(topic("status"), b"online", timeout=20)
    sub.wait_for(lambda s: len(s.events("fan")) >= 1, 20, "a first event")
    t_attack = time.time()
    attack = b"[" * 1000 + b"]" * 1000
    flood = [{"topic": topic("cmd"), "payload": p, "qos": 1} for p in
             [attack] * 200 + [b'{"action": "' + b"x" * 64 + b'"}'] * 200 + [b"{" * 10_000_000]]
    mqtt_publish.multiple(flood, hostname=broker.host, port=broker.port)
    sub.wait_for(lambda s: sum(e["ts"] > t_attack for e in s.events("fan")) >= 3, 20,
                 "three events after the nested command")
    acked_after = len(unique_events(sub.events("fan")))
    sub.wait_for(lambda s: any(m["mqtt"]["outbox_depth"] == 0 and m["mqtt"]["acked"] >= acked_after
                               for m in metrics(s)), 10, "the outbox back to 0 with every event acked")
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    time.sleep(0.3)
    notify.close()
    log = proc.log()
    assert states[0] == "READY=1" and "WATCHDOG=1" in states and states[-1] == "STOPPING=1", states
    assert "ignoring a command" in log and "nests" in log
    # 401 hostile commands: one line per kind (nesting, unknown action, size), none of them long
    lines = [line for line in log.splitlines() if "command" in line and "WARNING" in line]
    assert len(lines) == 3 and max(map(len, lines)) < 400, lines
    assert error_lines(log) == [], "a clean stop must not log errors"
    assert metrics(sub)[-1]["callback_errors"] == 0


@pytest.mark.slow
def test_a_full_disk_loses_no_event_and_states_keep_flowing(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Subscribers, daemon_process: Daemons,
) -> None:
    with small_tmpfs(tmp_path / "mnt", size="8m") as mnt:
        cfg = base_config(broker.host, broker.port, tmp_path,
                          [synthetic(changing("fan", 0.6, 14), changing("pump", 0.9, 9))])
        cfg["mqtt"]["outbox"]["path"] = str(mnt / "outbox.sqlite3")
        config = write_config(tmp_path / "daemon.yaml", cfg)
        sub = subscriber()
        proc = daemon_process(config, tmp_path / "daemon.log")
        sub.wait_for(lambda s: len(s.events("fan")) >= 2, 20, "the first events")
        fill(mnt / "filler")
        t_full = time.time()
        sub.wait_for(lambda s: any(m["mqtt"]["events_held"] >= 2 for m in metrics(s)), 15,
                     "events held in memory while the disk is full")
        time.sleep(max(0.0, 3.0 - (time.time() - t_full)))
        states_while_full = [m for m in sub.on(topic("fan", "state")) if m.t > t_full]
        degraded = [m["degraded"] for m in metrics(sub) if m["mqtt"]["degraded"]]
        (mnt / "filler").unlink()
        t_free = time.time()
        sub.wait_for(lambda s: any(m["ts"] > t_free and m["mqtt"]["outbox_depth"] == 0
                                   and not m["mqtt"]["degraded"] for m in metrics(s)), 15,
                     "the outbox to catch up once space is back")
        proc.signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    final = metrics(sub)[-1]
    for sensor in ("fan", "pump"):
        events = unique_events(sub.events(sensor))
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), f"{sensor}: seq has a gap"
        assert all(a["to"] == b["from"] for a, b in itertools.pairwise(events)), f"{sensor}: chain broken"
        assert final["events"]["by_sensor"][sensor] == len(events)  # counted once committed, all arrived
    held = sum(t_full <= e["ts"] <= t_free for s in ("fan", "pump") for e in unique_events(sub.events(s)))
    assert held >= 2 and final["events_lost"] == 0 and final["mqtt"]["events_lost"] == 0
    assert states_while_full, "the retained state must keep being published on a full disk"
    assert degraded and degraded[-1] == 1.0
    print(f"disk full for {t_free - t_full:.1f} s: {held} events made meanwhile, "
          f"{sum(len(unique_events(sub.events(s))) for s in ('fan', 'pump'))} delivered in all, 0 lost")


@pytest.mark.slow
def test_a_corrupt_outbox_is_moved_aside_reported_and_serving_goes_on(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Subscribers, daemon_process: Daemons,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as ob:
        ob.put_many([NewMessage("drsn-edge/line-3/fan/event", b"{}" * 200) for _ in range(200)])
    data = bytearray(path.read_bytes())
    data[6 * 4096:7 * 4096] = b"\xa5" * 4096
    path.write_bytes(bytes(data))
    config = write_config(tmp_path / "daemon.yaml",
                          base_config(broker.host, broker.port, tmp_path, [synthetic(changing("fan", 0.8))]))
    sub = subscriber()
    proc = daemon_process(config, tmp_path / "daemon.log")
    sub.wait_for(lambda s: any("outbox_moved_aside" in m["mqtt"] for m in metrics(s)), 20,
                 "the metrics message to report the moved outbox")
    sub.wait_for(lambda s: len(s.events("fan")) >= 1, 20, "an event from the fresh outbox")
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    report = next(m for m in metrics(sub) if "outbox_moved_aside" in m["mqtt"])
    moved = Path(report["mqtt"]["outbox_moved_aside"]["to"])
    assert moved.read_bytes() == bytes(data) and report["outbox_corrupt"] == 1.0
    assert "is corrupt" in proc.log() and "NOT delivered" in proc.log()
    assert unique_events(sub.events("fan"))[0]["seq"] == 1


@pytest.mark.slow
def test_a_broker_that_never_acknowledges_makes_the_daemon_exit_for_a_restart(
    tmp_path: Path, daemon_process: Daemons,
) -> None:
    fake = FakeSilentBroker()
    try:
        cfg = base_config(fake.host, fake.port, tmp_path, [synthetic(changing("fan", 0.5))])
        cfg["mqtt"].update({"ack_timeout_s": 0.5, "max_stalled_connections": 2})
        proc = daemon_process(write_config(tmp_path / "daemon.yaml", cfg), tmp_path / "daemon.log")
        assert proc.wait(30) == 3
    finally:
        fake.close()
    log = proc.log()
    assert "makes no progress" in log and "2 MQTT connections in a row made no progress" in log
    assert fake.connects >= 2


def test_the_unit_uses_the_watchdog_and_the_examples_keep_prometheus_local() -> None:
    import configparser

    from tests.daemon.support import REPO

    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "deploy" / "systemd" / "drsn-edge.service")
    svc = unit["Service"]
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "main" and int(svc["WatchdogSec"]) > 0
    for example in (REPO / "deploy" / "examples").glob("*.yaml"):
        text = example.read_text()
        if "prometheus_port" in text:
            assert "prometheus_addr: 127.0.0.1" in text, example.name
