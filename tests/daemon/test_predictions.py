"""Per-window results at QoS 1 (``prediction_qos: 1``): every window's result reaches the broker and
each PUBACK is reported with the latency from the window's last sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.bench.ack_timer import ResultAckTimer
from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from tests.daemon.support import Subscriber, base_config, topic
from tests.support.broker import MosquittoBroker


@pytest.mark.slow
def test_every_window_result_is_published_at_qos1_and_its_puback_timed(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Callable[..., Subscriber]
) -> None:
    source = {"type": "synthetic", "pacing": "fast", "duration_s": 1.0,
              "sensors": [{"id": "spindle", "condition": "outer_race"}]}
    cfg = base_config(broker.host, broker.port, tmp_path, [source], exit_when_sources_finish=True,
                      prediction_qos=1)
    cfg["mqtt"]["publish_predictions"] = True
    windows = (12000 - 2048) // 512 + 1
    acked: list[tuple[str, int, float]] = []
    sub = subscriber(topic("spindle", "prediction"))
    daemon = Daemon(validate_config_dict(cfg), publish_hooks=[ResultAckTimer(lambda *a: acked.append(a))])

    assert daemon.run(install_signals=False) == 0  # ends with the finite source, outbox flushed

    sub.wait_for(lambda s: len(s.messages) >= windows, 10, f"{windows} predictions")
    predictions = [m.json() for m in sub.messages]
    assert sorted(p["window"] for p in predictions) == list(range(windows))
    assert sum(p["class"] == "outer_race" for p in predictions) >= windows - 3  # the first windows may vary
    assert all(abs(sum(p["probs"]) - 1.0) < 1e-4 and p["confidence"] == max(p["probs"]) for p in predictions)
    assert sorted(i for _, i, _ in acked) == list(range(windows))
    assert all(sensor == "spindle" and 0 < latency < 5 for sensor, _, latency in acked)
