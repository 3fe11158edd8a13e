"""MqttPublisher against a real Mosquitto: status, states, events, commands, discovery, auth, TLS."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.publish as mqtt_publish
import pytest

from runtime.errors import ConfigError, DataError
from runtime.mqtt.commands import log_throttle
from runtime.mqtt.config import MqttConfig
from runtime.mqtt.outbox import NewMessage, Outbox
from runtime.mqtt.publisher import Ack, MqttPublisher
from tests.mqtt.support import (
    PasswordBroker,
    Recorder,
    TlsBroker,
    command,
    listening,
    make_config,
    wait_until,
)
from tests.support.broker import MosquittoBroker

Running = Callable[..., MqttPublisher]
Recorders = Callable[..., Recorder]

STATE = {"state": "fault", "class": "inner_race_007", "confidence": 0.97, "since": "2025-01-01T00:00:00Z",
         "model": {"name": "drsn_cw_paper", "version": "3", "sha256": "ab" * 32}}


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_online_on_connect_and_stopped_on_close(
    broker: MosquittoBroker, tmp_path: Path, recorder: Recorders, protocol: str
) -> None:
    rec = recorder()
    cfg = make_config(broker, tmp_path, protocol=protocol)
    pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox))
    pub.start()
    status = pub.topics.status
    assert rec.wait_topic(status, b"online").retain is False  # live delivery to an existing subscriber
    assert wait_until(lambda: pub.connected)
    pub.close(timeout=2.0)
    rec.wait_topic(status, b"stopped")
    late = recorder(status)
    assert late.wait_topic(status).payload == b"stopped" and late.on(status)[0].retain
    assert [m.payload for m in rec.on(status)] == [b"online", b"stopped"]  # clean exit: no last will
    pub.outbox.close()


def test_retained_state_reaches_a_late_subscriber(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    pub = running(make_config(broker, tmp_path))
    pub.publish_state("spindle", {**STATE, "state": "healthy"})
    pub.publish_state("spindle", STATE)
    topic = pub.topics.state("spindle")
    first = recorder(topic)
    assert first.wait_for(lambda msgs: any(m.json() == STATE for m in msgs))
    late = recorder(topic)
    got = late.wait_topic(topic)
    assert got.retain and got.json() == STATE


def test_events_arrive_in_order_with_unique_ids_and_acks_are_reported(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    acks: list[Ack] = []
    rec = recorder("+/+/+/event")
    pub = running(make_config(broker, tmp_path), on_acked=acks.append)
    receipts = [pub.publish_event(s, {"state": "fault", "i": i}) for i in range(30) for s in ("a", "b")]
    assert rec.wait_for(lambda msgs: len(msgs) >= 60)
    for sensor in ("a", "b"):
        docs = [m.json() for m in rec.on(pub.topics.event(sensor))]
        assert [d["seq"] for d in docs] == list(range(1, 31))
        assert [d["i"] for d in docs] == list(range(30))
    assert len({m.json()["id"] for m in rec.messages}) == 60
    assert all(m.qos == 1 for m in rec.messages)
    assert wait_until(lambda: len(acks) == 60 and pub.outbox.depth == 0)
    assert sorted(a.event_id for a in acks) == sorted(r.id for r in receipts)  # type: ignore[type-var]
    assert all(a.latency_s is not None and 0 < a.latency_s < 5 for a in acks)
    assert pub.stats().events_acked == 60 and pub.last_seq("a") == 30


def test_sequence_numbers_continue_after_a_restart(broker: MosquittoBroker, tmp_path: Path) -> None:
    cfg = make_config(broker, tmp_path)
    for expected in (1, 2):
        with Outbox.from_config(cfg.outbox) as outbox:
            pub = MqttPublisher(cfg, outbox)
            assert pub.publish_event("a", {"state": "fault"}).seq == expected
            assert pub.publish_event("b", {"state": "fault", "seq": 40 + expected}).seq == 40 + expected
            assert pub.last_seq("b") == 40 + expected
            with pytest.raises(DataError, match="pass an integer"):
                pub.publish_event("b", {"seq": "7"})


def test_predictions_and_metrics_are_qos0_and_optional(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    rec = recorder()
    quiet = MqttPublisher(make_config(broker, tmp_path / "q"), Outbox(tmp_path / "q.db"))
    assert quiet.publish_prediction("spindle", {"p": [0.1, 0.9]}) is False  # disabled by config
    assert quiet.publish_metrics({"windows": 1}) is False and quiet.stats().qos0_dropped == 1  # not started
    quiet.outbox.close()
    pub = running(make_config(broker, tmp_path, publish_predictions=True))
    assert wait_until(lambda: pub.connected)
    assert pub.publish_prediction("spindle", {"p": [0.1, 0.9]})
    assert pub.publish_metrics({"windows": 1, "outbox_depth": pub.stats().outbox_depth})
    assert rec.wait_topic(pub.topics.prediction("spindle")).qos == 0
    assert rec.wait_topic(pub.topics.metrics).json() == {"windows": 1, "outbox_depth": 0}


def test_commands_reach_the_registered_handler(
    broker: MosquittoBroker, tmp_path: Path, running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[dict[str, Any]] = []
    seen = threading.Event()

    pings: list[dict[str, Any]] = []

    def handler(cmd: dict[str, Any]) -> None:
        if cmd["action"] == "ping":
            pings.append(cmd)
            return
        got.append(cmd)
        seen.set()

    pub = running(make_config(broker, tmp_path), on_command=handler)
    listening(pub, broker, lambda: bool(pings))
    caplog.set_level(logging.WARNING)
    log_throttle.reset()
    for payload in (b"not json", b'{"action": "reload", "model": "m.onnx"}'):
        command(pub, broker, payload)
    assert seen.wait(5)
    assert got == [{"action": "reload", "model": "m.onnx"}]
    assert "not valid JSON" in caplog.text


def test_home_assistant_discovery_is_retained_and_reannounced(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    rec = recorder("homeassistant/#")
    pub = running(make_config(broker, tmp_path, home_assistant={"discovery": True}))
    pub.publish_state("spindle", STATE)
    topic = pub.topics.ha_config("homeassistant", "spindle")
    doc = rec.wait_topic(topic).json()
    assert doc["state_topic"] == pub.topics.state("spindle")
    assert doc["availability"][0]["topic"] == pub.topics.status
    assert recorder(topic).wait_topic(topic).retain
    mqtt_publish.single("homeassistant/status", b"online", hostname=broker.host, port=broker.port)
    assert rec.wait_for(lambda msgs: sum(m.topic == topic for m in msgs) >= 2)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_bad_credentials_are_refused_with_a_clear_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, running: Running, protocol: str
) -> None:
    caplog.set_level(logging.INFO, logger="runtime.mqtt")
    with PasswordBroker("edge", "right") as secured:
        auth = {"protocol": protocol, "username": "edge"}
        bad = running(make_config(secured, tmp_path / "bad", password="wrong", **auth))
        assert wait_until(lambda: "refused the connection" in caplog.text)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and "mqtt.username and mqtt.password" in errors[0].getMessage()
        assert "wrong" not in caplog.text
        assert not bad.connected and "refused" in (bad.stats().last_error or "")
        good = running(make_config(secured, tmp_path / "good", password="right", **auth))
        assert wait_until(lambda: good.connected)
        assert not bad.connected


def test_tls_with_a_private_ca(tmp_path: Path, running: Running) -> None:
    secured = TlsBroker()
    with secured:
        cfg = make_config(secured, tmp_path, tls={"enabled": True, "ca_file": str(secured.ca_file)})
        pub = running(cfg)
        assert wait_until(lambda: pub.connected)
        assert pub.publish_event("spindle", {"state": "fault"}).row is not None
        assert wait_until(lambda: pub.outbox.depth == 0)


def test_unreadable_tls_files_fail_at_construction(tmp_path: Path) -> None:
    cfg = MqttConfig(tls={"enabled": True, "ca_file": str(tmp_path / "missing.pem")})
    with pytest.raises(ConfigError, match="give readable PEM files"):
        MqttPublisher(cfg, Outbox(tmp_path / "o.db"))


def test_enqueued_results_travel_like_events_and_report_their_rows(
    broker: MosquittoBroker, tmp_path: Path, running: Running, recorder: Recorders
) -> None:
    acks: list[Ack] = []
    rec = recorder("+/+/+/prediction")
    pub = running(make_config(broker, tmp_path), on_acked=acks.append)
    topic = pub.topics.prediction("spindle")
    rows = pub.enqueue([NewMessage(topic, f'{{"w": {i}}}'.encode(), 1, False) for i in range(10)])
    assert rec.wait_for(lambda msgs: len(msgs) >= 10)
    assert [m.json()["w"] for m in rec.messages] == list(range(10)) and rec.messages[0].qos == 1
    assert wait_until(lambda: sorted(a.row for a in acks) == rows)
    assert all(a.event_id is None and a.latency_s is not None for a in acks)
    with pytest.raises(DataError, match="QoS 1 or 2"):
        pub.enqueue([NewMessage(topic, b"{}", 0, False)])
    with pytest.raises(DataError, match="concrete topic"):
        pub.enqueue([NewMessage("drsn-edge/+/x", b"{}", 1, False)])
