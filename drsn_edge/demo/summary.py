"""The demo's verdict: per machine, when the fault appeared, when the daemon said so, and false alarms.

The verdict is judged only from what a subscriber received over MQTT (the events), against the
scenario's ground truth, so it checks the whole chain: simulator, windowing, ONNX Runtime,
fault-state hysteresis, outbox and broker. The demo passes when every faulty machine's own
fault class was published after the fault appeared, no machine raised a fault while its
bearing was healthy, and no faulty machine was published with a wrong fault class. A machine of a
kind the model never saw (``Machine.novel``) passes when it is published ``unfamiliar`` after its
fault appears; the machines the model knows must never be published ``unfamiliar``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from drsn_edge.demo.monitor import SensorView
from drsn_edge.demo.scenario import Machine, Scenario
from runtime.fault_state import ANOMALOUS, UNFAMILIAR

NOVELTY_STATES = (UNFAMILIAR, ANOMALOUS)


@dataclass
class MachineOutcome:
    """How the daemon did on one machine; times are signal seconds since the simulation started."""

    machine: Machine
    final_state: str
    events: int
    detected_at_s: float | None = None  # when the subscriber received the correct fault event
    decided_at_s: float | None = None  # end of the window that made the daemon decide
    false_alarms: list[str] = field(default_factory=list)
    wrong_class: list[str] = field(default_factory=list)
    ended_at_s: float = math.inf  # signal time at which the run stopped (early on Ctrl-C)

    @property
    def delay_s(self) -> float | None:
        """Seconds from the fault's appearance to its event reaching the subscriber."""
        onset = self.machine.onset_s
        if onset is None or self.detected_at_s is None:
            return None
        return self.detected_at_s - onset

    @property
    def problems(self) -> list[str]:
        m, out = self.machine, []
        if m.fault is not None and self.detected_at_s is None:
            assert m.onset_s is not None
            if m.onset_s >= self.ended_at_s:
                out.append(f"{m.sensor_id}: its {m.fault} fault (due at {m.onset_s:g} s) was not reached, "
                           f"the run stopped at {self.ended_at_s:.1f} s")
            elif m.novel:
                out.append(f"{m.sensor_id}: a machine the model never saw, its {m.fault} fault from "
                           f"{m.onset_s:g} s was never published {UNFAMILIAR} (last state "
                           f"{self.final_state}; does the model carry novelty statistics? "
                           "`drsn-edge calibrate` it and export again)")
            else:
                out.append(f"{m.sensor_id}: its {m.fault} fault (from {m.onset_s:g} s) was never published "
                           f"(last state {self.final_state})")
        for alarm in self.false_alarms:
            out.append(f"{m.sensor_id}: false alarm, {alarm}")
        for wrong in self.wrong_class:
            out.append(f"{m.sensor_id}: wrong diagnosis, {wrong}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"sensor": self.machine.sensor_id, "story": self.machine.story, "fault": self.machine.fault,
                "injected_at_s": self.machine.onset_s, "detected_at_s": self.detected_at_s,
                "decided_at_s": self.decided_at_s, "delay_s": self.delay_s, "final_state": self.final_state,
                "events": self.events, "false_alarms": self.false_alarms, "wrong_class": self.wrong_class}


def judge_machine(machine: Machine, view: SensorView, origin: float, sample_rate: float,
                  ended_at_s: float = math.inf) -> MachineOutcome:
    """Replay one machine's events against its ground truth."""
    out = MachineOutcome(machine, view.state, len(view.events), ended_at_s=ended_at_s)
    for ev in view.events:
        decided, received = ev.ts - origin, ev.received - origin
        truth, _ = machine.truth_at(decided, sample_rate)
        when = f"{ev.to_state} published at {received:.1f} s while the bearing was {truth}"
        if ev.to_state in NOVELTY_STATES:
            if not machine.novel:
                out.false_alarms.append(f"{when}, on a machine of the kind the model was trained on")
            elif truth == "normal":
                out.false_alarms.append(f"{when}, before its fault appeared")
            elif out.detected_at_s is None:
                out.detected_at_s, out.decided_at_s = received, decided
            continue
        if not ev.fault or machine.novel:  # the classes of a machine the model never saw are not judged
            continue
        if truth == "normal":
            out.false_alarms.append(when)
        elif ev.to_state != truth:
            out.wrong_class.append(when)
        elif out.detected_at_s is None:
            out.detected_at_s, out.decided_at_s = received, decided
    return out


def judge(scenario: Scenario, views: dict[str, SensorView], origin: float,
          ended_at_s: float = math.inf) -> list[MachineOutcome]:
    return [judge_machine(m, views.get(m.sensor_id, SensorView()), origin, scenario.sample_rate, ended_at_s)
            for m in scenario.machines]


def problems(outcomes: list[MachineOutcome]) -> list[str]:
    return [p for o in outcomes for p in o.problems]


def summary_rows(outcomes: list[MachineOutcome]) -> list[tuple[str, ...]]:
    """Rows of the summary table: machine, fault, injected, published, delay, false alarms, result."""
    rows: list[tuple[str, ...]] = []
    for o in outcomes:
        m = o.machine
        injected = "-" if m.onset_s is None else f"{m.onset_s:.1f} s"
        published = "-" if o.detected_at_s is None else f"{o.detected_at_s:.1f} s"
        delay = "-" if o.delay_s is None else f"{o.delay_s:.1f} s"
        if m.onset_s is not None and m.onset_s >= o.ended_at_s and o.detected_at_s is None:
            result = "not reached"
        elif o.problems:
            result = "FAIL"
        elif m.fault is None:
            result = f"ok: stayed {o.final_state}"
        elif m.novel:
            result = f"ok: {UNFAMILIAR}"
        else:
            result = f"ok: {m.fault} detected"
        fault = f"{m.fault}, unseen" if m.novel else m.fault or "none (healthy)"
        rows.append((m.sensor_id, fault, injected, published, delay,
                     str(len(o.false_alarms)), result))
    return rows


SUMMARY_HEADER = ("machine", "fault", "injected at", "published at", "delay", "false alarms", "result")

