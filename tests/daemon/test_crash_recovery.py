"""SIGKILL of the daemon process: the broker publishes its last will, and a restart replays the outbox.

The first daemon is killed while the broker is down, so the state changes it made during the
outage exist only in its SQLite outbox. The second daemon, started on the same outbox once the
broker is back, must deliver them before its own events, with sequence numbers that continue
where the first left off. Killing the second one with the broker up must make the broker
publish the retained ``offline`` will.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon.support import (
    DaemonProcess,
    Subscriber,
    base_config,
    retained,
    topic,
    unique_events,
    write_config,
)
from tests.support.broker import MosquittoBroker

STEPS = [(1.0, "inner_race"), (2.0, "normal"), (3.0, "outer_race"), (4.0, "normal"), (5.0, "ball"),
         (6.0, "normal"), (7.0, "inner_race"), (8.0, "normal")]


@pytest.mark.slow
def test_sigkill_sends_the_will_and_a_restart_replays_the_outbox(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Callable[..., Subscriber],
    daemon_process: Callable[[Path, Path], DaemonProcess],
) -> None:
    source = {"type": "synthetic", "pacing": "realtime", "chunk": 512,
              "sensors": [{"id": "kiln-fan", "schedule": [{"at_s": t, "condition": c} for t, c in STEPS]}]}
    steady = {"history": 6, "min_windows": 3, "enter_threshold": 0.7, "exit_threshold": 0.4}
    config = write_config(tmp_path / "daemon.yaml",
                          base_config(broker.host, broker.port, tmp_path, [source], fault_state=steady))
    sub = subscriber()
    status = topic("status")

    first = daemon_process(config, tmp_path / "first.log")
    sub.wait_for(lambda s: any(e["to"] == "inner_race" for e in s.events("kiln-fan")), 20,
                 "the first daemon's inner_race event")
    broker.stop()
    t_down = time.time()
    time.sleep(2.5)  # the fault state keeps changing; its events can only go to the outbox
    first.proc.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    t_kill = time.time()
    delivered_before = len(unique_events(sub.events("kiln-fan")))

    broker.start()
    assert sub.subscribed.wait(10), "the test subscriber did not reconnect"
    second = daemon_process(config, tmp_path / "second.log")
    sub.wait_payload(status, b"online", timeout=20)
    sub.wait_for(lambda s: any(e["ts"] > t_kill for e in s.events("kiln-fan")), 20,
                 "an event of the second daemon")
    second.proc.send_signal(signal.SIGKILL)
    assert second.wait(10) == -signal.SIGKILL
    sub.wait_payload(status, b"offline", timeout=10)

    received = unique_events(sub.events("kiln-fan"))
    seqs = [e["seq"] for e in received]
    assert seqs == list(range(1, len(received) + 1)), f"seq must continue without reuse or gaps: {seqs}"
    replayed = [e for e in received[delivered_before:] if t_down <= e["ts"] <= t_kill]
    assert replayed, "the events made during the outage were not replayed from the outbox"
    own = [e for e in received if e["ts"] > t_kill]
    assert own and own[0]["seq"] == replayed[-1]["seq"] + 1
    assert "outbox" in second.log() and "unsent messages from an earlier run" in second.log()
    assert retained(broker.host, broker.port, status).payload == b"offline"  # the will is retained
