"""A sweep run by a pool of worker processes gives the same rows as a serial one, and resumes alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drsn_edge.study.noise import study_data_spec
from drsn_edge.training.sweep import grid, run_sweep
from drsn_edge.training.trainer import TrainConfig
from runtime.errors import ConfigError

SAME = ("model", "noise", "snr_db", "seed", "accuracy", "macro_f1", "n_test", "best_epoch")


def _rows(path: Path) -> dict[tuple[str, int], dict[str, object]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {(r["model"], r["seed"]): {k: r[k] for k in SAME} for r in rows}


def test_parallel_sweep_matches_serial_and_resumes(tmp_path: Path) -> None:
    spec = study_data_spec("synthetic", None, window=1024, small=True)
    cfg = TrainConfig(epochs=1, threads=1)
    points = grid(["drsn_cw_paper", "resnet_paper"], ["gaussian"], [0.0], [0, 1])

    run_sweep(points, spec, cfg, tmp_path / "serial", progress=False)
    run_sweep(points, spec, cfg, tmp_path / "pool", progress=False, workers=2)
    serial = _rows(tmp_path / "serial" / "sweep_rows.jsonl")
    pooled = _rows(tmp_path / "pool" / "sweep_rows.jsonl")
    assert len(serial) == 4
    assert pooled == serial  # training is deterministic per run, wherever it runs

    # a second call finds every row and trains nothing: the rows file does not grow
    rows_file = tmp_path / "pool" / "sweep_rows.jsonl"
    before = rows_file.read_text()
    agg, paths = run_sweep(points, spec, cfg, tmp_path / "pool", progress=False, workers=2)
    assert rows_file.read_text() == before
    assert {r["model"] for r in agg} == {"drsn_cw_paper", "resnet_paper"} and paths["png"].exists()


def test_workers_must_be_positive(tmp_path: Path) -> None:
    spec = study_data_spec("synthetic", None, window=1024, small=True)
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        run_sweep([], spec, TrainConfig(epochs=1), tmp_path, progress=False, workers=0)
