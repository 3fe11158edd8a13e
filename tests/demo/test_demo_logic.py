"""The demo's pieces without a broker: scenario timing, ground truth, the verdict, broker addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from drsn_edge.demo.monitor import EventSeen, SensorView
from drsn_edge.demo.scenario import default_scenario
from drsn_edge.demo.summary import judge, judge_machine, problems, summary_rows
from runtime.errors import ConfigError
from runtime.mqtt.local_broker import InProcessBroker, parse_broker_address

ORIGIN = 1_000_000.0  # wall-clock time of the simulation's first sample


def event(sensor: str, to: str, at_s: float, frm: str = "normal", delay_s: float = 0.05) -> EventSeen:
    fault = None if to == "unknown" else to != "normal"
    return EventSeen(sensor, 1, frm, to, fault, 0.9, ORIGIN + at_s, ORIGIN + at_s + delay_s)


def test_scenario_scales_with_duration_and_uses_model_class_names() -> None:
    short, long = default_scenario(10.0), default_scenario(40.0)
    assert [m.onset_s for m in long.machines] == [None if o is None else 4 * o for o in
                                                   (m.onset_s for m in short.machines)]
    assert [m.fault for m in long.machines] == [None, "outer_race", "inner_race", "ball", "outer_race"]
    assert [m.novel for m in long.machines] == [False] * 4 + [True]
    cfg = long.source_config()
    assert cfg.pacing == "realtime" and cfg.duration_s == 40.0
    assert [s.id for s in cfg.sensors] == ["pump-1", "fan-2", "motor-3", "conveyor-4", "press-5"]
    press = cfg.sensors[4]  # another kind of machine: the simulator rings and ticks differently
    assert press.bearing == "6203" and press.resonance_hz == 1500.0 and press.geometry().n_balls == 8


def test_truth_follows_the_fault_plan() -> None:
    sc = default_scenario(40.0)
    fan, motor = sc.machine("fan-2"), sc.machine("motor-3")
    assert fan.truth_at(7.9, sc.sample_rate) == ("normal", 0.0)
    assert fan.truth_at(8.0, sc.sample_rate) == ("outer_race", 0.8)
    cond, sev = motor.truth_at(20.0, sc.sample_rate)  # inner race ramp 14 s -> 26 s, 0.5 -> 1.0
    assert cond == "inner_race" and sev == pytest.approx(0.75, abs=1e-3)


def test_printed_config_is_what_the_daemon_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from drsn_edge.cli import main
    from runtime.config import load_config

    assert main(["demo", "--print-config", "--broker", "broker.lan:1884", "--duration", "20"]) == 0
    path = tmp_path / "demo.yaml"
    path.write_text(capsys.readouterr().out)
    cfg = load_config(path)
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("broker.lan", 1884)
    src = cfg.sources[0]
    assert src.type == "synthetic" and src.duration_s == 20.0
    assert [s.id for s in src.sensors] == ["pump-1", "fan-2", "motor-3", "conveyor-4", "press-5"]
    assert cfg.model.name == "drsn_cw_sim.onnx"
    assert cfg.novelty.threshold == "p99.9" and cfg.novelty.min_duration_s == 1.0


def test_too_short_a_demo_is_refused_with_the_minimum() -> None:
    with pytest.raises(ConfigError, match="at least 10"):
        default_scenario(5.0)


def test_a_model_without_the_simulated_classes_is_refused() -> None:
    with pytest.raises(ConfigError, match="omit --model"):
        default_scenario(20.0).check_model_classes(["normal", "B007", "IR007"], "normal")


def test_verdict_passes_on_correct_detections() -> None:
    sc = default_scenario(20.0)  # fan 4 s, motor 7 s, conveyor 9 s
    views = {
        "pump-1": SensorView(state="normal", events=[event("pump-1", "normal", 0.4, frm="unknown")]),
        "fan-2": SensorView(state="outer_race", events=[event("fan-2", "outer_race", 4.3)]),
        "motor-3": SensorView(state="inner_race", events=[event("motor-3", "inner_race", 7.2)]),
        "conveyor-4": SensorView(state="ball", events=[event("conveyor-4", "ball", 10.5)]),
        # press-5 (outer race from 6 s): the model calls it ball first, which is not judged on a machine
        # it never saw; unfamiliar after the onset is what passes
        "press-5": SensorView(state="unfamiliar", events=[event("press-5", "ball", 6.4),
                                                         event("press-5", "unfamiliar", 7.1, frm="ball")]),
    }
    outcomes = judge(sc, views, ORIGIN)
    assert problems(outcomes) == []
    assert outcomes[4].delay_s == pytest.approx(1.15)
    fan = outcomes[1]
    assert fan.decided_at_s == pytest.approx(4.3) and fan.delay_s == pytest.approx(0.35)
    assert [r[-1] for r in summary_rows(outcomes)] == [
        "ok: stayed normal", "ok: outer_race detected", "ok: inner_race detected", "ok: ball detected",
        "ok: unfamiliar"]


def test_verdict_fails_when_a_known_machine_goes_unfamiliar_or_the_unseen_one_does_not() -> None:
    sc = default_scenario(20.0)
    rate = sc.sample_rate
    known = SensorView(events=[event("fan-2", "outer_race", 4.3),
                               event("fan-2", "unfamiliar", 5.0, "outer_race")])
    fan = judge_machine(sc.machine("fan-2"), known, ORIGIN, rate)
    assert fan.detected_at_s is not None
    assert fan.false_alarms == ["unfamiliar published at 5.1 s while the bearing was outer_race, on a "
                                "machine of the kind the model was trained on"]
    early = judge_machine(sc.machine("press-5"), SensorView(events=[event("press-5", "unfamiliar", 2.0)]),
                          ORIGIN, rate)
    assert early.detected_at_s is None and "before its fault appeared" in early.false_alarms[0]
    wrong = SensorView(state="ball", events=[event("press-5", "ball", 6.5)])
    silent = judge_machine(sc.machine("press-5"), wrong, ORIGIN, rate)
    assert silent.wrong_class == [] and silent.false_alarms == []
    assert silent.problems == [
        "press-5: a machine the model never saw, its outer_race fault from 6 s was never published "
        "unfamiliar (last state ball; does the model carry novelty statistics? `drsn-edge calibrate` it and "
        "export again)"]


def test_verdict_fails_on_false_alarm_missed_fault_and_wrong_class() -> None:
    sc = default_scenario(20.0)
    rate = sc.sample_rate
    alarm = SensorView(state="ball", events=[event("pump-1", "ball", 12.0)])
    healthy = judge_machine(sc.machine("pump-1"), alarm, ORIGIN, rate)
    assert len(healthy.false_alarms) == 1 and "while the bearing was normal" in healthy.false_alarms[0]
    too_soon = SensorView(events=[event("fan-2", "outer_race", 3.0)])
    early = judge_machine(sc.machine("fan-2"), too_soon, ORIGIN, rate)
    assert early.false_alarms and early.detected_at_s is None  # before the onset (4 s): an alarm
    confused = SensorView(events=[event("motor-3", "ball", 8.0), event("motor-3", "inner_race", 9.0, "ball")])
    wrong = judge_machine(sc.machine("motor-3"), confused, ORIGIN, rate)
    assert wrong.wrong_class and wrong.detected_at_s == pytest.approx(9.05)
    missed = judge_machine(sc.machine("conveyor-4"), SensorView(state="normal"), ORIGIN, rate)
    texts = problems([healthy, early, wrong, missed])
    assert len(texts) == 5
    assert any("conveyor-4: its ball fault" in t and "never published" in t for t in texts)
    assert summary_rows([missed])[0][-1] == "FAIL"


def test_an_interrupted_run_says_which_faults_it_never_reached() -> None:
    sc = default_scenario(20.0)  # conveyor-4's ball fault is due at 9 s
    outcome = judge_machine(sc.machine("conveyor-4"), SensorView(state="normal"), ORIGIN, sc.sample_rate,
                            ended_at_s=6.5)
    assert outcome.problems == [
        "conveyor-4: its ball fault (due at 9 s) was not reached, the run stopped at 6.5 s"]
    assert summary_rows([outcome])[0][-1] == "not reached"


@pytest.mark.parametrize(("text", "expected"), [("localhost:1883", ("localhost", 1883)),
                                                ("10.0.0.5", ("10.0.0.5", 1883)),
                                                ("broker.lan:8883", ("broker.lan", 8883))])
def test_broker_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_broker_address(text) == expected


@pytest.mark.parametrize("text", [":1883", "host:mqtt", "host:70000"])
def test_bad_broker_address_says_the_form(text: str) -> None:
    with pytest.raises(ConfigError, match="--broker"):
        parse_broker_address(text)


def test_in_process_broker_relays_retained_and_qos1_messages() -> None:
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    with InProcessBroker() as broker:
        pub = mqtt.Client(CallbackAPIVersion.VERSION2)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        pub.publish("t/state", b"retained", qos=1, retain=True).wait_for_publish(5)
        got: list[tuple[str, bytes, bool]] = []
        done = threading.Event()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            got.append((msg.topic, msg.payload, bool(msg.retain)))
            if len(got) == 2:
                done.set()

        sub = mqtt.Client(CallbackAPIVersion.VERSION2)
        sub.on_message = on_message
        sub.connect(broker.host, broker.port)
        sub.subscribe("t/#", qos=1)
        sub.loop_start()
        import time

        time.sleep(0.3)
        pub.publish("t/event", b"e", qos=1).wait_for_publish(5)
        assert done.wait(5)
        for c in (pub, sub):
            c.loop_stop()
            c.disconnect()
    assert got == [("t/state", b"retained", True), ("t/event", b"e", False)]


def test_a_simulated_machine_of_another_kind_needs_a_catalogue_bearing() -> None:
    from runtime.sources.synthetic import SyntheticSensor

    with pytest.raises(ValueError, match=r"unknown bearing 'press'.*6203"):
        SyntheticSensor(id="p", bearing="press")
    assert SyntheticSensor(id="p").geometry().n_balls == 9  # the SKF 6205 the models were trained on
