"""The novelty study's measures and report, on rows and scores whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.novelty.features import Outputs
from drsn_edge.study.novelty_candidates import CANDIDATES, fit_candidates
from drsn_edge.study.novelty_metrics import METHODS, auroc
from drsn_edge.study.novelty_packaged import min_windows
from drsn_edge.study.novelty_report import candidates_table, goals, goals_text, write_report
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


def _outputs(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[Outputs, np.ndarray]:
    """Three well-separated classes in 4 non-negative features, logits from a fixed linear head."""
    y = np.arange(n) % 3
    centres = np.array([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]])
    f = np.abs(centres[y] + rng.normal(size=(n, 4)) * 0.5 + shift)
    return Outputs(logits=f[:, :3] * 2.0, features=f, windows=rng.normal(size=(n, 1, 256))), y


def test_every_candidate_scores_windows_from_nowhere_above_familiar_ones() -> None:
    rng = np.random.default_rng(0)
    train, y = _outputs(rng, 600)
    val, _ = _outputs(rng, 300)
    familiar, _ = _outputs(rng, 300)
    far = np.abs(rng.normal(size=(100, 4)) * 0.5 + np.array([0, 0, 0, 6.0]))  # a direction never trained
    novel = Outputs(logits=far[:, :3] * 2.0, features=far, windows=rng.normal(size=(100, 1, 256)))
    fns = fit_candidates(train, y, 3, val)
    assert set(fns) == set(CANDIDATES)
    for name, fn in fns.items():
        assert auroc(fn(familiar), fn(novel)) > 0.95, name


def test_candidates_table_ranks_scores_by_loco_and_pairs_them_with_the_plain_distance() -> None:
    def loco(seed: int, maha: float, better: float) -> dict[str, object]:
        row = _row("loco", seed, maha)
        row["sqrt_mahalanobis"] = {"auroc": better, "detected": 0.5, "familiar_flagged": 0.0}
        return row

    def cwru(seed: int) -> dict[str, object]:
        scores = {m: {"auroc": 0.99, "flagged": 0.0} for m in ("mahalanobis", "sqrt_mahalanobis")}
        familiar = {m: {"flagged_smoothed": 0.01} for m in ("mahalanobis", "sqrt_mahalanobis")}
        return {"key": f"cwru:s{seed}", "kind": "cwru", "seed": seed, "simulator": scores,
                "familiar": familiar}

    rows = [loco(0, 0.90, 0.93), loco(1, 0.92, 0.94), cwru(0), cwru(1)]
    table = candidates_table(rows)
    assert [r["score"] for r in table] == ["Mahalanobis on sqrt features", "Mahalanobis"]
    assert table[0]["loco_auroc"] == "0.935 ± 0.007" and table[0]["paired_vs_mahalanobis"] == "0.025 ± 0.007"
    assert table[0]["on_device"] == "yes" and table[1]["familiar_flagged_p99_smoothed_pct"] == "1.00 ± 0.00"


def test_the_daemon_s_minimum_duration_becomes_windows_as_the_daemon_resolves_it() -> None:
    assert min_windows(0.0) == 3  # the novelty block's own minimum
    assert min_windows(1.0) == 24  # ceil(1 s / (512 / 12000 s))
