"""One sensor's novelty path: unfamiliar after sustained far windows, baseline learning and reloading."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.novelty import NoveltyScorer, calibrate, fit_novelty
from runtime.novelty.baseline import baseline_path
from runtime.novelty.sensor import NoveltyConfig, SensorNovelty

SHA = "12" * 32
PROBS = np.array([0.01, 0.98, 0.01])


def _scorer(seed: int = 0) -> NoveltyScorer:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0, 0, 0], [6, 0, 0, 0], [0, 6, 0, 0]])
    y = rng.integers(0, 3, 900)
    x = centres[y] + rng.normal(size=(900, 4))
    val = centres[rng.integers(0, 3, 300)] + rng.normal(size=(300, 4))
    return NoveltyScorer(calibrate(fit_novelty(x, y, ["normal", "a", "b"]), val))


def test_sustained_far_windows_make_the_sensor_unfamiliar_with_the_closest_class() -> None:
    rng = np.random.default_rng(1)
    s = SensorNovelty("s1", _scorer(), NoveltyConfig(), model_sha256=SHA)
    verdicts = [s.update(np.array([6.0, 0, 0, 0]) + rng.normal(size=4), PROBS) for _ in range(50)]
    assert not any(v.unfamiliar for v in verdicts if v is not None)
    single = s.update(np.array([6.0, 0, 0, 30.0]), PROBS)  # one knock is not a state
    assert single is not None and not single.unfamiliar
    far = [s.update(np.array([6.0, 0, 0, 12.0]) + rng.normal(size=4), PROBS) for _ in range(10)]
    assert far[-1] is not None and far[-1].unfamiliar
    assert (far[-1].closest_class, far[-1].closest_probability) == (1, pytest.approx(0.98))
    back = [s.update(np.array([6.0, 0, 0, 0]) + rng.normal(size=4), PROBS) for _ in range(10)]
    assert back[-1] is not None and not back[-1].unfamiliar


def test_off_and_models_without_statistics_score_nothing_but_still_learn(tmp_path: Path) -> None:
    off = SensorNovelty("s", _scorer(), NoveltyConfig(threshold="off"), model_sha256=SHA)
    v = off.update(np.array([0.0, 0, 0, 50]), PROBS)
    assert v is not None and not v.unfamiliar
    none = SensorNovelty("s", None, NoveltyConfig(), model_sha256=SHA, state_dir=tmp_path)
    none.learn(200)  # min_baseline_windows(4): 10 fit windows per feature, 40 held back
    rng = np.random.default_rng(2)
    for _ in range(200):
        assert none.update(rng.normal(size=4), PROBS) is None
    assert none.baseline is not None and baseline_path(tmp_path, "s").exists()


def test_a_learned_baseline_flags_drift_and_survives_a_restart(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    s = SensorNovelty("pump/7", _scorer(), NoveltyConfig(), model_sha256=SHA, state_dir=tmp_path)
    s.learn(500)
    assert s.baseline is None
    for _ in range(500):
        s.update(np.array([6.0, 0, 0, 0]) + rng.normal(size=4) * 0.3, PROBS)
    assert s.baseline is not None and not s.learning
    restarted = SensorNovelty("pump/7", _scorer(), NoveltyConfig(), model_sha256=SHA, state_dir=tmp_path)
    assert restarted.baseline is not None
    calm = [restarted.update(np.array([6.0, 0, 0, 0]) + rng.normal(size=4) * 0.3, PROBS) for _ in range(100)]
    assert not any(v.anomalous for v in calm if v is not None)
    # a drift still well inside the training classes: familiar to the model, anomalous for this machine
    drift = [restarted.update(np.array([7.5, 0, 0, 0]) + rng.normal(size=4) * 0.3, PROBS) for _ in range(10)]
    assert drift[-1] is not None and drift[-1].anomalous and not drift[-1].unfamiliar


def test_a_baseline_of_another_model_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = SensorNovelty("s", None, NoveltyConfig(), model_sha256=SHA, state_dir=tmp_path)
    s.learn(200)
    rng = np.random.default_rng(4)
    for _ in range(200):
        s.update(rng.normal(size=4), PROBS)
    with caplog.at_level(logging.WARNING):
        other = SensorNovelty("s", None, NoveltyConfig(), model_sha256="ff" * 32, state_dir=tmp_path)
    assert other.baseline is None and "another model" in caplog.text


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at least 50"):
        SensorNovelty("s", None, NoveltyConfig(), model_sha256=SHA).learn(10)
    with pytest.raises(ValueError):
        NoveltyConfig(threshold="p95")  # type: ignore[arg-type]


def test_smoothing_defaults_come_from_the_fault_state() -> None:
    """history follows the fault state's; the fault state's minimum duration becomes windows at the hop."""
    r = NoveltyConfig().resolved(history=7, min_duration_s=1.0, window_period_s=512 / 12000)
    assert r.history == 7 and r.min_windows == 24 and r.min_duration_s == 1.0  # ceil(1 s / 42.7 ms)
    own = NoveltyConfig(history=4, min_windows=5, min_duration_s=0.0).resolved(7, 1.0, 0.05)
    assert (own.history, own.min_windows) == (4, 5)


def test_learning_is_refused_when_shorter_than_the_features_need() -> None:
    s = SensorNovelty("s1", _scorer(), NoveltyConfig(), model_sha256=SHA)
    with pytest.raises(ConfigError, match=r"4 features need 200 healthy windows"):
        s.learn(199)
    s.learn(200)  # exactly min_baseline_windows(4) is enough
