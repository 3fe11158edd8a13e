"""Config validation, topic names, Home Assistant discovery, command parsing and JSON encoding."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
from pydantic import ValidationError

from runtime.errors import ConfigError, DataError
from runtime.mqtt.commands import log_throttle, parse_command
from runtime.mqtt.config import MqttConfig
from runtime.mqtt.connection import Backoff
from runtime.mqtt.homeassistant import discovery_config
from runtime.mqtt.payload import encode_json
from runtime.mqtt.topics import Topics, check_sensor_name


def test_every_config_field_is_described() -> None:
    from runtime.mqtt.config import HomeAssistantConfig, OutboxConfig, TlsConfig

    for model in (MqttConfig, TlsConfig, OutboxConfig, HomeAssistantConfig):
        missing = [n for n, f in model.model_fields.items() if not f.description]
        assert not missing, f"{model.__name__} fields without description: {missing}"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("device_id", "line/1", "contains '/'"),
        ("device_id", "a+b", "forbids in topic names"),
        ("topic_prefix", "plant/", "empty topic level"),
        ("protocol", "4", "'3.1.1' or '5'"),
        ("qos_events", 1, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_values_are_rejected(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MqttConfig.model_validate({field: value})


def test_password_without_user_is_rejected_and_never_printed() -> None:
    with pytest.raises(ValidationError, match=r"without mqtt\.username"):
        MqttConfig(password="hunter2")
    cfg = MqttConfig(username="u", password="hunter2")
    assert "hunter2" not in repr(cfg) and "hunter2" not in cfg.model_dump_json()


def test_topics_follow_the_documented_tree() -> None:
    t = Topics("plant/a", "press-7")
    assert t.status == "plant/a/press-7/status"
    assert t.command == "plant/a/press-7/cmd"
    assert t.metrics == "plant/a/press-7/metrics"
    assert t.state("spindle") == "plant/a/press-7/spindle/state"
    assert t.event("spindle") == "plant/a/press-7/spindle/event"
    assert t.prediction("spindle") == "plant/a/press-7/spindle/prediction"
    assert t.ha_config("homeassistant", "spindle.1") == "homeassistant/sensor/press-7/spindle_1_state/config"


@pytest.mark.parametrize("name", ["", "a/b", "x#", "status", "cmd"])
def test_unusable_sensor_names_raise_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="rename the sensor"):
        check_sensor_name(name)


def test_discovery_config_points_at_state_and_status() -> None:
    t = Topics("drsn-edge", "press-7")
    doc = discovery_config(t, "spindle", "1.2.3")
    assert doc["state_topic"] == doc["json_attributes_topic"] == t.state("spindle")
    assert doc["availability"][0]["topic"] == t.status
    assert doc["unique_id"] == "drsn_edge_press-7_spindle_state"
    assert doc["device"]["identifiers"] == ["drsn_edge_press-7"] and doc["device"]["sw_version"] == "1.2.3"


def test_commands_need_json_with_an_action(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    log_throttle.reset()
    assert parse_command("c", b'{"action": "reload", "x": 1}', retained=False) == {"action": "reload", "x": 1}
    assert parse_command("c", b"reload", retained=False) is None
    assert parse_command("c", b'{"verb": "reload"}', retained=False) is None
    assert parse_command("c", b'{"action": "reload"}', retained=True) is None
    assert parse_command("c", b"", retained=False) is None
    text = caplog.text
    assert "not valid JSON" in text and 'no valid "action"' in text and "retain flag" in text


def test_json_encoding_handles_numpy_and_names_bad_values() -> None:
    data = encode_json({"p": np.float32(0.5), "v": np.arange(2), "n": np.int64(3)}, "state")
    assert data == b'{"p":0.5,"v":[0,1],"n":3}'
    with pytest.raises(DataError, match="non-finite"):
        encode_json({"confidence": float("nan")}, "state")
    with pytest.raises(DataError, match="object is not JSON serialisable"):
        encode_json({"x": object()}, "event")


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    b = Backoff(1.0, 8.0, jitter=0.0, rng=random.Random(1))
    assert [b.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    b.reset()
    assert b.next_delay() == 1.0
    jittered = Backoff(1.0, 8.0, jitter=0.2, rng=random.Random(1))
    assert all(0.9 <= jittered.next_delay() / base <= 1.1 for base in (1.0, 2.0, 4.0))


def test_commands_config_refuses_actions_no_command_can_carry() -> None:
    from runtime.mqtt.config import CommandsConfig

    assert CommandsConfig(allow=["reload", "re-load.v2"]).allow == ["reload", "re-load.v2"]
    with pytest.raises(ValueError, match="no command can carry"):
        CommandsConfig(allow=["reload all"])
    with pytest.raises(ValueError):
        CommandsConfig(max_payload_bytes=8)
