"""Class-per-folder data sets with mixed formats and rates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from scipy.io import wavfile

from drsn_edge.data.folder import load_folder
from runtime.errors import DataError

RNG = np.random.default_rng(3)


def _tree(root: Path) -> None:
    (root / "normal").mkdir(parents=True)
    (root / "outer" / "site2").mkdir(parents=True)
    wavfile.write(root / "normal" / "a.wav", 48000, (0.1 * RNG.standard_normal(4800)).astype(np.float32))
    np.save(root / "normal" / "b.npy", RNG.standard_normal(1200))
    (root / "normal" / "b.json").write_text(json.dumps({"sample_rate": 12000}))
    (root / "outer" / "c.csv").write_text("acc\n" + "\n".join(f"{v:.5f}" for v in RNG.standard_normal(600)))
    scipy.io.savemat(root / "outer" / "site2" / "d.mat", {"acc": RNG.standard_normal(1200), "fs": 12000.0})
    (root / "outer" / "notes.txt").write_text("not a signal")


def test_labels_from_folders_and_rates_unified(tmp_path: Path) -> None:
    _tree(tmp_path)
    recs = load_folder(tmp_path, sample_rate=12000)
    by_name = {Path(r.meta["source"]).name: r for r in recs}
    assert sorted(by_name) == ["a.wav", "b.npy", "c.csv", "d.mat"]
    assert by_name["a.wav"].label == "normal" and by_name["d.mat"].label == "outer"
    assert all(r.sample_rate == 12000 for r in recs)
    assert by_name["a.wav"].n_samples == 1200 and by_name["a.wav"].meta["original_rate"] == 48000
    assert by_name["c.csv"].meta["original_rate"] == 12000  # taken to be at the given rate


def test_without_a_rate_undeclared_files_fail(tmp_path: Path) -> None:
    _tree(tmp_path)
    with pytest.raises(DataError, match=r"c\.csv does not declare its sample rate.*--sample-rate"):
        load_folder(tmp_path)


def test_unknown_class_folder_and_stray_files(tmp_path: Path) -> None:
    _tree(tmp_path)
    with pytest.raises(DataError, match=r"folder 'outer'.*not a known class"):
        load_folder(tmp_path, sample_rate=12000, classes=["normal", "inner"])
    np.save(tmp_path / "loose.npy", np.ones(10))
    with pytest.raises(DataError, match="not inside a class folder"):
        load_folder(tmp_path, sample_rate=12000)


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "nope")
    (tmp_path / "normal").mkdir()
    with pytest.raises(DataError, match="no signal files"):
        load_folder(tmp_path)
