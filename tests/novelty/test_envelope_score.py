"""The score that reads the window too: envelope bands beside the features (sqrt_envelope_mahalanobis)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.fft

from runtime.errors import DataError
from runtime.novelty import NoveltyScorer, NoveltyStats, NoveltyStatsError, calibrate, fit_novelty
from runtime.novelty.scores import _rfft, envelope_bands

W = 2048
CLASSES = ["normal", "inner", "outer"]


def _modulated(rng: np.random.Generator, n: int, mod_bin: float, depth: float = 0.8) -> np.ndarray:
    """Windows of a 3 kHz-like carrier whose amplitude repeats ``mod_bin`` times per window, z-scored."""
    t = np.arange(W)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    carrier = np.sin(2 * np.pi * 600 * t / W + rng.uniform(0, 2 * np.pi, size=(n, 1)))
    x = (1 + depth * np.cos(2 * np.pi * mod_bin * t / W + phase)) * carrier + 0.3 * rng.normal(size=(n, W))
    return (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)


def test_the_band_of_the_modulation_rate_carries_the_envelope_energy() -> None:
    rng = np.random.default_rng(0)
    # bins 1..256 of the envelope spectrum in 4 bands of 64: a rate of 40 lies in band 0, 170 in band 2
    low, high = envelope_bands(_modulated(rng, 8, 40)), envelope_bands(_modulated(rng, 8, 170))
    assert low.shape == (8, 4)
    assert (low.argmax(axis=1) == 0).all()
    assert (high.argmax(axis=1) == 2).all()
    assert (high[:, 2] - low[:, 2] > 3.0).all()  # the band itself, not only the ranking, moves


def test_an_amplitude_modulated_resonance_gives_the_rectified_envelope_power_exactly() -> None:
    # |(1 + m cos 2πft) sin 2πf_c t| = 2/π (1 + m cos 2πft) + terms at 2k f_c ± f, all above bin 256
    t = np.arange(W)
    m, f, fc = 0.5, 100, 600
    x = (1 + m * np.cos(2 * np.pi * f * t / W)) * np.sin(2 * np.pi * fc * t / W)
    bands = envelope_bands(x[None, None, :])[0]
    expected = ((2 / np.pi) * m * W / 2) ** 2 / 64  # one line in band 1 (bins 65-128) of 64 bins
    assert np.exp(bands[1]) == pytest.approx(expected, rel=1e-3)
    # the other bands hold only the rectifier's harmonics folded back by sampling (2·2f_c + f -> bin 252)
    assert bands[1] - max(bands[0], bands[2], bands[3]) > 5.0


def _float64_reference(windows: np.ndarray, n_bands: int = 4) -> np.ndarray:
    """The bands as defined, in numpy float64: rectify, real FFT, bins 1..W/8, log mean power."""
    w = np.abs(np.asarray(windows, dtype=np.float64).reshape(len(windows), -1))
    power = np.abs(np.fft.rfft(w, axis=1)[:, 1 : w.shape[1] // 8 + 1]) ** 2
    return np.log(power.reshape(len(w), n_bands, -1).mean(axis=2) + 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_float32_fft_gives_the_float64_bands(dtype: type) -> None:
    rng = np.random.default_rng(7)
    # z-scored noise, modulated resonances and an impulsive window (one spike per 200 samples)
    spikes = np.zeros((4, W))
    spikes[:, ::200] = 20.0
    spikes = (spikes - spikes.mean(axis=1, keepdims=True)) / spikes.std(axis=1, keepdims=True)
    x = np.concatenate([rng.normal(size=(16, W)), _modulated(rng, 12, 40), spikes]).astype(dtype)
    got = envelope_bands(x[:, None, :])
    ref = _float64_reference(x)
    assert got.dtype == np.float64 and got.shape == (32, 4)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5)
    # the input is left as it was (the FFT overwrites a rectified copy, not the caller's batch)
    assert (x < 0).any()


def test_the_transform_the_bands_call_is_scipys_real_fft_exactly() -> None:
    # the bands call scipy's transform without its public wrapper where it can; the same array
    x = np.abs(np.random.default_rng(3).normal(size=(5, W))).astype(np.float32)
    got = _rfft()(x.copy())
    want = scipy.fft.rfft(x, axis=1)
    assert got.dtype == want.dtype == np.complex64
    np.testing.assert_array_equal(got, want)


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three classes apart in the features, with a class-specific modulation rate in the windows."""
    y = rng.integers(0, 3, size=n)
    features = np.abs(np.eye(3, 4)[y] * 6.0 + rng.normal(size=(n, 4)))
    windows = np.concatenate([_modulated(rng, 1, (30, 100, 160)[c]) for c in y])
    return features, y, windows


