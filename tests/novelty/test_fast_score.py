"""The daemon's per-batch score (one buffer, one product, checks moved to the result) gives the
scores of the reference computation that calibration and the study were measured with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.artifact import read_onnx_metadata
from runtime.errors import DataError
from runtime.novelty import NoveltyScorer, fit_novelty
from runtime.novelty.envelope_cache import EnvelopeCache
from runtime.novelty.scores import squared_distances
from runtime.novelty.stats import NoveltyStats, scorer_of

MODEL = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"
W = 2048


def _reference_bands(windows: np.ndarray, n_bands: int = 4) -> np.ndarray:
    """The bands as the study computed them before: float32 FFT, re² + im² in float32, float64 sums."""
    from scipy.fft import rfft

    w = np.abs(np.asarray(windows, dtype=np.float32)).reshape(len(windows), -1)
    low = rfft(w, axis=1)[:, : w.shape[1] // 8 + 1]
    power = low.real**2 + low.imag**2
    edges = np.linspace(1, power.shape[1], n_bands + 1).astype(np.int64)
    sums = np.add.reduceat(power, edges[:-1], axis=1, dtype=np.float64)
    return np.log(sums / np.diff(edges) + 1e-12)


def _reference_score(stats: NoveltyStats, features: np.ndarray, windows: np.ndarray | None) -> np.ndarray:
    """min over classes of the Mahalanobis distance, written out: float64 signed roots, the bands
    appended, the (N, K) squared distances clamped at 0 (the checked scorer's own steps)."""
    from runtime.novelty.covariance import cholesky_factor

    f = np.asarray(features, dtype=np.float64)
    if stats.score in ("sqrt_mahalanobis", "sqrt_envelope_mahalanobis"):
        f = np.sign(f) * np.sqrt(np.abs(f))
    if stats.envelope_bands:
        f = np.hstack([f, _reference_bands(windows, stats.envelope_bands)])  # type: ignore[arg-type]
    chol, _ = cholesky_factor(stats.covariance, "test")
    return np.sqrt(squared_distances(f, stats.means, chol).min(axis=1))


def _windows(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(W)
    rate = rng.choice([30, 100, 160], size=(n, 1))
    x = (1 + 0.8 * np.cos(2 * np.pi * rate * t / W)) * np.sin(2 * np.pi * 600 * t / W)
    x = x + 0.3 * rng.normal(size=(n, W))
    return ((x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)).astype(np.float32)[:, None, :]


def _packaged() -> NoveltyScorer:
    scorer = scorer_of(read_onnx_metadata(MODEL), str(MODEL))
    assert scorer is not None and scorer.stats.score == "sqrt_envelope_mahalanobis"
    return scorer


def test_the_packaged_models_batch_scores_are_the_reference_scores() -> None:
    scorer = _packaged()
    rng = np.random.default_rng(3)
    dim = scorer.stats.feature_dim
    # non-negative pooled features around the class means (roots squared back), some far from all
    means = scorer.stats.means[:, :dim]
    f = np.abs(means[rng.integers(0, len(means), 64)] + rng.normal(scale=0.3, size=(64, dim))) ** 2
    f[::7] *= 4.0
    x = _windows(rng, 64)
    ref = _reference_score(scorer.stats, f.astype(np.float32), x)
    got = scorer.score(f.astype(np.float32), x)
    assert scorer._fast_score(f.astype(np.float32), x, None) is not None  # the short way did run
    # float32 rounding of the band power is all that differs
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=0)
    assert np.ptp(ref) > 1.0  # scores that differ, not one value
    # with the bands given (the daemon's envelope cache), the same scores
    bands = _reference_bands(x)
    np.testing.assert_allclose(scorer.score(f.astype(np.float32), bands=bands), ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("score", ["mahalanobis", "sqrt_mahalanobis", "sqrt_envelope_mahalanobis"])
def test_fitted_statistics_score_as_the_reference_for_every_score(score: str) -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, size=300)
    f = np.abs(np.eye(3, 6)[y] * 5.0 + rng.normal(size=(300, 6))).astype(np.float32)
    x = _windows(rng, 300)
    stats = fit_novelty(f, y, ["a", "b", "c"], score, windows=x)  # type: ignore[arg-type]
    probe_f, probe_x = f[:40] * np.float32(1.5), x[:40]
    got = NoveltyScorer(stats).score(probe_f, probe_x)
    np.testing.assert_allclose(got, _reference_score(stats, probe_f, probe_x), rtol=1e-6, atol=1e-9)


def test_negative_features_take_the_signed_root_and_non_finite_inputs_are_refused() -> None:
    scorer = _packaged()
    rng = np.random.default_rng(9)
    dim = scorer.stats.feature_dim
    f = rng.normal(size=(8, dim)).astype(np.float32)  # signed: the short way's root is NaN for these
    x = _windows(rng, 8)
    assert scorer._fast_score(f, x, None) is None
    np.testing.assert_allclose(scorer.score(f, x), _reference_score(scorer.stats, f, x), rtol=1e-6)
    bad = np.abs(f)
    bad[2, 3] = np.nan
    with pytest.raises(DataError, match="features contain NaN"):
        scorer.score(bad, x)
    bad_x = x.copy()
    bad_x[5, 0, 100] = np.inf
    with pytest.raises(DataError, match="windows contain NaN or infinite"):
        scorer.score(np.abs(f), bad_x)


def test_the_envelope_cache_computes_the_reference_bands_and_refuses_non_finite_windows() -> None:
    rng = np.random.default_rng(4)
    x = _windows(rng, 8)
    cache = EnvelopeCache(4)
    for j in range(4):
        cache.configure(j, 4, 512 / 12000, W / 12000)
    sensor = np.repeat(np.arange(4), 2)  # two consecutive windows of each sensor: the first computes
    index = np.tile(np.arange(2), 4)
    t = 10.0 + index * 512 / 12000
    got = cache.bands(sensor, index, t, x, 4)
    ref = _reference_bands(x[::2])
    np.testing.assert_allclose(got[::2], ref, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got[1::2], got[::2])  # the second window reuses the first's
    bad = x.copy()
    bad[4, 0, 7] = np.nan  # sensor 2's computing window
    fresh = EnvelopeCache(4)
    for j in range(4):
        fresh.configure(j, 4, 512 / 12000, W / 12000)
    with pytest.raises(DataError, match="windows contain NaN or infinite"):
        fresh.bands(sensor, index, t, bad, 4)


def test_bands_of_unequal_width_take_the_general_sums() -> None:
    # 2000 samples: bins 1 .. 250 in four bands of 62 or 63 (the equal-band shortcut does not apply)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 2000)).astype(np.float32)
    from runtime.novelty.scores import envelope_bands

    np.testing.assert_allclose(envelope_bands(x), _reference_bands(x), rtol=0, atol=1e-6)
