"""No source thread dies silently: a failed source is reported, counted and restarted with back-off.

Defect 2 of issue 10: one 2 KB datagram of nested JSON raised RecursionError out of the UDP
source's thread; every UDP sensor stopped while the process lived on. The parser is total now,
and the base class restarts any source whose thread fails anyway.
"""

from __future__ import annotations

import logging
import socket
import time

import numpy as np
import pytest

from runtime.sources import SOURCE_WIDE, SampleChunk
from runtime.sources.base import Source, SourceFailedError
from runtime.sources.frames import encode_frame
from runtime.sources.synthetic import SyntheticSourceConfig
from runtime.sources.udp import UdpSource, UdpSourceConfig
from tests.sources.collector import Collector

X = np.linspace(-1, 1, 256, dtype=np.float32)


class FailingTwiceSource(Source[SyntheticSourceConfig]):
    """A real Source subclass whose input breaks on its first two runs, then delivers chunks."""

    type = "failing-twice"

    def __init__(self) -> None:
        super().__init__(SyntheticSourceConfig.model_validate(
            {"sensors": [{"id": "s1"}]}))
        self.opens = 0
        self.runs = 0

    @property
    def sensors(self) -> dict[str, float]:
        return {"s1": 1000.0}

    def _open(self) -> None:
        self.opens += 1

    def _run(self) -> None:
        self.runs += 1
        if self.runs <= 2:
            raise RecursionError(f"input broke on run {self.runs}")
        seq = 0
        while not self._stopping.wait(0.01):
            self._emit(SampleChunk("s1", X, 1000.0, seq, time.time()))
            seq += 1


def test_a_failed_source_is_reported_and_restarted_with_back_off(caplog: pytest.LogCaptureFixture) -> None:
    source = FailingTwiceSource()
    got = Collector()
    t0 = time.monotonic()
    with caplog.at_level(logging.INFO, logger="runtime.sources.base"):
        source.start(got.emit, got.on_error)
        try:
            assert got.wait_for(lambda c: len(c.chunks) >= 3, timeout=10), "the source never came back"
            elapsed = time.monotonic() - t0
        finally:
            source.stop()
    assert source.restarts == 2 and source.runs == 3 and source.opens == 3
    assert elapsed >= 0.5 + 1.0, "back-off: 0.5 s before the first restart, 1 s before the second"
    failures = [e for sid, e in got.errors if isinstance(e, SourceFailedError)]
    assert len(failures) == 2 and all(sid == SOURCE_WIDE for sid, _ in got.errors)
    assert "RecursionError" in str(failures[0]) and "restart 1" in str(failures[0])
    assert not source.finished.is_set(), "a restarted source is not finished"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1, "the traceback is logged once, not on every restart"


def test_a_source_that_stops_during_back_off_ends_without_reopening() -> None:
    source = FailingTwiceSource()
    got = Collector()
    source.start(got.emit, got.on_error)
    assert got.wait_for(lambda c: len(c.errors) >= 1, timeout=5)
    source.stop()
    assert not source.running and source.opens == 1


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_udp_source_survives_the_nested_json_datagram_and_a_broken_socket(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 2 KB datagram is refused with one log line per kind; a socket failure restarts the source."""
    port = _free_udp_port()
    source = UdpSource(UdpSourceConfig.model_validate(
        {"host": "127.0.0.1", "port": port, "sensors": [{"id": "a", "sample_rate": 12000}]}))
    got = Collector()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with caplog.at_level(logging.DEBUG):
        source.start(got.emit, got.on_error)
        try:
            for _ in range(200):
                sender.sendto(b"[" * 1000 + b"]" * 1000, ("127.0.0.1", port))
            sender.sendto(encode_frame(X, sample_rate=12000, seq=0, sensor_id="a"), ("127.0.0.1", port))
            assert got.wait_for(lambda c: len(c.chunks) == 1 and len(c.errors) == 200, timeout=5), \
                (len(got.chunks), len(got.errors))
            assert source.restarts == 0
            sock = source._sock
            assert sock is not None
            sock.close()  # the socket fails under the running thread (as a vanished interface would)
            deadline = time.monotonic() + 10
            seq = 1
            while len(got.chunks) < 2 and time.monotonic() < deadline:
                sender.sendto(encode_frame(X, sample_rate=12000, seq=seq, sensor_id="a"), ("127.0.0.1", port))
                seq += 1
                got.wait_for(lambda c: len(c.chunks) >= 2, timeout=0.2)
            assert len(got.chunks) >= 2, "the UDP source did not come back after its socket failed"
            assert source.restarts == 1
        finally:
            sender.close()
            source.stop()
    assert not [r for r in caplog.records if "RecursionError" in r.getMessage() or
                (r.exc_info and r.exc_info[0] is RecursionError)]


def test_the_thread_of_a_non_restartable_source_finishes_after_reporting() -> None:
    class OneShot(FailingTwiceSource):
        restartable = False

    source = OneShot()
    got = Collector()
    source.start(got.emit, got.on_error)
    assert source.finished.wait(5)
    assert source.restarts == 0 and isinstance(got.errors[0][1], SourceFailedError)
    source.stop()
    assert not source.running
