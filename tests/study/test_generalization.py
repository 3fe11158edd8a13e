"""The generalisation study: disjoint adaptation/scoring halves, the grid, the tables, a few-shot run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.cli import main
from drsn_edge.study import generalization as lolo
from drsn_edge.study import generalization_fewshot as fs
from drsn_edge.study import generalization_report as rep
from runtime.errors import ConfigError


def test_adaptation_and_scoring_halves_share_no_sample() -> None:
    window = 100
    starts = np.concatenate([np.arange(0, 1000 - window + 1, 50), np.arange(0, 600 - window + 1, 50)])
    recording = np.concatenate([np.zeros(19, int), np.ones(11, int)])
    adapt, score = lolo.halves(recording, starts, window)
    assert len(set(adapt) & set(score)) == 0 and len(adapt) and len(score)
    for rec in (0, 1):
        a = adapt[recording[adapt] == rec]
        s = score[recording[score] == rec]
        assert (starts[a] + window).max() <= starts[s].min()  # adaptation windows end before scoring starts
        assert len(a) and len(s)


def test_grid_runs_seed_by_seed_and_refuses_unknown_loads() -> None:
    points = lolo.lolo_points(("drsn_cw_paper", "wdcnn"), (0, 1), (False,))
    assert len(points) == 16 and {p.seed for p in points[:8]} == {0}
    assert len({p.key for p in points}) == 16
    with pytest.raises(ConfigError, match="not CWRU loads"):
        lolo.lolo_points(("wdcnn",), (0,), (False,), loads=(4,))


def test_test_load_is_never_a_training_load_and_has_no_normal_class() -> None:
    for load in lolo.LOADS:
        spec = lolo.data_spec(lolo.LoloSettings("x"), lolo.LoloPoint("wdcnn", load, False, 0))
        assert load not in spec.select["load_hp"] and len(spec.select["load_hp"]) == 3
        assert spec.test_select == {"load_hp": load, "fault": ["ball", "inner", "outer"]}


def _row(model: str, load: int, seed: int, acc: float) -> dict:
    return {
        "model": model,
        "test_load": load,
        "augment": False,
        "seed": seed,
        "acc": acc,
        "acc_adabn": acc / 2,
        "n_test": 500,
        "n_test_recordings": 9,
        "n_adapt": 480,
        "n_train": 1400,
        "n_val": 300,
        "test_classes": ["B007"],
        "recall": {"B007": acc},
        "recall_adabn": {"B007": acc / 2},
    }


def test_protocol_mean_is_per_seed_over_all_four_loads() -> None:
    rows = [
        _row("m", load, seed, acc)
        for seed, accs in ((0, (1.0, 0.8, 0.9, 0.7)), (1, (1.0, 1.0, 1.0, 0.6)))
        for load, acc in enumerate(accs)
    ]
    rows.append(_row("m", 0, 2, 0.1))  # seed 2 lacks three loads: not in the protocol mean
    table = rep.lolo_table(rows)
    plain = next(t for t in table if not t["adabn"])
    assert plain["n_seeds"] == 2 and plain["seeds"] == [0, 1]
    assert plain["mean"] == pytest.approx((0.85 + 0.9) / 2)
    assert plain["std"] == pytest.approx(np.std([0.85, 0.9], ddof=1))
    assert plain["0hp_n"] == 3 and plain["0hp_mean"] == pytest.approx(0.7)
    adabn = next(t for t in table if t["adabn"])
    assert adabn["mean"] == pytest.approx(plain["mean"] / 2)
    md = rep.lolo_markdown(table, rows)
    assert "87.5 ± 3.5 (n=2)" in md and "500 scored windows from 9 recordings" in md


def test_report_only_writes_tables_and_figures(tmp_path: Path, capsys) -> None:
    work = tmp_path / "work"
    (work / "fewshot").mkdir(parents=True)
    rows = [
        {
            "method": m,
            "seconds": s,
            "seed": seed,
            "key": f"{m}-{s}-{seed}",
            "acc": 0.5 + 0.1 * seed,
            "acc_other": 0.4,
            "recall": {},
            "n_train": 10,
            "n_test": 100,
            "n_test_recordings": 12,
        }
        for m in fs.METHODS
        for s in (1.0, 3.0)
        for seed in (0, 1)
    ]
    (work / "fewshot" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    argv = [
        "study",
        "generalization",
        "--parts",
        "fewshot",
        "--report-only",
        "--work",
        str(work),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| full fine-tune | same bearings, later | 55.0 ± 7.1 (n=2) | 55.0 ± 7.1 (n=2) |" in text
    assert "| full fine-tune | other bearings | 40.0 ± 0.0 (n=2) | 40.0 ± 0.0 (n=2) |" in text
    for name in ("fewshot.csv", "fewshot.md", "fewshot.png", "fewshot_runs.csv"):
        assert (out / name).stat().st_size > 0, name


def test_second_machine_test_spans_follow_the_labelled_span_or_are_other_bearings() -> None:
    data, other = fs.split_data(fs.FewShotPoint("finetune", 1.0, 0), fs.SecondMachine())
    assert data.classes == list(fs.CLASSES)
    assert (
        data.summary["train_recordings"] == 4
        and data.summary["other_bearing_recordings"] == 4 * fs.TEST_BEARINGS
    )
    assert len(data.train.y) == 4 * (1 + (12000 - fs.WINDOW) // fs.TRAIN_HOP)
    # the same-bearing test windows start after the labelled second and a one-window gap
    assert data.train.start.max() + fs.WINDOW <= 12000 and data.test.start.min() >= 12000 + fs.WINDOW
    # the stream is continuous: the labelled span is the start of the longer recording
    short = fs.recording(fs.SecondMachine(), "ball", 1.0, 1000)
    long = fs.recording(fs.SecondMachine(), "ball", 3.0, 1000)
    assert np.allclose(short, long[: len(short)])
    assert not np.allclose(short, fs.recording(fs.SecondMachine(), "ball", 1.0, 9000))
    assert len(np.unique(other.recording)) == 4 * fs.TEST_BEARINGS


def test_a_fewshot_run_fine_tunes_the_packaged_checkpoint(tmp_path: Path) -> None:
    settings = fs.FewShotSettings(parent="drsn_cw_cwru0hp", epochs=1)
    row = fs.run_point(settings, fs.FewShotPoint("head", 1.0, 0), fs.SecondMachine(), tmp_path)
    assert 0.0 <= row["acc"] <= 1.0 and set(row["recall"]) == set(fs.CLASSES)
    assert row["n_other_recordings"] == 12 and row["n_test_other"] > 400 and row["n_test"] > 100
    assert 0.0 <= row["acc_other"] <= 1.0 and set(row["recall_other"]) == set(fs.CLASSES)


def test_one_real_leave_one_load_out_run(cwru_dir: Path, tmp_path: Path) -> None:
    settings = lolo.LoloSettings(str(cwru_dir), epochs=1)
    row = lolo.run_point(settings, lolo.LoloPoint("wdcnn", 3, False, 0), tmp_path)
    assert "normal" in row["train_classes"] and "normal" not in row["test_classes"]
    assert len(row["test_classes"]) == 9 and row["n_test_recordings"] == 9
    assert row["n_test"] > 0 and row["n_adapt"] > 0 and 0.0 <= row["acc_adabn"] <= 1.0


def test_packaged_model_scored_on_a_load_it_never_saw(cwru_dir: Path) -> None:
    from drsn_edge.assets import ASSETS
    from drsn_edge.study.generalization_packaged import unseen_load_accuracy

    fig = unseen_load_accuracy(ASSETS / "drsn_cw_cwru0hp.pt", str(cwru_dir), [3])
    assert 0.5 < fig["acc_3hp"] <= 1.0 and fig["n_3hp"] > 900  # 9 recordings of ~10 s at hop 1024


def test_rows_count_once_per_key_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    from drsn_edge.study.generalization_pool import read_rows
    from runtime.errors import DataError

    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"key": "a", "acc": 0.1}\n{"key": "a", "acc": 0.2}\n{"key": "b", "acc": 0.3}\n{"key": "c", "ac'
    )
    assert {r["key"]: r["acc"] for r in read_rows(path)} == {"a": 0.2, "b": 0.3}
    path.write_text('{"key": "a"}\n{broken\n{"key": "b"}\n')
    with pytest.raises(DataError, match="line 2"):
        read_rows(path)


def test_fewshot_paired_differences_are_per_seed() -> None:
    from drsn_edge.study.generalization_report import fewshot_paired

    rows = [
        {"method": m, "seconds": 3.0, "seed": s, "acc": a}
        for m, s, a in [
            ("finetune", 0, 0.9),
            ("finetune", 1, 0.8),
            ("scratch", 0, 0.7),
            ("scratch", 1, 0.7),
            ("head", 0, 0.5),
        ]
    ]
    text = fewshot_paired(rows)
    # per seed +20 and +10 points: mean +15, sample std 7.1; the head only for seed 0
    assert "per seed (0, 1): 90.0, 80.0 %" in text
    assert "minus from scratch +15.0 ± 7.1 points (n=2 seeds)" in text
    assert "minus the new head +40.0 points (n=1 seeds)" in text
    assert fewshot_paired([]) == ""


def test_lolo_paired_compares_the_same_seed_and_test_load_only() -> None:
    from drsn_edge.study.generalization_report import lolo_paired

    def row(model: str, seed: int, load: int, acc: float, augment: bool = False) -> dict[str, object]:
        return {"model": model, "seed": seed, "test_load": load, "acc": acc, "augment": augment}

    rows = [
        row("drsn_cw_paper", 0, 1, 0.95),
        row("drsn_cw_paper", 0, 2, 0.99),
        row("drsn_cw_paper", 1, 1, 0.90),  # no wdcnn partner: left out
        row("wdcnn", 0, 1, 0.90),
        row("wdcnn", 0, 2, 0.98),
        row("wdcnn", 0, 3, 0.50),  # no drsn_cw partner: left out
        row("wdcnn", 0, 1, 0.10, augment=True),  # augmented runs are another configuration
    ]
    text = lolo_paired(rows)
    assert "drsn_cw_paper minus wdcnn (clean training, no AdaBN): +3.0 ± 2.8 points over 2" in text
    assert lolo_paired([row("wdcnn", 0, 1, 0.9)]) == ""
