"""How a simulated machine's bearing condition changes over time.

A demo is convincing when the daemon is seen to *notice* a fault developing: one machine stays
healthy while another's outer race starts to spall after a minute, or a ball fault grows slowly.
A sensor's plan is either a list of steps ("from 60 s: outer_race at severity 0.8") or one
linear severity ramp. Times are signal time (seconds of samples since the source started), not
wall time, so a fast run and a real-time run produce the same signal.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from pydantic import Field, field_validator, model_validator

from runtime.config_base import StrictModel
from runtime.errors import ConfigError
from runtime.signals.simulator import CONDITIONS, canonical_condition

_CONDITION_HELP = f"Bearing condition: one of {', '.join(CONDITIONS)}."


class FaultStep(StrictModel):
    """From ``at_s`` on, the sensor's bearing is in ``condition`` at ``severity``."""

    at_s: float = Field(..., ge=0, description="Signal time in seconds at which this step takes effect.")
    condition: str = Field(..., description=_CONDITION_HELP)
    severity: float = Field(1.0, ge=0, le=1, description="Fault severity in [0, 1]; 0 looks healthy.")

    _canonical = field_validator("condition")(canonical_condition)


class SeverityRamp(StrictModel):
    """A fault that appears at ``start_s`` and grows linearly until ``end_s``, then stays."""

    condition: str = Field(..., description=_CONDITION_HELP)
    start_s: float = Field(0.0, ge=0, description="Signal time in seconds at which the fault appears.")
    end_s: float = Field(..., gt=0, description="Signal time in seconds at which it reaches to_severity.")
    from_severity: float = Field(0.0, ge=0, le=1, description="Severity at start_s.")
    to_severity: float = Field(1.0, ge=0, le=1, description="Severity at end_s and after.")

    _canonical = field_validator("condition")(canonical_condition)

    @model_validator(mode="after")
    def _ordered(self) -> SeverityRamp:
        if self.end_s <= self.start_s:
            raise ConfigError(f"ramp end_s={self.end_s} must be after start_s={self.start_s}")
        return self


def check_steps(steps: list[FaultStep]) -> None:
    """Raise ConfigError unless step times strictly increase (an unsorted plan is a typo)."""
    for a, b in itertools.pairwise(steps):
        if b.at_s <= a.at_s:
            raise ConfigError(f"schedule steps must be in increasing at_s order; {b.at_s} follows {a.at_s}")


@dataclass(frozen=True)
class FaultPlan:
    """A sensor's schedule in sample indices: the state at any sample and the next step boundary."""

    sample_rate: float
    starts: tuple[int, ...]
    conditions: tuple[str, ...]
    severities: tuple[float, ...]
    ramp: SeverityRamp | None = None

    @classmethod
    def build(cls, condition: str, severity: float, steps: list[FaultStep], ramp: SeverityRamp | None,
              sample_rate: float) -> FaultPlan:
        """The base state from sample 0, then each step (or the ramp's start) at its first sample."""
        starts, conds, sevs = [0], [canonical_condition(condition)], [severity]
        for step in steps:
            starts.append(_first_sample(step.at_s, sample_rate))
            conds.append(step.condition)
            sevs.append(step.severity)
        if ramp is not None:
            starts.append(_first_sample(ramp.start_s, sample_rate))
            conds.append(ramp.condition)
            sevs.append(ramp.from_severity)
        return cls(sample_rate, tuple(starts), tuple(conds), tuple(sevs), ramp)

    def state_at(self, sample: int) -> tuple[str, float]:
        """(condition, severity) in force at ``sample``."""
        i = max(k for k, start in enumerate(self.starts) if start <= sample)
        if self.ramp is not None and i == len(self.starts) - 1 and i > 0:
            return self.conditions[i], self._ramp_severity(sample / self.sample_rate)
        return self.conditions[i], self.severities[i]

    def next_boundary(self, sample: int) -> int | None:
        """First sample after ``sample`` where a step begins, or None."""
        return next((s for s in self.starts if s > sample), None)

    def _ramp_severity(self, t: float) -> float:
        r = self.ramp
        assert r is not None
        frac = min(max((t - r.start_s) / (r.end_s - r.start_s), 0.0), 1.0)
        return r.from_severity + frac * (r.to_severity - r.from_severity)


def _first_sample(t: float, sample_rate: float) -> int:
    """Index of the first sample at or after time ``t`` (tolerant of 0.1 * 12000 = 1200.0000000002)."""
    return math.ceil(t * sample_rate - 1e-6)
