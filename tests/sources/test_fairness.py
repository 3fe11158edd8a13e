"""One flooded sensor must not starve the others on the same source (issue 10, "Fairness").

Measured before: a neighbour fell from 23.4 to 13 windows/s during a garbage flood on the same
source. The sources now queue payloads per sender/sensor and serve them in turn; when the queue
is full the flooder's oldest payloads are dropped and counted.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from runtime.sources import SampleChunk
from runtime.sources.fair import FairQueue, frame_key
from runtime.sources.frames import encode_frame
from runtime.sources.udp import UdpSource, UdpSourceConfig
from tests.sources.collector import Collector

X = np.zeros(256, np.float32)


def test_keys_are_served_in_turn_and_the_longest_queue_loses_its_oldest() -> None:
    q: FairQueue[str] = FairQueue(capacity=6)
    for i in range(5):
        q.put("flood", f"f{i}")
    q.put("calm", "c0")
    assert q.put("calm", "c1") == "flood", "room is made at the flooder's expense"
    assert q.dropped == {"flood": 1}
    order = [q.get(0)[1] for _ in range(6)]  # type: ignore[index]
    assert order == ["f1", "c0", "f2", "c1", "f3", "f4"]
    assert q.get(0) is None


def test_frame_key_reads_the_sensor_id_without_decoding() -> None:
    frame = encode_frame(X, sample_rate=1000, seq=0, sensor_id="pump-7")
    assert frame_key(frame, "10.0.0.5") == ("10.0.0.5", b"pump-7")
    assert frame_key(b"[[[]]]", "10.0.0.5") == ("10.0.0.5", None)


def test_a_neighbour_keeps_its_rate_while_another_sensor_floods_the_same_port() -> None:
    source = UdpSource(UdpSourceConfig.model_validate({
        "host": "127.0.0.1", "port": 0, "backlog": 64,
        "sensors": [{"id": "flood", "sample_rate": 1000}, {"id": "calm", "sample_rate": 1000}]}))
    got = Collector()

    def slow_consumer(chunk: SampleChunk) -> None:  # the daemon's windowing work, about 1 ms a chunk
        time.sleep(0.001)
        got.emit(chunk)

    source.start(slow_consumer, got.on_error)
    stop = threading.Event()
    flood_sent = [0]

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not stop.is_set():
                for _ in range(20):  # about 5x what the consumer can take
                    s.sendto(encode_frame(X, sample_rate=1000, seq=flood_sent[0], sensor_id="flood"),
                             source.address)
                    flood_sent[0] += 1
                time.sleep(0.004)

    flooder = threading.Thread(target=flood, daemon=True)
    calm_sent = 0
    try:
        flooder.start()
        t0 = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while time.monotonic() - t0 < 2.0:  # 50 frames/s for 2 s
                s.sendto(encode_frame(X, sample_rate=1000, seq=calm_sent, sensor_id="calm"), source.address)
                calm_sent += 1
                time.sleep(0.02)
        got.wait_for(lambda c: len(c.of("calm")) >= calm_sent, timeout=3)
    finally:
        stop.set()
        flooder.join(2)
        source.stop()
    calm, flooded = len(got.of("calm")), len(got.of("flood"))
    print(f"calm: {calm} of {calm_sent} frames; flood: {flooded} of {flood_sent[0]} served, "
          f"{source.frames_dropped} dropped")
    assert calm >= 0.95 * calm_sent, f"the neighbour got {calm} of {calm_sent} frames during the flood"
    assert flooded < flood_sent[0] and source.frames_dropped > 0, "the flooder pays for its flood"
