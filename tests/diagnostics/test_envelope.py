"""Envelope analysis on the bearing simulator, which knows the true fault frequencies."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.diagnostics.bearings import bearing_from, lookup_bearing
from runtime.diagnostics.envelope import EnvelopeSettings, analyse, required_samples
from runtime.diagnostics.kurtogram import fast_kurtogram
from runtime.errors import DataError
from runtime.signals.simulator import BearingGeometry, BearingSimulator

FS = 12000
UER204 = lookup_bearing("UER204")


def _simulate(
    condition: str, rpm: float = 1797, seconds: float = 2.0, seed: int = 0, bearing=None, **kwargs: float
) -> np.ndarray:
    b = bearing or lookup_bearing("6205")
    geometry = BearingGeometry(b.n_elements, b.element_diameter_mm, b.pitch_diameter_mm, b.contact_angle_deg)
    sim = BearingSimulator(condition, sample_rate=FS, rpm=rpm, seed=seed, geometry=geometry, **kwargs)
    return sim.generate(int(seconds * FS))


@pytest.mark.parametrize("condition", ["inner_race", "outer_race", "ball"])
@pytest.mark.parametrize(("bearing", "rpm"), [("6205", 1797), ("UER204", 2400), ("ZA-2115", 2000)])
def test_the_simulated_fault_is_named_at_its_frequency(condition: str, bearing: str, rpm: float) -> None:
    b = lookup_bearing(bearing)
    report = analyse(_simulate(condition, rpm, bearing=b), FS, b, rpm)
    assert report.verdict == condition
    evidence = report.evidence[condition]
    assert evidence.harmonics_found >= 2
    # the matched peak sits within the tolerance of the true frequency
    fundamental = evidence.harmonics[0]
    assert abs(fundamental.found_hz - fundamental.expected_hz) <= 0.02 * fundamental.expected_hz + 1.0


def test_inner_race_peaks_carry_shaft_sidebands() -> None:
    b = lookup_bearing("6205")
    report = analyse(_simulate("inner_race", seconds=4.0), FS, b, 1797)
    assert report.evidence["inner_race"].sidebands_found >= 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_healthy_bearing_gets_no_verdict(seed: int) -> None:
    b = lookup_bearing("6205")
    report = analyse(_simulate("normal", seed=seed), FS, b, 1797)
    assert report.verdict == "none" and report.strength == "none"


def test_the_kurtogram_finds_the_excited_resonance() -> None:
    x = _simulate("outer_race", resonance_hz=4200.0)
    kurt = fast_kurtogram(x, FS, max_level=5, min_bandwidth_hz=700)
    assert kurt.best.low_hz <= 4200 <= kurt.best.high_hz
    assert kurt.best.kurtosis > 1.0
    noise = np.random.default_rng(0).standard_normal(4 * FS)
    assert abs(fast_kurtogram(noise, FS, max_level=4).best.kurtosis) < 0.3


def test_a_window_too_short_says_the_length_needed() -> None:
    b = lookup_bearing("6205")
    need = required_samples(b.frequencies(1797), FS, 0.02)
    assert need == 5589  # one bin no wider than 2 % of BPFO (107.4 Hz) at 12 kHz
    with pytest.raises(DataError, match=f"at least {need} samples"):
        analyse(_simulate("outer_race", seconds=0.4), FS, b, 1797)


@pytest.mark.parametrize(
    ("samples", "words"),
    [(np.full(20000, np.nan), "NaN"), (np.zeros(20000), "constant"), (np.zeros((2, 20000)), "one channel")],
)
def test_unusable_samples_are_refused(samples: np.ndarray, words: str) -> None:
    with pytest.raises(DataError, match=words):
        analyse(samples, FS, lookup_bearing("6205"), 1797)


def test_a_configured_band_is_used_as_given() -> None:
    b = bearing_from({"n_elements": 9, "element_diameter_mm": 7.94, "pitch_diameter_mm": 39.04})
    report = analyse(_simulate("outer_race"), FS, b, 1797, EnvelopeSettings(band=(2000.0, 4000.0)))
    assert (report.band.low_hz, report.band.high_hz) == (2000.0, 4000.0)
    assert report.verdict == "outer_race"


def test_the_kurtogram_uses_antonis_band_tiling() -> None:
    from runtime.diagnostics.kurtogram import levels_up_to

    assert levels_up_to(3) == [(0.0, 1), (1.0, 2), (1.6, 3), (2.0, 4), (2.6, 6), (3.0, 8)]
