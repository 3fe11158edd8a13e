"""Settings of the per-sensor fault state (smoothing, hysteresis, minimum duration, warm-up, no data).

Why a module of its own: the daemon's config parser needs the settings without the state
machine, and :mod:`runtime.fault_state` stays one job (the state itself).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runtime.config_base import StrictModel


class FaultStateConfig(StrictModel):
    """How per-window predictions become a per-sensor state."""

    smoothing: Literal["mean", "vote"] = Field(
        default="mean",
        description="mean: average the class probabilities of the last `history` windows; vote: count "
        "each window's top class and enter a class that wins `votes` of the last `history` (k-of-n).",
    )
    history: int = Field(
        default=5, ge=1, le=10_000, description="N: how many recent windows the smoothing uses."
    )
    votes: int | None = Field(
        default=None,
        ge=1,
        description="k in k-of-n voting (smoothing=vote): wins out of `history` needed to enter a class; "
        "default: a majority of `history`.",
    )
    enter_threshold: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="smoothing=mean: mean probability a class needs to become the state.",
    )
    exit_threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="The current state is held while its smoothed score (mean probability, or fraction of "
        "votes) stays at or above this; keep it below enter_threshold so a borderline score cannot flap.",
    )
    min_duration_s: float = Field(
        default=0.0,
        ge=0,
        description="A change must be indicated continuously for this many seconds (window timestamps) "
        "before it is published; 0 publishes at once.",
    )
    min_windows: int = Field(
        default=5, ge=1, description="Windows to see before the state may leave 'unknown'."
    )
    no_data_after_s: float | None = Field(
        default=30.0,
        gt=0,
        description="A sensor that delivers no windows for this many seconds (local clock) gets the state "
        "'no_data' (retained state, an event, metric drsn_edge_sensor_stale=1) until windows return; "
        "null turns the watchdog off. Keep it well above the time between two windows.",
    )

    @model_validator(mode="after")
    def _check(self) -> FaultStateConfig:
        if self.votes is not None and self.votes > self.history:
            raise ValueError(f"votes ({self.votes}) cannot exceed history ({self.history}); lower votes")
        if self.exit_threshold > self.enter_threshold:
            raise ValueError(
                f"exit_threshold ({self.exit_threshold}) above enter_threshold ({self.enter_threshold}) "
                "would make states flap; set exit_threshold <= enter_threshold"
            )
        return self

    @property
    def required_votes(self) -> int:
        """k of k-of-n: the configured votes, or a majority of the history."""
        return self.votes if self.votes is not None else self.history // 2 + 1
