"""The exported ONNX carries a features output and the novelty statistics, behind the same gates."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from drsn_edge.models import list_models
from drsn_edge.novelty.calibrate import calibrate_checkpoint
from drsn_edge.training.checkpoint import build_model, load_checkpoint, save_checkpoint
from export.onnx_export import onnx_from_checkpoint
from runtime.artifact import read_onnx_metadata
from runtime.errors import ConfigError, ModelFileError
from runtime.novelty import NoveltyStatsError
from runtime.novelty.stats import scorer_of
from runtime.onnx_tools.fp16 import FEATURES_MAX_REL_DIFF, fp16_from_onnx
from runtime.onnx_tools.ort_run import cpu_session, run_outputs
from tests.support.model_files import ExportCache, make_checkpoint


@pytest.mark.parametrize("name", list_models())
def test_every_model_exports_features_that_match_pytorch(name: str, exports: ExportCache) -> None:
    path = exports.onnx(name)
    meta = read_onnx_metadata(path)
    assert [o.name for o in onnx.load(str(path)).graph.output] == ["logits", "features"]
    assert meta.features_name == "features" and meta.schema_version == 2
    ckpt = load_checkpoint(exports.checkpoint(name))
    model = ckpt.build_model()
    out = run_outputs(cpu_session(path), ckpt.golden_inputs)
    with torch.inference_mode():
        ref = model.forward_features(torch.from_numpy(ckpt.golden_inputs)).numpy()
    assert out["features"].shape == (len(ref), model.feature_dim)
    gate = meta.export["features_parity"]
    assert np.abs(out["features"] - ref).max() <= gate["tolerance"]
    assert gate["max_abs_diff"] <= gate["tolerance"]


def _calibrated_checkpoint(tmp_path: Path) -> Path:
    """A drsn_cw_paper checkpoint whose recorded data is a small simulator set, calibrated on it."""
    path = tmp_path / "m.ckpt"
    ckpt = make_checkpoint(path, "drsn_cw_paper", n_golden=16)
    spec = {
        "source": "synthetic",
        "window": 1024,
        "hop": 256,
        "synthetic_per_class": 2,
        "synthetic_seconds": 2.0,
        "seed": 0,
    }
    classes = ["normal", "ball", "inner_race", "outer_race"]  # the order the data pipeline gives them
    ckpt.metadata = ckpt.metadata.model_copy(update={"training": {"data_spec": spec}, "classes": classes})
    save_checkpoint(path, ckpt)
    result = calibrate_checkpoint(path)
    assert result.n_train > 100 and result.n_val >= 10
    assert result.stats.thresholds["p99.9"] >= result.stats.thresholds["p99"] > 0
    return path


def test_calibrated_statistics_travel_into_the_onnx_and_score_its_features(tmp_path: Path) -> None:
    ckpt_path = _calibrated_checkpoint(tmp_path)
    stored = load_checkpoint(ckpt_path).metadata
    assert stored.novelty is not None and stored.training["novelty_calibration"]["n_test"] > 0
    onnx_path = tmp_path / "m.onnx"
    onnx_from_checkpoint(ckpt_path, onnx_path, build_model=build_model)
    meta = read_onnx_metadata(onnx_path)
    scorer = scorer_of(meta, str(onnx_path))
    assert scorer is not None and scorer.stats.thresholds == stored.novelty["thresholds"]
    ckpt = load_checkpoint(ckpt_path)
    feats = run_outputs(cpu_session(onnx_path), ckpt.golden_inputs)["features"]
    with torch.inference_mode():
        ref = ckpt.build_model().forward_features(torch.from_numpy(ckpt.golden_inputs)).numpy()
    # the default score reads the input windows beside the features
    assert scorer.stats.needs_windows
    x = ckpt.golden_inputs
    np.testing.assert_allclose(scorer.score(feats, x), scorer.score(ref, x), rtol=1e-3, atol=1e-3)


def test_fp16_keeps_the_features_within_their_gate(tmp_path: Path, exports: ExportCache) -> None:
    dst = tmp_path / "m16.onnx"
    report = fp16_from_onnx(exports.onnx("drsn_cw_paper"), dst, converter="onnxconverter")
    assert report.features_max_rel_diff is not None
    assert report.features_max_rel_diff <= FEATURES_MAX_REL_DIFF
    assert read_onnx_metadata(dst).features_name == "features"
    assert "features" in run_outputs(cpu_session(dst), np.zeros((2, 1, 1024), np.float32))


@pytest.mark.parametrize(
    ("novelty", "message"),
    [
        ({"version": 1, "score": "mahalanobis"}, "malformed"),
        ({"version": "one"}, "malformed"),
    ],
)
def test_malformed_statistics_in_a_checkpoint_stop_the_export(
    tmp_path: Path, novelty: object, message: str
) -> None:
    path = tmp_path / "m.ckpt"
    ckpt = make_checkpoint(path, "drsn_cw_paper")
    ckpt.metadata = ckpt.metadata.model_copy(update={"novelty": novelty})
    save_checkpoint(path, ckpt)
    with pytest.raises(NoveltyStatsError, match=message):
        onnx_from_checkpoint(path, tmp_path / "m.onnx", build_model=build_model)
    assert not (tmp_path / "m.onnx").exists()


def test_statistics_of_another_width_or_a_singular_covariance_are_refused(tmp_path: Path) -> None:
    ckpt_path = _calibrated_checkpoint(tmp_path)
    ckpt = load_checkpoint(ckpt_path)
    doc = dict(ckpt.metadata.novelty or {})
    width = len(doc["covariance"])  # 16 features, and the envelope bands of the default score after them
    bands = width - 16
    for change, message in (
        ({"covariance": np.zeros((width, width)).tolist()}, "is zero"),
        ({"means": [[0.0] * (8 + bands)] * 4, "covariance": np.eye(8 + bands).tolist()}, "8 features"),
    ):
        ckpt.metadata = ckpt.metadata.model_copy(update={"novelty": {**doc, **change}})
        save_checkpoint(ckpt_path, ckpt)
        with pytest.raises(NoveltyStatsError if message == "is zero" else Exception, match=message):
            onnx_from_checkpoint(ckpt_path, tmp_path / "bad.onnx", build_model=build_model)


def test_a_model_from_before_novelty_keeps_working_with_one_warning(
    exports: ExportCache, caplog: pytest.LogCaptureFixture
) -> None:
    meta = read_onnx_metadata(exports.onnx("drsn_cw_paper"))
    old = meta.model_copy(update={"features_name": None, "novelty": None, "schema_version": 1})
    with caplog.at_level(logging.WARNING):
        assert scorer_of(old, "old.onnx") is None
    assert "novelty scoring is off" in caplog.text and "old.onnx" in caplog.text
    assert "features output" in caplog.text


def test_statistics_of_other_classes_are_refused(tmp_path: Path) -> None:
    ckpt_path = _calibrated_checkpoint(tmp_path)
    onnx_from_checkpoint(ckpt_path, tmp_path / "m.onnx", build_model=build_model)
    meta = read_onnx_metadata(tmp_path / "m.onnx")
    assert meta.novelty is not None
    other = meta.model_copy(update={"novelty": {**meta.novelty, "classes": ["a", "b", "c", "d"]}})
    with pytest.raises(NoveltyStatsError, match="classes"):
        scorer_of(other, "m.onnx")


def test_calibrating_a_checkpoint_without_a_data_spec_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "m.ckpt"
    make_checkpoint(path, "drsn_cw_paper")
    with pytest.raises(ConfigError, match="records no data spec"):
        calibrate_checkpoint(path)


def test_golden_windows_carry_the_features_for_device_checks(exports: ExportCache) -> None:
    path = exports.onnx("drsn_cw_paper")
    golden = read_onnx_metadata(path).golden
    assert golden is not None
    x, _ = golden.arrays()
    feats = golden.features()
    assert feats is not None and feats.shape == (len(x), 16)
    np.testing.assert_allclose(run_outputs(cpu_session(path), x)["features"], feats, atol=1e-6)
    broken = golden.model_copy(update={"features_b64": golden.features_b64[:-12]})  # type: ignore[index]
    with pytest.raises(ModelFileError, match="golden features are corrupt"):
        broken.features()
