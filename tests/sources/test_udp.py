"""The UDP source on a free local port: good frames become chunks, bad ones are reported, not fatal."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest

from runtime.errors import ConfigError, PayloadError
from runtime.sources import SOURCE_WIDE
from runtime.sources.frames import encode_frame, encode_json_frame
from runtime.sources.udp import UdpSource, UdpSourceConfig
from tests.sources.collector import Collector

X = np.linspace(-1, 1, 256, dtype=np.float32)
Running = tuple[UdpSource, Collector, socket.socket]


def _config(port: int = 0) -> UdpSourceConfig:
    return UdpSourceConfig.model_validate({
        "host": "127.0.0.1", "port": port,
        "sensors": [{"id": "a", "sample_rate": 12000}, {"id": "b", "sample_rate": 25600}],
    })


@pytest.fixture
def running() -> Iterator[Running]:
    source = UdpSource(_config())
    got = Collector()
    source.start(got.emit, got.on_error)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(source.address)
    yield source, got, sender
    sender.close()
    source.stop()


def test_frames_become_chunks_with_their_seq_and_t0(running: Running) -> None:
    source, got, sender = running
    assert source.sensors == {"a": 12000.0, "b": 25600.0}
    now = round(time.time())
    sender.send(encode_frame(X, sample_rate=12000, seq=0, t0=now - 1.0, sensor_id="a"))
    sender.send(encode_frame(X, sample_rate=12000, seq=5, t0=now + 0.0, sensor_id="a", dtype="int16"))
    sender.send(encode_json_frame(X[:10], seq=0, sensor_id="b"))
    assert got.wait_for(lambda c: len(c.chunks) == 3)
    a = got.of("a")
    assert [c.seq for c in a] == [0, 5], "a sequence jump is passed on, not smoothed over"
    assert [c.t0 for c in a] == [now - 1.0, now + 0.0]
    np.testing.assert_array_equal(a[0].samples, X)
    np.testing.assert_allclose(a[1].samples, X, atol=1 / 32767)
    (b,) = got.of("b")
    assert b.sample_rate == 25600.0 and b.samples.size == 10
    assert got.errors == []


def test_bad_datagrams_are_reported_and_the_rest_still_flow(running: Running) -> None:
    _, got, sender = running
    sender.send(b"garbage that is not a frame")
    sender.send(encode_frame(X, sample_rate=12000, seq=0))  # no sensor id
    sender.send(encode_frame(X, sample_rate=12000, seq=0, sensor_id="zz"))
    sender.send(encode_frame(X, sample_rate=48000, seq=0, sensor_id="a"))
    sender.send(encode_frame(X, sample_rate=25600, seq=0, sensor_id="b")[:-4])
    sender.send(encode_frame(X, sample_rate=25600, seq=1, sensor_id="b"))
    assert got.wait_for(lambda c: len(c.errors) == 5 and len(c.chunks) == 1)
    blamed = [sid for sid, _ in got.errors]
    assert blamed == [SOURCE_WIDE, SOURCE_WIDE, SOURCE_WIDE, "a", SOURCE_WIDE]
    messages = [str(e) for _, e in got.errors]
    assert all(isinstance(e, PayloadError) for _, e in got.errors)
    assert "neither a binary frame" in messages[0]
    assert "carries no sensor id" in messages[1]
    assert "unknown sensor id 'zz'; configured sensors are ['a', 'b']" in messages[2]
    assert "frame rate 48000 Hz differs from the configured 12000 Hz" in messages[3]
    assert "truncated" in messages[4] and messages[4].startswith("UDP datagram from 127.0.0.1:")
    assert got.chunks[0].sensor_id == "b" and got.chunks[0].seq == 1


def test_port_in_use_fails_at_start(running: Running) -> None:
    source, _, _ = running
    other = UdpSource(_config(port=source.address[1]))
    with pytest.raises(ConfigError, match=r"cannot bind UDP 127.0.0.1:\d+ .*choose a free port"):
        other.start(Collector().emit, Collector().on_error)
