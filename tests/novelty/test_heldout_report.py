"""The held-out-seeds report, on study rows whose figures are known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drsn_edge.study.novelty import CWRU_CLASSES
from drsn_edge.study.novelty_heldout import SCORES, class_table, read_rows, summary_table, verdict, write
from runtime.errors import ConfigError, DataError


def _loco(seed: int, cls: str, envelope: float, other: float = 0.9) -> dict[str, Any]:
    scores = {m: {"auroc": other, "detected": 0.5, "familiar_flagged": 0.01} for m in SCORES}
    scores["sqrt_envelope"] = {"auroc": envelope, "detected": 0.8, "familiar_flagged": 0.01}
    return {
        "key": f"loco:{cls}:s{seed}",
        "kind": "loco",
        "seed": seed,
        "held_out": cls,
        "n_novel": 37 if cls == "normal" else 85,
        "n_familiar": 761,
        **scores,
    }


def _cwru(seed: int, flagged: float) -> dict[str, Any]:
    familiar = {
        m: {
            "flagged": flagged,
            "flagged_smoothed": flagged / 2,
            "flagged_p999": 0.0,
            "flagged_smoothed_p999": 0.0,
        }
        for m in SCORES
    }
    return {
        "key": f"cwru:s{seed}",
        "kind": "cwru",
        "seed": seed,
        "n_test": 798,
        "familiar": familiar,
        "simulator": {"n": 932, **{m: {"auroc": 1.0, "flagged": 1.0} for m in SCORES}},
        "load_shift": {
            str(hp): {m: {"flagged_smoothed": 0.01 * hp, "flagged_smoothed_p999": 0.005 * hp} for m in SCORES}
            for hp in (1, 2, 3)
        },
    }


def _study(seeds: dict[int, float], b007: float | None = None) -> list[dict[str, Any]]:
    """Every class at the seed's value for the envelope score, except B007 when given."""
    rows = [_cwru(s, 0.02) for s in seeds]
    for s, v in seeds.items():
        rows += [_loco(s, c, b007 if c == "B007" and b007 is not None else v) for c in CWRU_CLASSES]
    return rows


def test_the_summary_pairs_fresh_seeds_with_the_choice_and_measures_the_margin_to_the_goal() -> None:
    choice = _study({0: 0.99, 1: 0.98, 2: 0.97})
    fresh = _study({3: 0.96, 4: 0.94, 5: 0.97})
    row = summary_table(fresh, choice)[0]
    assert row["seeds"] == "3, 4, 5" and row["per_seed"] == "0.960 / 0.940 / 0.970"
    assert row["loco_auroc"] == "0.957 ± 0.015"
    assert row["vs_goal_0.95"] == "+0.007 (lowest seed -0.010)"
    assert row["choice_seeds_auroc"] == "0.980 ± 0.010 (0, 1, 2)" and row["fresh_minus_choice"] == "-0.023"
    assert row["familiar_flagged_p99_pct"] == "2.00 ± 0.00" and row["n_familiar_test"] == "798"
    assert row["1/2/3hp_flagged_p99_smoothed_pct"] == "1.0 ± 0.0 / 2.0 ± 0.0 / 3.0 ± 0.0"
    assert row["1/2/3hp_flagged_p99.9_smoothed_pct"] == "0.5 ± 0.0 / 1.0 ± 0.0 / 1.5 ± 0.0"
    text = verdict(fresh, choice)
    assert "0.957 ± 0.015" in text and "does not hold" in text  # one seed under the goal: not met
    assert "holds" in verdict(_study({3: 0.96, 4: 0.97}), choice).replace("does not hold", "")


def test_per_class_rows_name_the_counts_and_the_worst_class_is_found() -> None:
    fresh = _study({3: 0.99, 4: 0.99}, b007=0.80)
    table = class_table(fresh, _study({0: 0.99}))
    by_class = {r["held_out"]: r for r in table}
    assert list(by_class) == [*CWRU_CLASSES, "mean"]
    assert by_class["B007"]["auroc_sqrt_envelope"] == "0.800 ± 0.000"
    assert by_class["B007"]["auroc_sqrt_envelope_choice_seeds"] == "0.990 ± 0.000"
    assert by_class["normal"]["n_novel"] == "37" and by_class["mean"]["n_novel"] == "37-85"
    assert by_class["mean"]["auroc_sqrt_envelope"] == "0.971 ± 0.000"  # (9 * 0.99 + 0.80) / 10
    assert summary_table(fresh, fresh)[0]["worst_class"] == "B007 0.80 ± 0.00"


def test_seeds_in_both_studies_are_refused_as_not_held_out(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"seeds \[2\] are in both studies"):
        write(_study({2: 0.9, 3: 0.9}), _study({0: 0.9, 2: 0.9}), tmp_path, "cmd")


def test_rows_without_the_chosen_score_or_without_loco_name_the_fix(tmp_path: Path) -> None:
    fresh = _study({3: 0.9})
    del fresh[-1]["sqrt_envelope"]
    with pytest.raises(DataError, match=r"loco:OR021@6:s3 has no sqrt_envelope: re-score it"):
        write(fresh, _study({0: 0.9}), tmp_path, "cmd")
    with pytest.raises(DataError, match="no leave-one-class-out rows"):
        write([_cwru(3, 0.0)], _study({0: 0.9}), tmp_path, "cmd")


def test_read_rows_is_total(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist: run `drsn-edge study novelty"):
        read_rows(tmp_path / "rows.jsonl")
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(_cwru(3, 0.0)) + "\n\n{not json\n")
    with pytest.raises(DataError, match=r"rows.jsonl:3 is not JSON"):
        read_rows(path)
    path.write_text(json.dumps(_cwru(3, 0.0)) + '\n["a list"]\n')
    with pytest.raises(DataError, match=r"rows.jsonl:2 is not a study row"):
        read_rows(path)
    path.write_text(json.dumps(_cwru(3, 0.0)) + "\n")
    assert read_rows(path)[0]["key"] == "cwru:s3"


def test_the_report_writes_the_verdict_both_tables_and_the_figure(tmp_path: Path) -> None:
    text = write(_study({3: 0.97, 4: 0.96}), _study({0: 0.98, 1: 0.99}), tmp_path, "the command")
    md = (tmp_path / "heldout.md").read_text()
    assert text in md and "`the command`" in md
    assert "## Per held-out class" in md and "| B007 | 2 | 85 | 761 |" in md
    assert (tmp_path / "heldout_summary.csv").read_text().count("\n") == 1 + len(SCORES)
    assert (tmp_path / "heldout_classes.csv").read_text().count("\n") == 1 + len(CWRU_CLASSES) + 1
    assert (tmp_path / "heldout.png").stat().st_size > 1000
