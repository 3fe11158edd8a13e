"""sd_notify over a real unix datagram socket: what systemd would receive, and when nothing is sent."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from runtime.sdnotify import Notifier


def listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(1.0)
    return sock


def test_ready_watchdog_and_stopping_reach_the_socket(tmp_path: Path) -> None:
    with listener(tmp_path / "n.sock") as sock:
        n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "2000000"})
        assert n.enabled and n.watchdog_s == 2.0
        assert n.ready() and n.ping(now=100.0)
        assert not n.ping(now=100.5)  # at most every half interval
        assert n.ping(now=101.0) and n.stopping()
        got = [sock.recv(64).decode() for _ in range(4)]
    assert got == ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"]


def test_abstract_socket_names_are_understood() -> None:
    name = f"drsn-edge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(1.0)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(64) == b"READY=1"


def test_outside_systemd_nothing_is_sent_and_a_foreign_watchdog_is_ignored(tmp_path: Path) -> None:
    quiet = Notifier({})
    assert not quiet.enabled and not quiet.ready() and not quiet.ping()
    other = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "1000000",
                      "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_s is None and not other.ping()
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    assert not gone.ready()  # logged once, never raised


def test_a_reader_that_stopped_reading_never_blocks_the_sender(tmp_path: Path) -> None:
    with listener(tmp_path / "n.sock"):
        n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock")})
        results = [n.ready() for _ in range(500)]  # far beyond the socket's queue
    assert results[0] and not all(results)
