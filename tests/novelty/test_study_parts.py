"""The novelty study's measures and report, on rows and scores whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.study.novelty_metrics import METHODS, auroc
from drsn_edge.study.novelty_report import goals, goals_text, write_report
from runtime.errors import ConfigError
from runtime.novelty.smoothing import SmoothingSpec, episodes, flags


def test_auroc_is_the_probability_a_novel_window_scores_higher() -> None:
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5  # ties count half
    assert auroc(np.array([0.0, 2.0]), np.array([1.0])) == 0.5
    assert np.isnan(auroc(np.array([]), np.array([1.0])))


def test_smoothing_ignores_a_single_spike_and_holds_with_hysteresis() -> None:
    spec = SmoothingSpec(enter=1.0, exit=0.5, history=3, min_windows=2)
    spike = flags(np.array([0, 0, 0, 2.5, 0, 0, 0, 0.0]), spec)  # 2.5 x the threshold, once
    assert not spike.any() and episodes(spike) == 0
    sustained = flags(np.array([0, 0, 0, 2, 2, 2, 2, 0.7, 0.7, 0.7, 0, 0, 0, 0.0]), spec)
    on = np.flatnonzero(sustained)
    assert on[0] == 5  # mean reaches 1 at window 4, held for 2 windows
    assert sustained[9]  # 0.7 stays above the exit threshold
    assert not sustained[-1] and episodes(sustained) == 1
    with pytest.raises(ConfigError, match="exit <= enter"):
        SmoothingSpec(enter=1.0, exit=2.0)


def _row(kind: str, seed: int, value: float, **extra: object) -> dict[str, object]:
    per_method = {m: {"auroc": value, "detected": value, "familiar_flagged": 0.01} for m in METHODS}
    if kind == "loco":
        return {
            "key": f"loco:x:s{seed}",
            "kind": "loco",
            "seed": seed,
            "held_out": "B007",
            "accuracy": 1.0,
            "n_novel": 80,
            "n_familiar": 700,
            **per_method,
            **extra,
        }
    raise AssertionError(kind)


def test_goals_average_over_runs_and_the_report_writes_tables_and_figures(tmp_path: Path) -> None:
    rows = [_row("loco", 0, 0.9), _row("loco", 1, 1.0)]
    g = goals(rows)
    assert g["mahalanobis"]["loco_auroc"] == pytest.approx(0.95)
    assert g["runs"] == {"loco": 2, "sim": 0, "cwru": 0}
    assert "LOCO AUROC 0.950" in goals_text(rows)
    write_report(rows, tmp_path, command="drsn-edge study novelty --data X", epochs=1)
    table = (tmp_path / "loco.md").read_text()
    assert "| B007 | 2 |" in table and "0.950 ± 0.071" in table
    assert (tmp_path / "loco.csv").is_file() and (tmp_path / "loco.png").stat().st_size > 1000
    assert json.loads((tmp_path / "rows.json").read_text()) == rows