def test_a_window_with_familiar_features_but_an_unseen_envelope_scores_as_novel() -> None:
    rng = np.random.default_rng(2)
    f, y, w = _data(rng, 300)
    stats = fit_novelty(f, y, CLASSES, "sqrt_envelope_mahalanobis", w)
    assert stats.envelope_bands == 4 and stats.feature_dim == 4 and stats.means.shape == (3, 8)
    stats = calibrate(stats, *_data(rng, 150)[::2])
    scorer = NoveltyScorer(stats)
    fam_f, fam_y, fam_w = _data(rng, 100)
    familiar = scorer.score(fam_f, fam_w)
    # features of class 0, but the window's envelope repeats at a rate no class has (band 3)
    novel = scorer.score(fam_f[fam_y == 0], _modulated(rng, int((fam_y == 0).sum()), 230))
    assert np.mean(familiar > stats.thresholds["p99"]) < 0.05
    assert np.mean(novel > stats.thresholds["p99"]) > 0.95
    # the feature-only score cannot see it: the same features score alike
    plain = NoveltyScorer(fit_novelty(f, y, CLASSES))
    assert np.median(plain.score(fam_f[fam_y == 0])) < np.percentile(plain.score(f), 99)


def test_statistics_round_trip_through_json_and_keep_their_bands() -> None:
    rng = np.random.default_rng(3)
    f, y, w = _data(rng, 120)
    stats = calibrate(fit_novelty(f, y, CLASSES, "sqrt_envelope_mahalanobis", w), f, w)
    doc = json.loads(json.dumps(stats.to_dict()))
    assert doc["envelope_bands"] == 4
    back = NoveltyStats.from_dict(doc)
    assert back.envelope_bands == 4 and back.needs_windows
    np.testing.assert_allclose(NoveltyScorer(back).score(f, w), NoveltyScorer(stats).score(f, w), rtol=1e-12)


def test_feature_only_statistics_need_no_windows_and_carry_no_bands() -> None:
    rng = np.random.default_rng(4)
    f, y, w = _data(rng, 120)
    stats = fit_novelty(f, y, CLASSES)
    doc = stats.to_dict()
    assert "envelope_bands" not in doc and not NoveltyStats.from_dict(doc).needs_windows
    scorer = NoveltyScorer(stats)
    np.testing.assert_array_equal(scorer.score(f), scorer.score(f, w))  # windows are ignored


def test_scoring_without_or_with_mismatched_windows_is_refused_with_the_fix() -> None:
    rng = np.random.default_rng(5)
    f, y, w = _data(rng, 120)
    scorer = NoveltyScorer(fit_novelty(f, y, CLASSES, "sqrt_envelope_mahalanobis", w))
    with pytest.raises(DataError, match=r"needs the model's input windows.*pass windows="):
        scorer.score(f)
    with pytest.raises(DataError, match="do not fit 120 feature rows"):
        scorer.score(f, w[:10])
    with pytest.raises(DataError, match="do not fit"):
        scorer.score(f, w[:, :16])  # too short for four bands
    with pytest.raises(DataError, match="do not fit"):
        scorer.score(f, np.full((120, 256), "x"))
    bad = w.copy()
    bad[3, 7] = np.nan
    with pytest.raises(DataError, match="NaN"):
        scorer.score(f, bad)
    with pytest.raises(DataError, match="needs the model's input windows"):
        fit_novelty(f, y, CLASSES, "sqrt_envelope_mahalanobis")


@pytest.mark.parametrize("bands", [None, 0, 8, 2.5, True, "4"])
def test_malformed_band_counts_are_refused_by_the_parser(bands: object) -> None:
    rng = np.random.default_rng(6)
    f, y, w = _data(rng, 120)
    doc = fit_novelty(f, y, CLASSES, "sqrt_envelope_mahalanobis", w).to_dict()
    if bands is None:
        del doc["envelope_bands"]
    else:
        doc["envelope_bands"] = bands
    with pytest.raises(NoveltyStatsError, match="sensor-7: novelty statistics are malformed"):
        NoveltyStats.from_dict(doc, "sensor-7")
