"""Ledoit-Wolf shrinkage, its streaming form, and the factorisation that must never silently fail."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.errors import DataError
from runtime.novelty.covariance import (
    MomentAccumulator,
    SingularCovarianceError,
    cholesky_factor,
    ledoit_wolf,
)


def _reference_shrinkage(x: np.ndarray) -> float:
    """The estimator as published (Ledoit and Wolf 2004, Lemma 3.2-3.4), written the long way."""
    n, p = x.shape
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / n
    m = np.trace(s) / p
    d2 = np.linalg.norm(s - m * np.eye(p), "fro") ** 2 / p
    b_bar2 = sum(np.linalg.norm(np.outer(r, r) - s, "fro") ** 2 for r in xc) / n**2 / p
    return float(min(b_bar2, d2) / d2)


def test_shrinkage_matches_the_published_estimator() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)) @ rng.normal(size=(8, 8))
    got = ledoit_wolf(x)
    assert got.shrinkage == pytest.approx(_reference_shrinkage(x), rel=1e-9)
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / len(x)
    mu = np.trace(s) / 8
    np.testing.assert_allclose(got.covariance, (1 - got.shrinkage) * s + got.shrinkage * mu * np.eye(8))


def test_few_windows_give_a_positive_definite_estimate() -> None:
    """More features than windows: the sample covariance is singular, the shrunk one is not."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 30))
    xc = x - x.mean(axis=0)
    assert np.linalg.matrix_rank(xc.T @ xc) < 30
    got = ledoit_wolf(x)
    assert got.shrinkage > 0.3
    assert np.linalg.eigvalsh(got.covariance).min() > 0


def test_many_windows_barely_shrink_and_recover_the_true_covariance() -> None:
    rng = np.random.default_rng(2)
    true = np.diag([4.0, 1.0, 0.25, 9.0])
    x = rng.multivariate_normal(np.zeros(4), true, size=20000)
    got = ledoit_wolf(x)
    assert got.shrinkage < 0.01
    np.testing.assert_allclose(got.covariance, true, rtol=0.05, atol=0.15)  # sampling sd about 0.04


def test_streaming_sums_give_exactly_the_batch_estimate() -> None:
    rng = np.random.default_rng(3)
    x = 50.0 + rng.normal(size=(300, 6)) * [1, 2, 3, 0.1, 0.5, 1]  # a large mean must not cancel
    acc = MomentAccumulator(6)
    for chunk in np.array_split(x, 7):
        acc.add(chunk)
    batch, streamed = ledoit_wolf(x), acc.covariance()
    np.testing.assert_allclose(acc.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(streamed.covariance, batch.covariance, rtol=1e-8, atol=1e-10)
    assert streamed.shrinkage == pytest.approx(batch.shrinkage, rel=1e-6, abs=1e-12)


def test_accumulator_state_round_trips_and_rejects_garbage() -> None:
    acc = MomentAccumulator(3)
    acc.add(np.random.default_rng(4).normal(size=(20, 3)))
    back = MomentAccumulator.from_state(acc.state(), "test")
    np.testing.assert_allclose(back.covariance().covariance, acc.covariance().covariance)
    bad = {**acc.state(), "s2": [[1.0, 2.0]]}
    with pytest.raises(DataError, match="wrong shapes"):
        MomentAccumulator.from_state(bad, "test")
    with pytest.raises(DataError, match="malformed"):
        MomentAccumulator.from_state({"dim": 3}, "test")


def test_a_rank_deficient_covariance_is_factorised_with_jitter() -> None:
    v = np.array([[1.0, 2.0, 3.0]])
    chol, jitter = cholesky_factor(v.T @ v)  # rank 1
    assert jitter > 0
    assert np.isfinite(chol).all()


@pytest.mark.parametrize(
    ("cov", "message"),
    [
        (np.zeros((3, 3)), "is zero"),
        (np.full((2, 2), np.nan), "NaN"),
        (-np.eye(3), "is zero|cannot be inverted"),
        (np.diag([1.0, -50.0, 1.0]), "cannot be inverted"),
    ],
)
def test_an_impossible_covariance_is_a_named_error(cov: np.ndarray, message: str) -> None:
    with pytest.raises(SingularCovarianceError, match=message):
        cholesky_factor(cov, "test covariance")


def test_bad_features_are_data_errors() -> None:
    with pytest.raises(DataError, match="at least 2"):
        ledoit_wolf(np.ones((1, 3)))
    with pytest.raises(DataError, match="NaN"):
        ledoit_wolf(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(DataError, match="width"):
        MomentAccumulator(3).add(np.ones((2, 4)))
