"""The published payloads are the typed models of runtime/mqtt/messages.py, and the JSON Schemas in
docs/schemas/ and the README's payload section say what those models say."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel

from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from runtime.mqtt.messages import (
    MESSAGES,
    EventPayload,
    MetricsPayload,
    PredictionBatchPayload,
    PredictionPayload,
    StatePayload,
    StatusPayload,
    json_schemas,
)
from runtime.mqtt.topics import STATUS_OFFLINE, STATUS_ONLINE, STATUS_STOPPED
from runtime.mqtt.write_schemas import schema_text
from tests.daemon.support import Subscriber, base_config
from tests.support.broker import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "docs" / "schemas"
REGENERATE = "regenerate them with `python -m runtime.mqtt.write_schemas docs/schemas`"


def test_the_schema_files_are_current() -> None:
    expected = {f"{name}.schema.json": schema_text(s) for name, s in json_schemas().items()}
    found = {p.name: p.read_text() for p in SCHEMAS.glob("*.schema.json")}
    assert sorted(found) == sorted(expected), f"docs/schemas holds other files; {REGENERATE}"
    stale = [name for name, text in expected.items() if found[name] != text]
    assert stale == [], f"{stale} are stale; {REGENERATE}"


def _wire_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def test_the_readme_payload_section_names_every_field() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## MQTT topics and payloads", 1)[1].split("\n## ", 1)[0]
    assert "docs/schemas/" in section
    for model in (StatePayload, EventPayload):
        missing = [n for n in _wire_names(model) if not re.search(rf'[`"]{re.escape(n)}[`"]', section)]
        assert missing == [], f"the README's payload section does not name {model.__name__} fields {missing}"
    assert StatusPayload.model_json_schema()["enum"] == [STATUS_ONLINE, STATUS_OFFLINE, STATUS_STOPPED]


@pytest.mark.slow
def test_what_the_daemon_publishes_is_exactly_the_models(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Callable[..., Subscriber]
) -> None:
    """Every state, event, prediction and metrics message of a short run validates, with no field
    the models do not declare: a new field is added to its model (and the schemas) first."""
    source = {"type": "synthetic", "pacing": "fast", "duration_s": 3.0,
              "sensors": [{"id": "fan", "condition": "normal",
                           "schedule": [{"at_s": 1.0, "condition": "inner_race"}]}]}
    cfg = base_config(broker.host, broker.port, tmp_path, [source], exit_when_sources_finish=True)
    cfg["mqtt"]["publish_predictions"] = True
    cfg["mqtt"]["predictions"] = "both"  # per window and per batch
    cfg["mqtt"]["metrics_interval_s"] = 0.2
    sub = subscriber()
    assert Daemon(validate_config_dict(cfg)).run(install_signals=False) == 0
    kinds: dict[str, type[BaseModel]] = {
        "state": StatePayload, "event": EventPayload, "prediction": PredictionPayload,
        "predictions": PredictionBatchPayload, "metrics": MetricsPayload,
    }
    sub.wait_for(lambda s: any(m.topic.endswith("/event") for m in s.messages), 10, "an event")
    seen: dict[str, int] = {}
    for msg in list(sub.messages):
        kind = msg.topic.rsplit("/", 1)[-1]
        if kind == "status":
            StatusPayload.model_validate(msg.payload.decode())
        elif kind in kinds and msg.payload:
            wire = msg.json()
            assert wire.get("schema") == 1, f"a {kind} message without its schema version"
            payload = kinds[kind].model_validate(wire)
            undeclared = set(payload.model_extra or {})
            if kind == "metrics":  # the counters follow the metrics; only the named fields are contract
                undeclared = set()
            assert undeclared == set(), f"{kind} carries fields its model does not declare: {undeclared}"
        seen[kind] = seen.get(kind, 0) + 1
    assert {"state", "event", "prediction", "predictions", "metrics", "status"} <= set(seen), seen
    # the envelope's own alert (diagnostics) is checked against its model in tests/diagnostics
    assert set(MESSAGES) == {*kinds, "status", "command", "diagnostics"}
