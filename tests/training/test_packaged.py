"""Packaged models ship their checkpoints, and `drsn-edge models` says what the files say."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.assets import ASSETS
from drsn_edge.cli import main
from drsn_edge.training.checkpoint import load_checkpoint
from drsn_edge.training.packaged import read_manifest, write_manifest
from runtime.artifact import read_onnx_metadata
from runtime.errors import DataError
from runtime.novelty.scores import DEFAULT_SCORE
from runtime.novelty.stats import scorer_of


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_packaged_onnx_has_its_checkpoint_and_a_current_manifest_entry() -> None:
    entries = {e["name"]: e for e in read_manifest()["models"]}
    onnx_files = sorted(p for p in ASSETS.glob("*.onnx") if ".fp16" not in p.name)
    assert {p.stem for p in onnx_files} == set(entries)
    for onnx in onnx_files:
        pt = onnx.with_suffix(".pt")
        assert pt.is_file(), f"{pt.name} is missing: packaged models ship their checkpoint"
        entry = entries[onnx.stem]
        stale = "the manifest is stale: run `drsn-edge models --write-manifest`"
        assert entry["onnx"]["sha256"] == _sha(onnx), stale
        assert entry["checkpoint"]["sha256"] == _sha(pt), stale
        # the ONNX was exported from this checkpoint's weights
        assert read_onnx_metadata(onnx).weights_sha256 == load_checkpoint(pt).metadata.weights_sha256
        assert pt.stat().st_size < 1_000_000


PACKAGED = ["drsn_cw_cwru0hp", "drsn_cw_cwru0hp_noise", "drsn_cw_cwru_allhp", "drsn_cw_sim"]


@pytest.mark.parametrize("name", PACKAGED)
def test_every_packaged_model_scores_novelty_with_the_default_score_on_its_input_windows(name: str) -> None:
    onnx = ASSETS / f"{name}.onnx"
    meta = read_onnx_metadata(onnx)
    scorer = scorer_of(meta, name)
    assert scorer is not None, f"{name} carries no novelty statistics: calibrate and export it again"
    assert scorer.stats.score == DEFAULT_SCORE and scorer.stats.needs_windows
    # exported after the checkpoint was calibrated: the ONNX carries the checkpoint's statistics
    assert meta.novelty == load_checkpoint(onnx.with_suffix(".pt")).metadata.novelty
    assert meta.golden is not None
    inputs, _ = meta.golden.arrays()
    features = meta.golden.features()
    assert features is not None
    with pytest.raises(DataError, match="needs the model's input windows"):
        scorer.score(features)
    # the golden windows are the model's own test windows (8 of them): familiar, so most score below
    # p99 (one outer-race window of drsn_cw_sim's training machines sits above p99.9 with either score)
    scores = scorer.score(features, inputs)
    assert np.isfinite(scores).all() and len(scores) == len(inputs)
    assert np.median(scores) < scorer.stats.threshold("p99"), scores


def test_models_command_lists_classes_rate_window_data_and_figures(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for entry in read_manifest()["models"]:
        assert entry["name"] in out
        assert ", ".join(entry["classes"]) in out
    assert "12000 Hz, window 2048" in out and "trained on: cwru" in out and "test: 100.00 %" in out


def test_manifest_keeps_figures_attached_by_a_measuring_command(tmp_path: Path) -> None:
    for suffix in (".onnx", ".pt"):
        shutil.copy(ASSETS / f"drsn_cw_sim{suffix}", tmp_path / f"drsn_cw_sim{suffix}")
    write_manifest(tmp_path, figures={"drsn_cw_sim": {"lolo_mean": 0.97}})
    write_manifest(tmp_path)
    (entry,) = read_manifest(tmp_path)["models"]
    assert entry["figures"]["lolo_mean"] == 0.97 and entry["trained_on"]["source"] == "synthetic"
    (tmp_path / "models.json").write_text("{broken")
    with pytest.raises(DataError, match="--write-manifest"):
        read_manifest(tmp_path)
    (tmp_path / "models.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(DataError, match="not a drsn-edge/packaged-models manifest"):
        read_manifest(tmp_path)
