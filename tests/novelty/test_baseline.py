"""A machine's own baseline: learning, honest thresholds, persistence, and refusing foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import DataError
from runtime.novelty import Baseline, BaselineFileError, BaselineLearner, baseline_path
from runtime.novelty.baseline import min_baseline_windows

SHA = "ab" * 32


@pytest.mark.parametrize(("dim", "need"), [(5, 200), (16, 200), (100, 1250)])
def test_a_baseline_needs_ten_fit_windows_per_feature_and_forty_held_back(dim: int, need: int) -> None:
    assert min_baseline_windows(dim) == need
    rng = np.random.default_rng(dim)
    short, enough = BaselineLearner(dim, SHA), BaselineLearner(dim, SHA)
    short.add(rng.normal(size=(need - 1, dim)))
    with pytest.raises(DataError, match=f"{dim} features needs at least {need}"):
        short.finish()
    enough.add(rng.normal(size=(need, dim)))
    base = enough.finish()
    assert base.n >= 10 * dim and base.n_holdout >= 40


def _healthy(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, 5)) * [1.0, 2.0, 0.5, 1.0, 1.0] + 3.0


def _learned(seed: int = 0, n: int = 2000) -> Baseline:
    rng = np.random.default_rng(seed)
    learner = BaselineLearner(5, SHA, sensor="pump-1")
    for chunk in np.array_split(_healthy(rng, n), 40):
        learner.add(chunk)
    return learner.finish()


def test_healthy_windows_rarely_cross_the_held_back_threshold_and_drift_does() -> None:
    base = _learned()
    rng = np.random.default_rng(9)
    healthy = base.score(_healthy(rng, 5000))
    drifted = base.score(_healthy(rng, 500) + np.array([0, 0, 3.0, 0, 0]))  # six sd along a quiet feature
    assert np.mean(healthy > base.thresholds["p99"]) < 0.02
    assert np.mean(drifted > base.thresholds["p99"]) > 0.95
    assert base.n + base.n_holdout == 2000 and base.n_holdout == 400


def test_a_saved_baseline_loads_for_its_own_model_and_scores_the_same(tmp_path: Path) -> None:
    base = _learned()
    path = base.save(baseline_path(tmp_path, "pump 1/x"))
    assert path.parent.name == "baselines" and "/" not in path.name.replace(str(path.parent), "")
    back = Baseline.load(path, SHA)
    probe = np.random.default_rng(1).normal(size=(4, 5))
    np.testing.assert_allclose(back.score(probe), base.score(probe))
    assert back.thresholds == base.thresholds
    assert not list(path.parent.glob("*.tmp"))


def test_learning_resumes_after_a_restart(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = _healthy(rng, 1000)
    whole = BaselineLearner(5, SHA)
    whole.add(x)
    first = BaselineLearner(5, SHA)
    first.add(x[:437])
    first.save(tmp_path / "b.json")
    resumed = BaselineLearner.load(tmp_path / "b.json", SHA)
    resumed.add(x[437:])
    a, b = whole.finish(), resumed.finish()
    np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-9)
    assert a.thresholds == pytest.approx(b.thresholds)


def test_a_baseline_of_another_model_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = _learned().save(tmp_path / "b.json")
    with pytest.raises(BaselineFileError, match=r"another model.*learn the baseline again"):
        Baseline.load(path, "cd" * 32)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\xff garbage", "not a readable baseline"),
        (b'{"format": "something-else"}', "not a drsn-edge baseline"),
        (b"[1, 2]", "not a drsn-edge baseline"),
        (b"", "not a readable baseline"),
    ],
)
def test_corrupt_files_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(content)
    with pytest.raises(BaselineFileError, match=message):
        Baseline.load(path, SHA)


def test_damaged_fields_are_named_with_the_fix(tmp_path: Path) -> None:
    doc = _learned().to_dict()
    path = tmp_path / "b.json"
    for change in ({"covariance": [[1.0]]}, {"mean": None}, {"thresholds": {"p99": "x"}}):
        path.write_text(json.dumps({**doc, **change}))
        with pytest.raises(BaselineFileError, match=r"corrupt baseline.*learn the baseline again"):
            Baseline.load(path, SHA)
    path.write_text(json.dumps({**doc, "covariance": np.zeros((5, 5)).tolist()}))
    with pytest.raises(BaselineFileError, match=r"cannot be inverted|is zero"):
        Baseline.load(path, SHA)
    path.write_text(json.dumps({**doc, "status": "learning"}))
    with pytest.raises(BaselineFileError, match="still being learned"):
        Baseline.load(path, SHA)
    assert not (tmp_path / "missing.json").exists()
    with pytest.raises(BaselineFileError, match="no baseline at"):
        Baseline.load(tmp_path / "missing.json", SHA)


def test_too_few_windows_or_wrong_width_are_data_errors() -> None:
    learner = BaselineLearner(5, SHA)
    learner.add(np.ones((10, 5)))
    with pytest.raises(DataError, match=r"at least 200 healthy windows \(10 per feature to fit its 5x5"):
        learner.finish()
    with pytest.raises(DataError, match="finite"):
        learner.add(np.ones((3, 4)))
