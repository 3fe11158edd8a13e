"""Bad input while running: one sensor's garbage is counted and refused, the other sensor goes on.

Two sensors publish raw frames over MQTT. ``bad`` sends a malformed payload, a frame with NaN
samples, a frame at the wrong rate, a frame that names a sensor nobody configured and a JSON frame
without a valid seq; ``good`` streams a clean outer-race signal throughout. Every bad frame must
show up in the metrics (the daemon's own snapshot and the periodic metrics topic) against ``bad``,
and ``good`` must have every one of its windows classified.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from runtime.sources.frames import encode_frame
from runtime.sources.mqtt_raw import MqttRawSource
from tests.daemon.support import RATE, Subscriber, base_config, retained, simulate, topic
from tests.support.broker import MosquittoBroker

CHUNK = 1024


def bad_frames() -> list[bytes]:
    nan = np.zeros(CHUNK, np.float32)
    nan[100] = np.nan
    ok = np.zeros(CHUNK, np.float32)
    return [
        b"\x00\x01 not a frame",
        encode_frame(nan, sample_rate=RATE, seq=0),
        encode_frame(ok, sample_rate=8000.0, seq=1),
        encode_frame(ok, sample_rate=RATE, seq=2, sensor_id="ghost-7"),
        b'{"seq": "three", "samples": [0.1, 0.2]}',
    ]


@pytest.mark.slow
def test_bad_frames_are_counted_while_the_other_sensor_keeps_being_served(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Callable[..., Subscriber]
) -> None:
    source = {"type": "mqtt_raw", "host": broker.host, "port": broker.port, "sensors": [
        {"id": "good", "topic": "plant/raw/good", "sample_rate": RATE},
        {"id": "bad", "topic": "plant/raw/bad", "sample_rate": RATE},
    ]}
    daemon = Daemon(validate_config_dict(base_config(broker.host, broker.port, tmp_path, [source])))
    metrics_sub = subscriber(topic("metrics"))
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gateway")
    sender.connect(broker.host, broker.port)
    sender.loop_start()
    signal_ = simulate("outer_race", seconds=36 * CHUNK / RATE)
    chunks = signal_.reshape(-1, CHUNK)
    expected_windows = (signal_.size - 2048) // 512 + 1
    try:
        daemon.start()
        raw = daemon.sources[0]
        assert isinstance(raw, MqttRawSource) and raw.subscribed.wait(10)
        bad = bad_frames()
        for seq, chunk in enumerate(chunks):
            frame = encode_frame(chunk, sample_rate=RATE, seq=seq)
            sender.publish("plant/raw/good", frame, qos=1).wait_for_publish(5)
            if seq < len(bad):
                sender.publish("plant/raw/bad", bad[seq], qos=1).wait_for_publish(5)

        def served() -> bool:
            snap = daemon.metrics.snapshot()
            return (snap["windows"]["by_sensor"].get("good", 0) >= expected_windows
                    and snap["bad_payloads"]["by_sensor"].get("bad", 0) >= len(bad))

        deadline = time.monotonic() + 15
        while not served():
            assert time.monotonic() < deadline, f"not served in time: {daemon.metrics.snapshot()}"
            time.sleep(0.05)
        metrics_sub.wait_for(
            lambda s: any(m.json()["bad_payloads"]["by_sensor"].get("bad") == len(bad) for m in s.messages),
            10, "a metrics message counting the bad frames")
        snap = daemon.metrics.snapshot()
    finally:
        daemon.stop()
        sender.disconnect()
        sender.loop_stop()

    assert snap["bad_payloads"]["by_sensor"] == {"bad": len(bad), "good": 0.0}
    assert snap["windows"]["by_sensor"]["good"] == expected_windows  # nothing of `good` was lost
    assert snap["windows"]["by_sensor"].get("bad", 0) == 0 and snap["gaps"]["by_sensor"].get("good", 0) == 0
    assert retained(broker.host, broker.port, topic("good", "state")).json()["state"] == "outer_race"
    assert retained(broker.host, broker.port, topic("bad", "state")).json()["state"] == "unknown"
