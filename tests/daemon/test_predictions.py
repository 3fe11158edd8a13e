"""Per-window results at QoS 1 (``prediction_qos: 1``): every window's result reaches the broker and
each PUBACK is reported with the latency from the window's last sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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


@pytest.mark.slow
def test_batched_results_are_one_message_per_batch_and_time_every_window(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Callable[..., Subscriber]
) -> None:
    source = {"type": "synthetic", "pacing": "fast", "duration_s": 1.0,
              "sensors": [{"id": "spindle", "condition": "outer_race"}, {"id": "fan", "condition": "normal"}]}
    cfg = base_config(broker.host, broker.port, tmp_path, [source], exit_when_sources_finish=True,
                      prediction_qos=1)
    cfg["mqtt"].update(publish_predictions=True, predictions="batch")
    windows = (12000 - 2048) // 512 + 1
    acked: list[tuple[str, int, float]] = []
    sub = subscriber(topic("#"))
    daemon = Daemon(validate_config_dict(cfg), publish_hooks=[ResultAckTimer(lambda *a: acked.append(a))])

    assert daemon.run(install_signals=False) == 0

    def batches(s: Subscriber) -> list[dict[str, Any]]:
        return [m.json() for m in s.messages if m.topic.endswith("/predictions")]

    sub.wait_for(lambda s: sum(len(b["window"]) for b in batches(s)) >= 2 * windows, 10, "every window")
    assert not any(m.topic.endswith("/prediction") for m in sub.messages)  # batch mode only
    got = batches(sub)
    rows = [(s, w) for b in got for s, w in zip(b["sensor"], b["window"], strict=True)]
    assert sorted(rows) == sorted((s, i) for s in ("spindle", "fan") for i in range(windows))
    assert len(got) < len(rows)  # several windows per message
    assert sorted((s, i) for s, i, _ in acked) == sorted(rows)  # one PUBACK times every window of its batch
