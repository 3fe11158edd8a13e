"""The bearing simulator: fault lines sit where bearing physics puts them; the stream is seamless."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, hilbert, sosfiltfilt

from runtime.errors import ConfigError
from runtime.signals.simulator import (
    CONDITIONS,
    SKF_6205,
    BearingGeometry,
    BearingSimulator,
    bearing_frequencies,
)

FS = 12000


def _envelope_spectrum(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Classic envelope analysis: band-pass around the resonance, Hilbert envelope, spectrum."""
    sos = butter(4, [2000, 4500], btype="band", fs=fs, output="sos")
    env = np.abs(hilbert(sosfiltfilt(sos, x.astype(np.float64))))
    env -= env.mean()
    spec = np.abs(np.fft.rfft(env * np.hanning(len(env))))
    return np.fft.rfftfreq(len(env), 1 / fs), spec


def _line(freqs: np.ndarray, spec: np.ndarray, f: float) -> float:
    return float(spec[np.abs(freqs - f) <= 0.02 * f].max())


def test_frequencies_of_the_6205_match_the_published_multipliers() -> None:
    f = bearing_frequencies(1797)
    shaft = 1797 / 60
    # CWRU bearing table, multiples of shaft speed (its "BSF" is the ball-defect impact rate, 2 x spin)
    assert f["bpfo"] / shaft == pytest.approx(3.5848, abs=1e-3)
    assert f["bpfi"] / shaft == pytest.approx(5.4152, abs=1e-3)
    assert f["ftf"] / shaft == pytest.approx(0.39828, abs=1e-4)
    assert 2 * f["bsf"] / shaft == pytest.approx(4.7135, abs=1e-3)
    angled = bearing_frequencies(1797, BearingGeometry(contact_angle_deg=40))
    assert angled["bpfo"] > f["bpfo"] and angled["bpfi"] < f["bpfi"]  # cos(angle) shrinks d/D
    with pytest.raises(ConfigError):
        bearing_frequencies(0)


@pytest.mark.parametrize(("condition", "rpm"), [("inner_race", 1797), ("outer_race", 1500), ("ball", 1730)])
def test_envelope_spectrum_peaks_at_the_fault_frequency(condition: str, rpm: float) -> None:
    x = BearingSimulator(condition, severity=1.0, sample_rate=FS, rpm=rpm, seed=11).generate(4 * FS)
    freqs, spec = _envelope_spectrum(x, FS)
    f = bearing_frequencies(rpm, SKF_6205)
    candidates = {"outer_race": f["bpfo"], "inner_race": f["bpfi"], "ball": 2 * f["bsf"]}
    levels = {name: _line(freqs, spec, fc) for name, fc in candidates.items()}
    own = levels.pop(condition)
    assert own > 3 * max(levels.values()), (condition, own, levels)
    band = (freqs > 20) & (freqs < 500)
    assert own > 10 * np.median(spec[band])
    # the strongest envelope line below 200 Hz is the fault itself, or for a ball its spin / the cage
    low = (freqs > 5) & (freqs < 200)
    peak = freqs[low][spec[low].argmax()]
    allowed = {"outer_race": [f["bpfo"]], "inner_race": [f["bpfi"], f["shaft"]],
               "ball": [f["bsf"], f["ftf"], 2 * f["bsf"]]}[condition]
    assert min(abs(peak - a) / a for a in allowed) < 0.02, (condition, peak, allowed)


def test_healthy_bearing_has_no_fault_line() -> None:
    x = BearingSimulator("normal", sample_rate=FS, seed=5).generate(4 * FS)
    freqs, spec = _envelope_spectrum(x, FS)
    f = bearing_frequencies(1797)
    band = (freqs > 20) & (freqs < 500)
    for fc in (f["bpfo"], f["bpfi"], 2 * f["bsf"]):
        assert _line(freqs, spec, fc) < 5 * np.median(spec[band])


def test_same_seed_same_samples_and_chunking_does_not_matter() -> None:
    whole = BearingSimulator("ball", seed=3).generate(30000)
    assert whole.dtype == np.float32 and whole.shape == (30000,)
    np.testing.assert_array_equal(whole, BearingSimulator("ball", seed=3).generate(30000))
    assert not np.allclose(whole, BearingSimulator("ball", seed=4).generate(30000))
    sim = BearingSimulator("ball", seed=3)
    rng = np.random.default_rng(0)
    sizes = np.diff(np.concatenate([[0], np.sort(rng.integers(0, 30000, 40)), [30000]]))
    pieces = np.concatenate([sim.generate(int(n)) for n in sizes])
    np.testing.assert_array_equal(pieces, whole)
    assert sim.samples_generated == 30000


def test_long_streams_stay_seamless_after_old_state_is_dropped() -> None:
    # at 2 kHz, 30 s spans hundreds of speed control points, so old ones are discarded on the way
    whole = BearingSimulator("inner_race", sample_rate=2000, seed=1).generate(60000)
    sim = BearingSimulator("inner_race", sample_rate=2000, seed=1)
    pieces = np.concatenate([sim.generate(777) for _ in range(78)])[:60000]
    np.testing.assert_array_equal(pieces, whole)


def test_severity_and_condition_change_while_streaming() -> None:
    sim = BearingSimulator("outer_race", severity=0.0, seed=2)
    quiet = sim.generate(FS)
    sim.severity = 0.3
    mild = sim.generate(FS)
    sim.severity = 1.0
    strong = sim.generate(FS)
    assert quiet.std() < mild.std() < strong.std()
    assert quiet.std() == pytest.approx(BearingSimulator("normal", seed=9).generate(FS).std(), rel=0.15)
    sim.condition = "inner"  # alias
    assert sim.condition == "inner_race"
    freqs, spec = _envelope_spectrum(sim.generate(3 * FS)[FS // 10 :], FS)
    f = sim.frequencies()
    assert _line(freqs, spec, f["bpfi"]) > 3 * _line(freqs, spec, f["bpfo"])


def test_stream_has_no_seam_at_chunk_edges() -> None:
    sim = BearingSimulator("normal", seed=1, noise_std=0.0)  # only the shaft harmonics: a smooth signal
    x = np.concatenate([sim.generate(n) for n in (1000, 1, 777, 3000)])
    assert np.abs(np.diff(x)).max() < 3 * np.abs(np.diff(x[:1000])).max()


def test_invalid_settings_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="choose one of"):
        BearingSimulator("cracked_cage")
    sim = BearingSimulator()
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        sim.severity = 1.5
    with pytest.raises(ConfigError, match="resonance_hz"):
        BearingSimulator(sample_rate=4000, resonance_hz=3000)
    assert set(CONDITIONS) == {"normal", "inner_race", "outer_race", "ball"}
    assert len(BearingSimulator(sample_rate=4000).generate(100)) == 100  # default resonance adapts
