"""What the person running the demo sees: a live table in a terminal, plain lines anywhere else.

In a terminal a rich ``Live`` table is redrawn a few times a second: per machine the simulator's
true condition, the state the daemon published, its confidence, the latest window's class and
the events so far. When stdout is not a terminal (a CI log, a test, ``| tee``), redrawing would
bury the log in escape codes, so :class:`PlainLines` prints one line per thing that happened:
a fault injected by the simulator, an event received over MQTT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from drsn_edge.demo.monitor import SensorView
from drsn_edge.demo.scenario import HEALTHY, Scenario
from drsn_edge.demo.summary import SUMMARY_HEADER, MachineOutcome, summary_rows


@dataclass(frozen=True)
class Frame:
    """Everything one redraw needs; ``truth`` is ``{sensor: (condition, severity)}`` from the simulator."""

    elapsed_s: float
    origin: float  # wall-clock time of the simulation's first sample
    views: Mapping[str, SensorView]
    truth: Mapping[str, tuple[str, float]]


class Display(Protocol):
    def show(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


def _style(state: str) -> str:
    if state == HEALTHY:
        return "green"
    if state in ("-", "unknown"):
        return "dim"
    return "bold red"


class LiveTable:
    """A rich Live table, redrawn on every :meth:`show` (the caller paces it)."""

    def __init__(self, scenario: Scenario, console: Console) -> None:
        self.scenario = scenario
        self._live = Live(live_table(scenario, Frame(0.0, 0.0, {}, {})), console=console, auto_refresh=False,
                          transient=False)
        self._live.start()

    def show(self, frame: Frame) -> None:
        self._live.update(live_table(self.scenario, frame), refresh=True)

    def close(self) -> None:
        self._live.stop()


def live_table(scenario: Scenario, frame: Frame) -> Table:
    """One machine per row: truth from the simulator beside what the subscriber heard."""
    table = Table(title=f"drsn-edge demo: {frame.elapsed_s:4.0f} s of {scenario.duration_s:g} s",
                  title_justify="left")
    for name in ("machine", "scenario", "true condition", "published state", "confidence", "last window",
                 "events"):
        table.add_column(name, no_wrap=name != "scenario")
    for m in scenario.machines:
        view = frame.views.get(m.sensor_id, SensorView())
        cond, sev = frame.truth.get(m.sensor_id, (HEALTHY, 0.0))
        truth = cond if cond == HEALTHY else f"{cond} ({sev:.2f})"
        conf = "" if view.confidence is None else f"{view.confidence:.2f}"
        last = "" if view.last_class is None else f"{view.last_class} {view.last_confidence:.2f}"
        table.add_row(m.sensor_id, m.story, Text(truth, style=_style(cond)),
                      Text(view.state, style=_style(view.state)), conf, last, str(len(view.events)))
    return table


class PlainLines:
    """One printed line per injected fault and per event received; nothing is redrawn."""

    def __init__(self, scenario: Scenario, console: Console) -> None:
        self.scenario = scenario
        self.console = console
        self._truth: dict[str, str] = {m.sensor_id: HEALTHY for m in scenario.machines}
        self._events: dict[str, int] = {}

    def show(self, frame: Frame) -> None:
        for m in self.scenario.machines:
            cond, sev = frame.truth.get(m.sensor_id, (HEALTHY, 0.0))
            if cond != self._truth[m.sensor_id]:
                self._truth[m.sensor_id] = cond
                at = m.onset_s if m.onset_s is not None and cond != HEALTHY else frame.elapsed_s
                self._print(at, m.sensor_id, f"simulator: the bearing develops {cond} (severity {sev:.2f})")
            view = frame.views.get(m.sensor_id)
            if view is None:
                continue
            for ev in view.events[self._events.get(m.sensor_id, 0):]:
                text = f"daemon published {ev.from_state} -> {ev.to_state} (confidence {ev.confidence:.2f})"
                self._print(ev.received - frame.origin, m.sensor_id, text)
            self._events[m.sensor_id] = len(view.events)

    def _print(self, t: float, sensor: str, text: str) -> None:
        self.console.print(f"[{t:5.1f} s] {sensor:<11} {text}", highlight=False, markup=False)

    def close(self) -> None:
        """Nothing to tear down: every line is already printed."""


def print_summary(console: Console, outcomes: list[MachineOutcome], problems: list[str]) -> None:
    """The per-machine verdict table, then PASS or every reason for FAIL."""
    console.print()
    table = Table(title="summary (times are seconds since the simulation started)", title_justify="left")
    for name in SUMMARY_HEADER:
        table.add_column(name, no_wrap=True)
    for row in summary_rows(outcomes):
        table.add_row(*row)
    console.print(table)
    if not problems:
        console.print("PASS: every fault was detected, the unseen machine went unfamiliar and no machine "
                      "raised a false alarm",
                      style="bold green")
        return
    console.print("FAIL:", style="bold red")
    for p in problems:
        console.print(f"  - {p}", highlight=False, markup=False)
