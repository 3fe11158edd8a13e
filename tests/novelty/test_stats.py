"""Class statistics: fitting, scoring, thresholds, and the total parser of the metadata section."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtime.errors import DataError, ModelFileError
from runtime.novelty import NoveltyScorer, NoveltyStats, NoveltyStatsError, calibrate, fit_novelty
from runtime.novelty.scores import energy, max_softmax

CLASSES = ["normal", "inner", "outer"]


def _clusters(rng: np.random.Generator, n: int, centre_scale: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    centres = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=float) * centre_scale
    y = rng.integers(0, 3, size=n)
    return centres[y] + rng.normal(size=(n, 4)), y


def test_windows_far_from_every_class_score_high_and_familiar_ones_low() -> None:
    rng = np.random.default_rng(0)
    x, y = _clusters(rng, 600)
    stats = calibrate(fit_novelty(x, y, CLASSES), _clusters(rng, 400)[0])
    scorer = NoveltyScorer(stats)
    familiar = scorer.score(_clusters(rng, 1000)[0])
    novel = scorer.score(rng.normal(size=(200, 4)) + np.array([0, 0, 0, 8.0]))  # untrained direction
    assert np.mean(familiar > stats.thresholds["p99"]) < 0.03
    assert np.mean(novel > stats.thresholds["p99"]) > 0.95
    assert stats.thresholds["p99.9"] >= stats.thresholds["p99"]
    assert stats.n_calibration == 400


def test_mahalanobis_is_the_distance_to_the_nearest_mean_under_the_shared_covariance() -> None:
    rng = np.random.default_rng(1)
    x, y = _clusters(rng, 300)
    stats = fit_novelty(x, y, CLASSES, score="mahalanobis")
    point = np.array([6.0, 0.0, 0.5, 0.0])
    p = np.linalg.inv(stats.covariance)
    expected = min(float((point - m) @ p @ (point - m)) for m in stats.means) ** 0.5
    assert NoveltyScorer(stats).score(point)[0] == pytest.approx(expected, rel=1e-9)


def test_sqrt_mahalanobis_measures_the_same_distance_on_signed_square_roots() -> None:
    rng = np.random.default_rng(4)
    x, y = _clusters(rng, 300)
    x = np.abs(x) ** 2  # skewed, non-negative: what pooled post-ReLU features look like
    stats = fit_novelty(x, y, CLASSES)  # the default score
    assert stats.score == "sqrt_mahalanobis"
    root = np.sqrt(x)
    np.testing.assert_allclose(stats.means[1], root[y == 1].mean(axis=0))
    point = np.array([36.0, 0.0, 0.25, 4.0])
    p = np.linalg.inv(stats.covariance)
    expected = min(float((np.sqrt(point) - m) @ p @ (np.sqrt(point) - m)) for m in stats.means) ** 0.5
    assert NoveltyScorer(stats).score(point)[0] == pytest.approx(expected, rel=1e-9)
    # signed: a negative feature is not folded onto its positive twin
    assert NoveltyScorer(stats).score(-point)[0] > NoveltyScorer(stats).score(point)[0]


def test_relative_mahalanobis_subtracts_the_background_distance() -> None:
    rng = np.random.default_rng(2)
    x, y = _clusters(rng, 300)
    stats = fit_novelty(x, y, CLASSES, score="relative_mahalanobis")
    point = np.array([[3.0, 3.0, 0.0, 0.0]])
    d2 = NoveltyScorer(stats).distances(point).min()
    assert stats.background_mean is not None and stats.background_covariance is not None
    bg = point[0] - stats.background_mean
    bg_d2 = float(bg @ np.linalg.inv(stats.background_covariance) @ bg)
    assert NoveltyScorer(stats).score(point)[0] == pytest.approx(d2 - bg_d2, rel=1e-9)


@pytest.mark.parametrize("score", ["mahalanobis", "relative_mahalanobis", "sqrt_mahalanobis"])
def test_statistics_survive_json_and_score_the_same(score: str) -> None:
    rng = np.random.default_rng(3)
    x, y = _clusters(rng, 200)
    stats = calibrate(fit_novelty(x, y, CLASSES, score=score), x[:50])  # type: ignore[arg-type]
    back = NoveltyStats.from_dict(json.loads(json.dumps(stats.to_dict())), "m.onnx")
    probe = rng.normal(size=(5, 4)) * 3
    np.testing.assert_allclose(NoveltyScorer(back).score(probe), NoveltyScorer(stats).score(probe))
    assert back.threshold("p99") == stats.thresholds["p99"]
    assert back.threshold(4.5) == 4.5


def _good() -> dict[str, object]:
    rng = np.random.default_rng(4)
    x, y = _clusters(rng, 100)
    return calibrate(fit_novelty(x, y, CLASSES), x[:20]).to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"means": None}, "means"),
        ({"means": [[1.0, 2.0]]}, "1 class means for 3 classes"),
        ({"covariance": [[1.0]]}, "covariance has shape"),
        ({"covariance": "oops"}, "covariance"),
        ({"score": "vibes"}, "score 'vibes'"),
        ({"version": 99}, "newer"),
        ({"thresholds": {"p99": "high"}}, "thresholds"),
        ({"classes": []}, "classes"),
    ],
)
def test_malformed_statistics_name_the_model_and_the_fix(change: dict[str, object], message: str) -> None:
    doc = {**_good(), **change}
    with pytest.raises(NoveltyStatsError, match=message) as err:
        NoveltyStats.from_dict(doc, "pump7.onnx")
    assert "pump7.onnx" in str(err.value) and "drsn-edge calibrate" in str(err.value)
    assert isinstance(err.value, ModelFileError)


def test_missing_keys_and_non_objects_are_named() -> None:
    doc = _good()
    del doc["covariance"]
    with pytest.raises(NoveltyStatsError, match="missing 'covariance'"):
        NoveltyStats.from_dict(doc, "m")
    with pytest.raises(NoveltyStatsError, match="expected an object"):
        NoveltyStats.from_dict([1, 2], "m")


def test_a_covariance_that_cannot_be_inverted_is_refused_at_load() -> None:
    doc = {**_good(), "covariance": np.diag([1.0, -5.0, 1.0, 1.0]).tolist()}
    stats = NoveltyStats.from_dict(doc, "m.onnx")
    with pytest.raises(NoveltyStatsError, match=r"cannot be inverted.*drsn-edge calibrate"):
        NoveltyScorer(stats, "m.onnx")


def test_an_uncalibrated_threshold_name_is_refused() -> None:
    rng = np.random.default_rng(5)
    x, y = _clusters(rng, 100)
    with pytest.raises(NoveltyStatsError, match="not calibrated"):
        fit_novelty(x, y, CLASSES).threshold("p99")


def test_fitting_needs_every_class_and_matching_labels() -> None:
    x = np.random.default_rng(6).normal(size=(20, 4))
    with pytest.raises(DataError, match="outer"):
        fit_novelty(x, np.zeros(20, dtype=int) + (np.arange(20) % 2), CLASSES)
    with pytest.raises(DataError, match="one label per"):
        fit_novelty(x, np.zeros(5, dtype=int), CLASSES)
    stats = fit_novelty(x, np.arange(20) % 3, CLASSES)
    with pytest.raises(DataError, match="do not fit"):
        NoveltyScorer(stats).score(np.ones((2, 5)))


def test_logit_scores_rank_confident_windows_as_familiar() -> None:
    logits = np.array([[10.0, 0.0, 0.0], [0.1, 0.0, 0.0]])
    assert max_softmax(logits)[0] < max_softmax(logits)[1]
    assert energy(logits)[0] < energy(logits)[1]
    assert energy(logits)[0] == pytest.approx(-np.log(np.exp(10) + 2))
