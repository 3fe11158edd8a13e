"""The daemon with envelope diagnostics: fault events and states carry the evidence (real broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from runtime.diagnostics.monitor import fault_type_of_class
from runtime.mqtt.messages import DiagnosticsAlertPayload, EventPayload
from tests.daemon.support import Subscriber, base_config, topic, unique_events
from tests.support.broker import MosquittoBroker


@pytest.mark.slow
def test_fault_events_carry_envelope_evidence_and_corroboration(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    source = {
        "type": "synthetic",
        "pacing": "fast",
        "duration_s": 4.0,
        "sensors": [{"id": "spindle", "condition": "inner_race"}, {"id": "fan", "condition": "inner_race"}],
    }
    cfg = base_config(broker.host, broker.port, tmp_path, [source], exit_when_sources_finish=True)
    cfg["sensors"] = {
        "spindle": {"diagnostics": {"bearing": "6205", "rpm": 1797, "seconds": 1.0}},
        # the wrong bearing on purpose: its BPFI is 9 % off, so the envelope cannot confirm the fault
        "fan": {
            "diagnostics": {"bearing": "UER204", "rpm": 1797, "seconds": 1.0, "require_corroboration": True}
        },
    }
    sub = Subscriber(broker.host, broker.port, (topic("+", "event"), topic("+", "state")))
    try:
        assert Daemon(validate_config_dict(cfg)).run(install_signals=False) == 0
        sub.wait_for(lambda s: bool(s.events("spindle")) and bool(s.events("fan")), 10, "both fault events")
        spindle = unique_events(sub.events("spindle"))[0]
        assert spindle["to"] == "inner_race" and spindle["corroborated"] is True and spindle["alert"] is True
        evidence = spindle["envelope"]
        assert evidence["verdict"] == "inner_race" and evidence["harmonics_found"] >= 2
        assert abs(evidence["matched_frequency_hz"] - 5.4152 * 1797 / 60) < 0.5
        assert evidence["prominence_db"] > 10 and evidence["bearing"] == "SKF 6205-2RS JEM"
        fan = unique_events(sub.events("fan"))[0]
        assert fan["to"] == "inner_race" and fan["corroborated"] is False and fan["alert"] is False
        sub.wait_for(
            lambda s: any(
                (m.json().get("envelope") or {}).get("verdict") == "inner_race"
                for m in s.on(topic("spindle", "state"))
            ),
            10,
            "a spindle state carrying the evidence",
        )
    finally:
        sub.close()


@pytest.mark.parametrize(
    ("diagnostics", "words"),
    [
        ({"bearing": "6309", "rpm": 1797}, "catalogue holds"),
        ({"bearing": "6205", "rpm": 0}, "positive number of rpm"),
        ({"bearing": "6205"}, "rpm"),
        (
            {"bearing": {"n_elements": 30, "element_diameter_mm": 8, "pitch_diameter_mm": 39}, "rpm": 1797},
            "do not fit",
        ),
    ],
)
def test_a_bad_diagnostics_section_fails_validation_with_the_fix(
    tmp_path: Path, diagnostics: dict[str, object], words: str
) -> None:
    from runtime.errors import ConfigError

    source = {"type": "synthetic", "sensors": [{"id": "spindle", "condition": "normal"}]}
    cfg = base_config("localhost", 1883, tmp_path, [source])
    cfg["sensors"] = {"spindle": {"diagnostics": diagnostics}}
    with pytest.raises(ConfigError, match=words):
        validate_config_dict(cfg)


def test_a_ring_too_short_for_the_bearing_stops_the_start_with_the_length_needed(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    from runtime.errors import ConfigError

    source = {
        "type": "synthetic",
        "pacing": "fast",
        "duration_s": 1.0,
        "sensors": [{"id": "spindle", "condition": "normal"}],
    }
    cfg = base_config(broker.host, broker.port, tmp_path, [source], exit_when_sources_finish=True)
    cfg["sensors"] = {"spindle": {"diagnostics": {"bearing": "6205", "rpm": 1797, "seconds": 0.2}}}
    daemon = Daemon(validate_config_dict(cfg))
    try:
        with pytest.raises(ConfigError, match=r"needs at least 0\.47 s \(5589 samples\)"):
            daemon.start()
    finally:
        daemon.stop()


@pytest.mark.slow
def test_a_signature_the_classifier_does_not_see_raises_its_own_alert(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    # the classifier is made blind on purpose: a state needs a mean probability of 1.0 to enter
    source = {
        "type": "synthetic",
        "pacing": "realtime",
        "duration_s": 3.0,
        "sensors": [{"id": "gearbox", "condition": "outer_race"}],
    }
    cfg = base_config(broker.host, broker.port, tmp_path, [source], exit_when_sources_finish=True)
    blind = {**cfg["fault_state"], "enter_threshold": 1.0, "exit_threshold": 0.99}
    cfg["sensors"] = {
        "gearbox": {
            "fault_state": blind,
            "diagnostics": {
                "bearing": "6205",
                "rpm": 1797,
                "seconds": 1.0,
                "every_s": 1.0,
                "alert_unseen": True,
            },
        }
    }
    sub = Subscriber(broker.host, broker.port, (topic("gearbox", "diagnostics"), topic("gearbox", "event")))
    try:
        daemon = Daemon(validate_config_dict(cfg))
        assert daemon.run(install_signals=False) == 0
        sub.wait_for(lambda s: bool(s.on(topic("gearbox", "diagnostics"))), 10, "the envelope's own alert")
        alerts = [m.json() for m in sub.on(topic("gearbox", "diagnostics"))]
        assert len(alerts) == 1  # one alert per signature, not one per analysis
        assert alerts[0]["fault_type"] == "outer_race" and alerts[0]["classifier_state"] == "healthy"
        assert alerts[0]["envelope"]["strength"] == "strong"
        typed = DiagnosticsAlertPayload.model_validate(alerts[0])  # the contract, with nothing undeclared
        assert typed.model_extra == {} and typed.schema_version == 1
        assert typed.device == cfg["mqtt"]["device_id"]
        value = daemon.metrics.registry.get_sample_value
        assert value("drsn_edge_diagnostics_alerts_total", {"sensor": "gearbox"}) == 1
        assert (value("drsn_edge_diagnostics_analyses_total", {"sensor": "gearbox"}) or 0) >= 2
        # the classifier never entered a bearing fault (it may say unfamiliar: novelty is not a fault type)
        assert all(fault_type_of_class(e["to"]) is None for e in sub.events("gearbox"))
    finally:
        sub.close()


@pytest.mark.slow
def test_the_speed_comes_from_a_topic_and_without_it_the_evidence_is_not_applicable(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    """spindle reads a retained JSON speed; fan's topic never carries one: its fault event says why
    the evidence is not_applicable, and the Prometheus counters count both outcomes."""
    from paho.mqtt import publish

    publish.single("plant/m7/drive", '{"drive": {"rpm": 1797}}', qos=1, retain=True,
                   hostname=broker.host, port=broker.port)
    source = {
        "type": "synthetic",
        "pacing": "realtime",
        "duration_s": 3.0,
        "sensors": [{"id": "spindle", "condition": "inner_race"}, {"id": "fan", "condition": "inner_race"}],
    }
    cfg = base_config(broker.host, broker.port, tmp_path, [source], exit_when_sources_finish=True)
    cfg["sensors"] = {
        "spindle": {"diagnostics": {"bearing": "6205", "seconds": 1.0,
                                    "rpm": {"topic": "plant/m7/drive", "field": "drive.rpm"}}},
        "fan": {"diagnostics": {"bearing": "6205", "seconds": 1.0, "rpm": {"topic": "plant/m8/rpm"}}},
    }
    sub = Subscriber(broker.host, broker.port, (topic("+", "event"),))
    try:
        daemon = Daemon(validate_config_dict(cfg))
        assert daemon.run(install_signals=False) == 0
        sub.wait_for(lambda s: bool(s.events("spindle")) and bool(s.events("fan")), 10, "both fault events")
        spindle = unique_events(sub.events("spindle"))[0]
        assert spindle["corroborated"] is True and spindle["envelope"]["rpm"] == 1797
        fan = unique_events(sub.events("fan"))[0]
        assert fan["to"] == "inner_race" and fan["corroborated"] == "not_applicable" and fan["alert"] is True
        assert fan["envelope"]["reason"] == "no speed received on plant/m8/rpm yet"
        for event in (spindle, fan):
            assert EventPayload.model_validate(event).model_extra == {}
        value = daemon.metrics.registry.get_sample_value
        assert value("drsn_edge_diagnostics_corroborated_total", {"result": "true"}) == 1
        assert value("drsn_edge_diagnostics_corroborated_total", {"result": "not_applicable"}) == 1
        assert value("drsn_edge_diagnostics_corroborated_total", {"result": "false"}) == 0
        snapshot = daemon.metrics.snapshot()  # what the MQTT metrics message carries
        by_result = snapshot["diagnostics_corroborated"]["by_result"]
        assert by_result == {"true": 1, "false": 0, "not_applicable": 1}
        assert snapshot["diagnostics_analyses"]["by_sensor"] == {"spindle": 1}
        assert value("drsn_edge_diagnostics_speed_unavailable_total", {"sensor": "fan"}) == 1
        assert value("drsn_edge_diagnostics_analyses_total", {"sensor": "spindle"}) == 1
        assert value("drsn_edge_diagnostics_analysis_seconds_count", {}) == 1
        assert value("drsn_edge_diagnostics_failures_total", {"sensor": "spindle"}) is None
    finally:
        sub.close()
