"""Per-sensor envelope diagnostics in the daemon's config (``sensors: <id>: diagnostics:``).

.. code-block:: yaml

    sensors:
      pump-1:
        diagnostics:
          bearing: "6205"            # a catalogue name, or the geometry:
          # bearing: {n_elements: 9, element_diameter_mm: 7.94, pitch_diameter_mm: 39.04}
          rpm: 1797                  # fixed, or read from a topic:
          # rpm: {topic: plant/line1/motor7/rpm, field: drive.rpm, max_age_s: 10}
          every_s: 60                # also analyse once a minute (0: only when a fault state is entered)
          require_corroboration: false
          alert_unseen: true
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from runtime.config_base import StrictModel
from runtime.diagnostics.bearings import Bearing, bearing_from
from runtime.diagnostics.envelope import EnvelopeSettings, required_samples
from runtime.diagnostics.speed import SpeedTopicConfig
from runtime.errors import ConfigError


class BearingGeometryConfig(StrictModel):
    """A bearing not in the catalogue, by its geometry."""

    n_elements: int = Field(..., description="Number of rolling elements.")
    element_diameter_mm: float = Field(..., description="Rolling element diameter (mm).")
    pitch_diameter_mm: float = Field(
        ..., description="Pitch circle diameter through the element centres (mm)."
    )
    contact_angle_deg: float = Field(
        0.0, description="Contact angle (degrees; 0 for deep-groove ball bearings)."
    )
    name: str = Field("custom", description="A name for logs and payloads.")


class DiagnosticsConfig(StrictModel):
    """Envelope evidence for one sensor's bearing: what it is, how fast it turns, when to look."""

    bearing: str | BearingGeometryConfig = Field(
        ..., description="Catalogue name (6205, 6203, UER204, ZA-2115, ...) or the bearing's geometry."
    )
    rpm: float | SpeedTopicConfig = Field(
        ...,
        description="Shaft speed in rpm: a fixed number, or {topic, field, scale, max_age_s} to read it from "
        "an MQTT topic on the daemon's broker (stale or missing: the evidence is not_applicable).",
    )
    seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Recent raw samples kept and analysed (must resolve the fault frequencies).",
    )
    tolerance: float = Field(0.02, ge=0.001, le=0.1, description="Slip/speed tolerance as a fraction.")
    band: tuple[float, float] | None = Field(
        None, description="Demodulation band [low, high] in Hz; default: chosen by the fast kurtogram."
    )
    on_fault: bool = Field(
        True, description="Analyse when a fault state is entered; its event carries the result."
    )
    every_s: float = Field(0.0, ge=0, description="Also analyse every this many seconds (0: never).")
    reuse_s: float = Field(
        60.0,
        ge=0,
        description="A fault entry within this many seconds of signal after the last analysis carries that "
        "evidence (its ts says when) instead of a new analysis: bounds the cost of a flapping state.",
    )
    require_corroboration: bool = Field(
        False,
        description="A fault state whose bearing fault type the envelope does not confirm is published with "
        "alert: false (the state still changes; nothing is dropped).",
    )
    alert_unseen: bool = Field(
        False,
        description="A strong envelope signature while the classifier says healthy publishes its own "
        "alert on <prefix>/<device>/<sensor>/diagnostics.",
    )

    @model_validator(mode="after")
    def _physics(self) -> DiagnosticsConfig:
        self.resolved_bearing()  # unknown name / impossible geometry -> ConfigError (a ValueError)
        if self.fixed_rpm is not None:
            self.resolved_bearing().frequencies(self.fixed_rpm)  # zero or negative speed
        EnvelopeSettings(tolerance=self.tolerance, band=self.band)
        return self

    @property
    def fixed_rpm(self) -> float | None:
        """The configured speed when it is fixed; None when it comes from a topic."""
        return None if isinstance(self.rpm, SpeedTopicConfig) else float(self.rpm)

    @property
    def speed_topic(self) -> SpeedTopicConfig | None:
        return self.rpm if isinstance(self.rpm, SpeedTopicConfig) else None

    def speed_text(self) -> str:
        """The speed as logs name it: ``1797 rpm`` or ``rpm from plant/motor7/rpm``."""
        topic = self.speed_topic
        return f"{self.fixed_rpm:g} rpm" if topic is None else f"rpm from {topic.topic}"

    def resolved_bearing(self) -> Bearing:
        spec: Any = self.bearing if isinstance(self.bearing, str) else self.bearing.model_dump()
        return bearing_from(spec)

    def settings(self) -> EnvelopeSettings:
        return EnvelopeSettings(tolerance=self.tolerance, band=self.band)

    def buffer_samples(self, sample_rate: float) -> int:
        """Samples to keep at ``sample_rate``; too few for the resolution is a ConfigError naming the need.

        With the speed from a topic the need depends on the speed of the moment: it is checked at
        each analysis, and a speed too low for the ring makes the evidence not_applicable.
        """
        n = round(self.seconds * sample_rate)
        if self.fixed_rpm is None:
            return n
        freqs = self.resolved_bearing().frequencies(self.fixed_rpm)
        need = required_samples(freqs, sample_rate, self.tolerance)
        if n < need:
            raise ConfigError(
                f"diagnostics.seconds = {self.seconds} keeps {n} samples at {sample_rate:g} Hz, too few to "
                f"resolve the fault frequencies at {self.rpm:g} rpm within {self.tolerance:.1%}; it needs at "
                f"least {need / sample_rate:.2f} s ({need} samples)"
            )
        return n
