"""The MQTT raw-sample source against a real Mosquitto: frames in, chunks out, bad payloads isolated."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from runtime.errors import PayloadError
from runtime.sources import SOURCE_WIDE
from runtime.sources.frames import encode_frame, encode_json_frame
from runtime.sources.mqtt_raw import MqttRawSource, MqttRawSourceConfig
from tests.sources.collector import Collector
from tests.support.broker import MosquittoBroker, free_port

X = np.sin(np.linspace(0, 20, 512)).astype(np.float32)


def _config(port: int, **kw: object) -> MqttRawSourceConfig:
    return MqttRawSourceConfig.model_validate({
        "host": "127.0.0.1", "port": port, "qos": 1,
        "sensors": [{"id": "a", "topic": "plant/raw/a", "sample_rate": 12000},
                    {"id": "b", "topic": "plant/raw/b", "sample_rate": 12000}],
        **kw,
    })


@pytest.fixture
def publisher(broker: MosquittoBroker) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-gateway")
    client.connect(broker.host, broker.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def _publish(client: mqtt.Client, topic: str, payload: bytes) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(5)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_frames_arrive_as_chunks_per_sensor(broker: MosquittoBroker, publisher: mqtt.Client,
                                            protocol: str) -> None:
    source = MqttRawSource(_config(broker.port, protocol=protocol))
    got = Collector()
    source.start(got.emit, got.on_error)
    try:
        assert source.subscribed.wait(5), "the source should subscribe once connected"
        t = round(time.time())
        _publish(publisher, "plant/raw/a", encode_frame(X, sample_rate=12000, seq=0, t0=t - 1.0))
        _publish(publisher, "plant/raw/a",
                 encode_frame(X, sample_rate=12000, seq=1, t0=t - 0.5, sensor_id="a"))
        _publish(publisher, "plant/raw/b", encode_json_frame(X[:64], seq=7, sample_rate=12000))
        assert got.wait_for(lambda c: len(c.chunks) == 3)
    finally:
        source.stop()
    a = got.of("a")
    assert [(c.seq, c.t0) for c in a] == [(0, t - 1.0), (1, t - 0.5)]
    np.testing.assert_array_equal(got.samples("a"), np.tile(X, 2))
    (b,) = got.of("b")
    assert b.seq == 7 and b.samples.size == 64
    assert abs(b.t0 - time.time()) < 5, "a frame without t0 is stamped on arrival"
    assert got.errors == []


def test_bad_payloads_are_reported_and_other_sensors_unaffected(broker: MosquittoBroker,
                                                                publisher: mqtt.Client) -> None:
    source = MqttRawSource(_config(broker.port))
    got = Collector()
    source.start(got.emit, got.on_error)
    try:
        assert source.subscribed.wait(5)
        bad = [
            encode_frame(X, sample_rate=48000, seq=0),
            encode_frame(X, sample_rate=12000, seq=0)[:-2],
            b"DRSV" + b"\x00" * 10,
            b'{"seq": 1, "samples": [0.1, NaN]}',
            encode_frame(X, sample_rate=12000, seq=2, sensor_id="b"),
        ]
        for i, payload in enumerate(bad):
            _publish(publisher, "plant/raw/a", payload)
            _publish(publisher, "plant/raw/b", encode_frame(X, sample_rate=12000, seq=i))
        _publish(publisher, "plant/raw/a", encode_frame(X, sample_rate=12000, seq=9))
        assert got.wait_for(lambda c: len(c.errors) == 5 and len(c.chunks) == 6)
    finally:
        source.stop()
    assert [sid for sid, _ in got.errors] == ["a"] * 5
    assert all(isinstance(e, PayloadError) for _, e in got.errors)
    messages = [str(e) for _, e in got.errors]
    assert all(m.startswith("topic 'plant/raw/a': ") for m in messages)
    assert "48000 Hz differs from the configured 12000 Hz" in messages[0]
    assert "truncated" in messages[1] and "truncated" in messages[2]
    assert "NaN/inf" in messages[3]
    assert "names sensor 'b' but arrived on the channel of sensor 'a'" in messages[4]
    assert [c.seq for c in got.of("b")] == [0, 1, 2, 3, 4]
    assert [c.seq for c in got.of("a")] == [9]


def test_resubscribes_after_a_broker_restart(broker: MosquittoBroker) -> None:
    source = MqttRawSource(_config(broker.port))
    got = Collector()
    source.start(got.emit, got.on_error)
    try:
        assert source.subscribed.wait(5)
        broker.stop()
        assert got.wait_for(lambda c: not source.subscribed.is_set(), timeout=5)
        broker.start()
        assert source.subscribed.wait(10), "the source should reconnect and subscribe again"
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect(broker.host, broker.port)
        client.loop_start()
        _publish(client, "plant/raw/b", encode_frame(X, sample_rate=12000, seq=3))
        client.disconnect()
        client.loop_stop()
        assert got.wait_for(lambda c: len(c.chunks) == 1)
    finally:
        source.stop()
    assert got.chunks[0].sensor_id == "b" and got.chunks[0].seq == 3


def test_unreachable_broker_is_reported_once_and_stop_is_prompt() -> None:
    source = MqttRawSource(_config(free_port()))
    got = Collector()
    source.start(got.emit, got.on_error)
    assert got.wait_for(lambda c: len(c.errors) >= 1, timeout=5)
    start = time.monotonic()
    source.stop()
    assert time.monotonic() - start < 2.5 and not source.running
    (sid, exc), *rest = got.errors
    assert sid == SOURCE_WIDE and isinstance(exc, ConnectionError) and "unreachable" in str(exc)
    assert rest == []


def test_topics_must_be_exact_and_unique() -> None:
    with pytest.raises(ValidationError, match="wildcard"):
        MqttRawSourceConfig.model_validate({"sensors": [{"id": "a", "topic": "raw/+", "sample_rate": 1}]})
    with pytest.raises(ValidationError, match="topic 'raw/a' appears twice"):
        MqttRawSourceConfig.model_validate({"sensors": [{"id": "a", "topic": "raw/a", "sample_rate": 1},
                                                        {"id": "b", "topic": "raw/a", "sample_rate": 1}]})
