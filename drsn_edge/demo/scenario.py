"""The demo's story: four simulated machines, one stays healthy, three develop a bearing fault.

The scenario is what makes the demo convincing, so it is chosen to be *honest* about the model:

* ``pump-1`` stays healthy for the whole run: any fault it raises is a false alarm.
* ``fan-2`` gets an outer-race spall suddenly (a step to severity 0.8).
* ``motor-3`` develops an inner-race fault that grows from severity 0.5 to 1.0.
* ``conveyor-4`` develops a ball fault that grows from 0.2 (invisible under the noise) to 1.0,
  so its detection delay shows how long a growing fault stays below what the model can see.
* ``press-5`` is a machine of another kind (a 6203 bearing, 1200 rpm, a 1.5 kHz resonance) that
  the model never saw. It runs healthy (a healthy bearing looks alike on any machine) and then gets
  an outer-race fault the model cannot diagnose on it: the daemon's novelty score should turn it
  ``unfamiliar`` within a few seconds instead of publishing a confident wrong class, while the four
  machines of the kind the model knows never go ``unfamiliar``.

The packaged model was trained on severities 0.5-1.0; below about 0.45 an inner-race or
outer-race fault looks like a ball fault to it, so the scenario starts those two at a severity
the model knows instead of pretending it can diagnose incipient faults it never saw.
All times are fractions of the run's duration, so a 12 s test run and the 40 s default tell
the same story. Times are signal time (seconds of samples since the source started).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.errors import ConfigError
from runtime.sources.schedule import FaultPlan, FaultStep, SeverityRamp
from runtime.sources.synthetic import SyntheticSensor, SyntheticSourceConfig

HEALTHY = "normal"
#: press-5's resonance: far below the 2-3.4 kHz the packaged model's machines rang at, so its outer-race
#: fault scores above p99.9 (docs/novelty.md, "The demo's fifth machine", has the other kinds measured)
UNSEEN_RESONANCE_HZ = 1500.0
MIN_DURATION_S = 10.0
DEFAULT_DURATION_S = 40.0


@dataclass(frozen=True)
class Machine:
    """One simulated machine: its sensor, its fault plan and what the daemon should conclude."""

    sensor_id: str
    rpm: float
    story: str
    fault: str | None = None
    step: FaultStep | None = None
    ramp: SeverityRamp | None = None
    bearing: str | None = None  # None: the SKF 6205 the packaged model was trained on
    resonance_hz: float | None = None
    novel: bool = False  # a machine the model never saw: judged by `unfamiliar`, not by its class

    @property
    def onset_s(self) -> float | None:
        """Signal time at which the fault appears (None for the healthy machine)."""
        if self.step is not None:
            return self.step.at_s
        if self.ramp is not None:
            return self.ramp.start_s
        return None

    def sensor_config(self) -> SyntheticSensor:
        return SyntheticSensor(
            id=self.sensor_id, condition=HEALTHY, severity=0.0, rpm=self.rpm,
            schedule=[self.step] if self.step is not None else [], ramp=self.ramp,
            bearing=self.bearing, resonance_hz=self.resonance_hz,
        )

    def truth_at(self, t: float, sample_rate: float) -> tuple[str, float]:
        """(condition, severity) the simulator produces at signal time ``t``."""
        plan = FaultPlan.build(HEALTHY, 0.0, [self.step] if self.step else [], self.ramp, sample_rate)
        return plan.state_at(max(int(t * sample_rate), 0))


@dataclass(frozen=True)
class Scenario:
    """The machines, how long the run lasts and the simulator's seed."""

    machines: tuple[Machine, ...]
    duration_s: float
    sample_rate: float = 12000.0
    seed: int = 7

    @property
    def faults(self) -> set[str]:
        return {m.fault for m in self.machines if m.fault is not None}

    def machine(self, sensor_id: str) -> Machine:
        return next(m for m in self.machines if m.sensor_id == sensor_id)

    def source_config(self) -> SyntheticSourceConfig:
        """The daemon's synthetic source: real time, ending after ``duration_s`` of signal."""
        return SyntheticSourceConfig(
            sensors=[m.sensor_config() for m in self.machines], sample_rate=self.sample_rate,
            pacing="realtime", duration_s=self.duration_s, seed=self.seed,
        )

    def check_model_classes(self, classes: list[str], healthy: str) -> None:
        """The model must know every condition the scenario simulates, under the same names."""
        missing = sorted((self.faults | {HEALTHY}) - set(classes))
        if missing or healthy != HEALTHY:
            raise ConfigError(
                f"the demo simulates {sorted(self.faults | {HEALTHY})} with healthy class {HEALTHY!r}, but "
                f"the model's classes are {classes} (healthy {healthy!r}); run the demo with the packaged "
                "model (omit --model) or a model trained with `drsn-edge train --source synthetic`"
            )


def default_scenario(duration_s: float = DEFAULT_DURATION_S, seed: int = 7) -> Scenario:
    """The five-machine story above, timed as fractions of ``duration_s``."""
    if duration_s < MIN_DURATION_S:
        raise ConfigError(
            f"--duration {duration_s:g} s is too short for the faults to appear and be seen; use at least "
            f"{MIN_DURATION_S:g} s"
        )
    d = duration_s

    def at(frac: float) -> float:
        return round(frac * d, 2)

    machines = (
        Machine("pump-1", 1797.0, "stays healthy"),
        Machine("fan-2", 1750.0, f"outer race at {at(0.2):g} s", fault="outer_race",
                step=FaultStep(at_s=at(0.2), condition="outer_race", severity=0.8)),
        Machine("motor-3", 1772.0, f"inner race from {at(0.35):g} s, grows", fault="inner_race",
                ramp=SeverityRamp(condition="inner_race", start_s=at(0.35), end_s=at(0.65),
                                  from_severity=0.5, to_severity=1.0)),
        Machine("conveyor-4", 1730.0, f"ball from {at(0.45):g} s, grows from 0.2",
                fault="ball",
                ramp=SeverityRamp(condition="ball", start_s=at(0.45), end_s=at(0.8),
                                  from_severity=0.2, to_severity=1.0)),
        Machine("press-5", 1200.0, f"another kind (6203, 1200 rpm): outer race at {at(0.3):g} s",
                fault="outer_race", step=FaultStep(at_s=at(0.3), condition="outer_race", severity=0.8),
                bearing="6203", resonance_hz=UNSEEN_RESONANCE_HZ, novel=True),
    )
    return Scenario(machines=machines, duration_s=d, seed=seed)
