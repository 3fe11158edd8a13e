"""Simulated accelerometers: the bearing simulator streamed as live sensors.

This source lets the whole device pipeline (windowing, batching, inference, fault state, MQTT)
run and be demonstrated with no hardware and no recordings: each sensor is a
:class:`~runtime.signals.simulator.BearingSimulator` whose condition follows a
:class:`~runtime.sources.schedule.FaultPlan`, so one machine can stay healthy while others
develop inner-race, outer-race or ball faults. A step that falls inside a chunk takes effect at
its exact sample; a ramp's severity is updated once per chunk.

In real time each sensor delivers ``sample_rate`` samples per second; in fast mode the chunks go
as fast as the daemon takes them, and ``duration_s`` / ``max_samples`` bound the run so that a
test or a benchmark gets an exact, reproducible number of samples (the seed fixes the signal).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from runtime.config_base import StrictModel
from runtime.diagnostics.bearings import lookup_bearing
from runtime.signals.simulator import SKF_6205, BearingGeometry, BearingSimulator, canonical_condition
from runtime.sources.base import Source
from runtime.sources.config import SourceConfigBase
from runtime.sources.fields import PACING_DESCRIPTION, Pacing, SensorId, require_unique
from runtime.sources.pacing import run_paced
from runtime.sources.schedule import FaultPlan, FaultStep, SeverityRamp, check_steps

log = logging.getLogger(__name__)


class SyntheticSensor(StrictModel):
    """One simulated machine."""

    id: SensorId = Field(..., description="Sensor id.")
    condition: str = Field("normal", description="Bearing condition at the start: normal, inner_race, "
                           "outer_race or ball.")
    severity: float = Field(1.0, ge=0, le=1, description="Fault severity at the start, in [0, 1].")
    rpm: float = Field(1797.0, gt=0, description="Shaft speed in revolutions per minute.")
    bearing: str | None = Field(None, description="Catalogue bearing whose kinematics set the fault "
                                "frequencies (6205, 6203, ...); default: the SKF 6205 the models were "
                                "trained on. Another one makes a machine of another kind.")
    resonance_hz: float | None = Field(None, gt=0, description="Structural resonance the impacts ring at, "
                                       "Hz; default 3000 (or a quarter of the sample rate).")
    schedule: list[FaultStep] = Field(default_factory=list, description="Condition changes over time, in "
                                      "increasing at_s order.")
    ramp: SeverityRamp | None = Field(None, description="A fault that grows linearly (instead of a "
                                      "schedule).")

    _canonical = field_validator("condition")(canonical_condition)

    @model_validator(mode="after")
    def _one_plan(self) -> SyntheticSensor:
        if self.schedule and self.ramp is not None:
            raise ValueError(f"sensor {self.id!r}: give either schedule or ramp, not both")
        check_steps(self.schedule)
        if self.bearing is not None:
            lookup_bearing(self.bearing)  # an unknown name lists the catalogue
        return self

    def geometry(self) -> BearingGeometry:
        """The simulator's geometry for :attr:`bearing`."""
        if self.bearing is None:
            return SKF_6205
        b = lookup_bearing(self.bearing)
        return BearingGeometry(b.n_elements, b.element_diameter_mm, b.pitch_diameter_mm, b.contact_angle_deg)


class SyntheticSourceConfig(SourceConfigBase):
    """Simulated bearing vibration for one or more sensors."""

    type: Literal["synthetic"] = Field("synthetic", description="Selects the simulated source.")
    sensors: list[SyntheticSensor] = Field(..., min_length=1, description="The simulated machines.")
    sample_rate: float = Field(12000.0, gt=0, description="Samples per second of every sensor.")
    chunk: int = Field(1024, gt=0, description="Samples per emitted chunk.")
    pacing: Pacing = Field("realtime", description=PACING_DESCRIPTION)
    duration_s: float | None = Field(None, gt=0, description="Stop each sensor after this much signal time.")
    max_samples: int | None = Field(None, gt=0, description="Stop each sensor after this many samples.")
    seed: int = Field(0, ge=0, description="Random seed; sensor i uses seed + i, so runs are reproducible.")

    @model_validator(mode="after")
    def _unique(self) -> SyntheticSourceConfig:
        require_unique(s.id for s in self.sensors)
        return self

    @property
    def budget(self) -> int | None:
        """Samples per sensor before the source ends (None: endless)."""
        limits = [self.max_samples] if self.max_samples is not None else []
        if self.duration_s is not None:
            limits.append(round(self.duration_s * self.sample_rate))
        return min(limits) if limits else None

    def sensor_ids(self) -> list[str]:
        return [str(entry.id) for entry in self.sensors]


class _SimulatedSensor:
    """One simulator following its fault plan, read in chunks up to an optional budget."""

    def __init__(self, spec: SyntheticSensor, sample_rate: float, seed: int, budget: int | None) -> None:
        self.sensor_id = spec.id
        self.sample_rate = sample_rate
        self._plan = FaultPlan.build(spec.condition, spec.severity, spec.schedule, spec.ramp, sample_rate)
        self.condition, self.severity = self._plan.state_at(0)
        self._sim = BearingSimulator(condition=self.condition, severity=self.severity,
                                     sample_rate=sample_rate, rpm=spec.rpm, seed=seed,
                                     geometry=spec.geometry(), resonance_hz=spec.resonance_hz)
        self._budget = budget
        self._pos = 0

    def read(self, n: int) -> np.ndarray | None:
        """Next ``n`` samples (fewer at the budget), switching state exactly at step boundaries."""
        if self._budget is not None:
            n = min(n, self._budget - self._pos)
        if n <= 0:
            return None
        end = self._pos + n
        parts: list[np.ndarray] = []
        while self._pos < end:
            self._apply(*self._plan.state_at(self._pos))
            boundary = self._plan.next_boundary(self._pos)
            stop = end if boundary is None else min(end, boundary)
            parts.append(np.asarray(self._sim.generate(stop - self._pos), dtype=np.float32))
            self._pos = stop
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _apply(self, condition: str, severity: float) -> None:
        if condition != self.condition:
            log.info("synthetic sensor %s: %s -> %s at %.2f s", self.sensor_id, self.condition, condition,
                     self._pos / self.sample_rate)
            self._sim.condition = condition
            self.condition = condition
        if severity != self.severity:
            self._sim.severity = severity
            self.severity = severity


class SyntheticSource(Source[SyntheticSourceConfig]):
    """Streams every configured simulated sensor from one thread."""

    type = "synthetic"

    def __init__(self, config: SyntheticSourceConfig) -> None:
        super().__init__(config)
        self._streams = [
            _SimulatedSensor(spec, config.sample_rate, config.seed + i, config.budget)
            for i, spec in enumerate(config.sensors)
        ]

    @property
    def sensors(self) -> dict[str, float]:
        return {s.sensor_id: s.sample_rate for s in self._streams}

    def truth(self) -> dict[str, tuple[str, float]]:
        """The simulated (condition, severity) of each sensor now, to compare with what the model says."""
        return {s.sensor_id: (s.condition, s.severity) for s in self._streams}

    def _run(self) -> None:
        speed = 1.0 if self.config.pacing == "realtime" else None
        ended = run_paced(self._streams, chunk=self.config.chunk, speed=speed, stopping=self._stopping,
                          emit_block=self._emit_block, report=self._report)
        if ended:
            self.finished.set()
