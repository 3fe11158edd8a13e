"""`drsn-edge study noise --smoke` end to end on the bearing simulator, as a user runs it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.cli import main
from drsn_edge.study.grids import preset
from drsn_edge.study.noise import expand_test_only

SMOKE = ["study", "noise", "--smoke", "--source", "synthetic", "--no-progress"]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("noise_study")
    out, work = root / "out", root / "work"
    assert main([*SMOKE, "--out", str(out), "--work", str(work)]) == 0
    return out, work


def test_tables_and_figures_are_written(smoke: tuple[Path, Path]) -> None:
    out, _ = smoke
    for name in ("noise_train_test", "noise_test_only"):
        assert (out / f"{name}.png").stat().st_size > 5000
        rows = _csv(out / f"{name}.csv")
        assert {(r["model"], float(r["snr_db"])) for r in rows} == {
            (m, s) for m in ("drsn_cw_paper", "resnet_paper") for s in (-6.0, 0.0)
        }
        for r in rows:
            assert 0.0 <= float(r["accuracy"]) <= 1.0
            # the FP16 ONNX model is scored for DRSN-CW only, on the same windows as FP32
            assert (r["fp16_accuracy"] != "") == (r["model"] == "drsn_cw_paper")
        assert "| gaussian | -6 |" in (out / f"{name}.md").read_text()
    for name in ("thresholds_train_test.png", "thresholds_test_only.png"):
        assert (out / name).stat().st_size > 5000


def test_fp16_accuracy_tracks_fp32(smoke: tuple[Path, Path]) -> None:
    out, _ = smoke
    for r in _csv(out / "noise_train_test.csv"):
        if r["model"] == "drsn_cw_paper":
            assert float(r["fp16_agreement"]) >= 0.95
            assert abs(float(r["fp16_accuracy"]) - float(r["accuracy"])) <= 0.05


def test_threshold_table_has_sensible_values(smoke: tuple[Path, Path]) -> None:
    out, _ = smoke
    rows = _csv(out / "thresholds.csv")
    assert {r["protocol"] for r in rows} == {"train_test", "test_only"}
    assert {r["model"] for r in rows} == {"drsn_cw_paper"}  # ResNet has no thresholds
    assert {int(r["block"]) for r in rows} == set(range(1, 13))
    for r in rows:
        assert 0.0 < float(r["tau_ratio"]) <= 1.0
        assert 0.0 <= float(r["zero_fraction"]) <= 1.0
        assert float(r["abs_mean"]) > 0.0


def test_page_and_metadata_state_n_runtime_and_goals(smoke: tuple[Path, Path]) -> None:
    out, work = smoke
    meta = json.loads((out / "noise_study.json").read_text())
    assert meta["runtime"]["training_runs"] == preset("smoke").runs() == 6
    assert meta["runtime"]["run_seconds_total"] > 0
    assert meta["windows"]["n_test"] and min(meta["windows"]["n_test"]) > 0
    page = (out / "noise_study.md").read_text()
    assert f"test n = {meta['windows']['n_test'][0]}" in page
    assert "DRSN-CW at SNR <= -6 dB" in page
    summary = _csv(out / "noise_summary.csv")
    assert {(r["protocol"], r["model"]) for r in summary} == {
        (p, m) for p in ("train_test", "test_only") for m in ("drsn_cw_paper", "resnet_paper")
    }
    assert all(r["clean_accuracy"] != "" for r in summary if r["protocol"] == "test_only")
    assert Path(meta["work_dir"]).parent == work


def test_a_second_invocation_resumes_without_training(smoke: tuple[Path, Path]) -> None:
    out, work = smoke
    rows = sorted(work.glob("*/*/*_rows.jsonl"))
    assert len(rows) == 2
    before = [p.read_text() for p in rows]
    checkpoints = {p: p.stat().st_mtime_ns for p in work.rglob("best.pt")}
    assert main([*SMOKE, "--out", str(out), "--work", str(work), "--no-fp16"]) == 0
    assert [p.read_text() for p in rows] == before
    assert {p: p.stat().st_mtime_ns for p in work.rglob("best.pt")} == checkpoints


def test_changed_training_settings_get_their_own_work_directory(tmp_path: Path) -> None:
    from drsn_edge.study.noise import NoiseStudy
    from drsn_edge.training.datasource import DataSpec
    from drsn_edge.training.trainer import TrainConfig

    def study(**train: object) -> NoiseStudy:
        return NoiseStudy(preset("smoke"), DataSpec(), TrainConfig(**train), tmp_path, tmp_path)  # type: ignore[arg-type]

    assert study().work_dir == study(threads=2, progress=False).work_dir
    assert study().work_dir != study(optimizer="adamw").work_dir


def test_expanding_test_only_keeps_the_grid_points() -> None:
    raw = [
        {
            "model": "m",
            "noise": "gaussian",
            "snr_db": -6.0,
            "seed": 0,
            "n_train": 5,
            "n_val": 2,
            "clean": {"accuracy": 0.9},
            "test_only": [
                {"noise": "gaussian", "snr_db": s, "accuracy": a}
                for s, a in ((-6.0, 0.5), (0.0, 0.7), (4.0, 0.8))
            ],
        }
    ]
    rows, clean = expand_test_only(raw, preset("smoke"))
    assert [(r["snr_db"], r["accuracy"]) for r in rows] == [(-6.0, 0.5), (0.0, 0.7)]
    assert clean[0]["accuracy"] == 0.9 and clean[0]["noise"] == "clean"


def test_missing_cwru_folder_is_an_error_that_names_the_flag(tmp_path: Path, capsys) -> None:
    assert main(["study", "noise", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "--data" in capsys.readouterr().err


def test_report_only_tabulates_existing_runs_without_training(
    smoke: tuple[Path, Path], tmp_path: Path
) -> None:
    out, work = smoke
    again = tmp_path / "again"
    assert main([*SMOKE, "--out", str(again), "--work", str(work), "--report-only"]) == 0
    assert _csv(again / "noise_summary.csv") == _csv(out / "noise_summary.csv")


def test_report_only_of_settings_never_run_says_what_to_do(tmp_path: Path, capsys) -> None:
    assert (
        main([*SMOKE, "--epochs", "3", "--out", str(tmp_path), "--work", str(tmp_path), "--report-only"]) == 2
    )
    assert "without --report-only" in capsys.readouterr().err


def test_work_directory_ignores_simulator_settings_for_recorded_data(tmp_path: Path) -> None:
    """Adding or changing a simulator knob must not orphan hours of finished CWRU runs."""
    from drsn_edge.study.noise import NoiseStudy, study_data_spec
    from drsn_edge.training.trainer import TrainConfig

    def work(source: str, **synthetic: object) -> Path:
        spec = study_data_spec(source, str(tmp_path) if source == "cwru" else None)
        for key, value in synthetic.items():
            setattr(spec, key, value)
        return NoiseStudy(preset("full"), spec, TrainConfig(), tmp_path).work_dir

    assert work("cwru") == work("cwru", synthetic_severity=(0.25, 1.0), synthetic_seconds=9.0)
    assert work("synthetic") != work("synthetic", synthetic_severity=(0.25, 1.0))
    # what does change a recorded-data run still changes the key
    spec = study_data_spec("cwru", str(tmp_path), window=1024)
    assert NoiseStudy(preset("full"), spec, TrainConfig(), tmp_path).work_dir != work("cwru")


def test_summary_spread_is_over_seed_means_and_margins_are_paired() -> None:
    """Worked by hand: two points, three seeds, and a fourth seed that ran only one point."""
    from drsn_edge.study.noise import ProtocolResult
    from drsn_edge.study.report import summarise, summary_markdown
    from drsn_edge.training.sweep import aggregate

    acc = {  # (model, seed) -> accuracy at (gaussian, -8) and (gaussian, 0)
        ("drsn_cw_paper", 0): (0.80, 1.00),
        ("drsn_cw_paper", 1): (0.70, 0.90),
        ("drsn_cw_paper", 2): (0.60, 1.00),
        ("resnet_paper", 0): (0.60, 1.00),
        ("resnet_paper", 1): (0.60, 0.90),
        ("resnet_paper", 2): (0.40, 1.00),
    }
    rows = [
        {"model": m, "seed": s, "noise": "gaussian", "snr_db": snr, "accuracy": a[i]}
        for (m, s), a in acc.items()
        for i, snr in enumerate((-8.0, 0.0))
    ]
    rows.append({"model": "resnet_paper", "seed": 3, "noise": "gaussian", "snr_db": -8.0, "accuracy": 0.2})
    res = {"train_test": ProtocolResult("train_test", rows, len(acc), 0.0)}
    summary = {r["model"]: r for r in summarise({"train_test": aggregate(rows)}, res)}
    cw, rn = summary["drsn_cw_paper"], summary["resnet_paper"]
    # seed 3 ran only the low point: it counts in the low band, not in the overall spread
    assert (cw["seeds"], rn["seeds"], rn["seeds_low_snr"]) == (3, 3, 4)
    assert cw["mean_accuracy_std"] == pytest.approx(np.std([0.9, 0.8, 0.8], ddof=1))
    assert rn["mean_accuracy_low_snr_std"] == pytest.approx(np.std([0.6, 0.6, 0.4, 0.2], ddof=1))
    # paired margins at -8 dB: 0.2, 0.1, 0.2 (seed 3 has no DRSN-CW partner)
    assert rn["drsn_cw_margin_low_snr_std"] == pytest.approx(np.std([0.2, 0.1, 0.2], ddof=1))
    assert rn["drsn_cw_margin_low_snr"] == pytest.approx(0.7 - 0.45)
    assert rn["drsn_cw_points_won"] == 2
    assert "| train_test | resnet_paper | 2 | 3 (4) |" in summary_markdown(list(summary.values()))


def test_rescore_fp16_restores_a_failed_fp16_column(smoke: tuple[Path, Path], tmp_path: Path) -> None:
    """A run whose FP16 step failed (say, under an older, stricter gate) is exported and scored again."""
    import shutil

    _, work = smoke
    copy = tmp_path / "work"
    shutil.copytree(work, copy)
    (rows_path,) = copy.glob("*/train_test/train_test_rows.jsonl")
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    victim = next(r for r in rows if r["model"] == "drsn_cw_paper")
    expected = {k: victim.pop(k) for k in ("fp16_accuracy", "fp16_agreement")}
    victim["fp16_error"] = "ParityError: FP16 gate failed (injected)"
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    out = tmp_path / "out"
    assert main([*SMOKE, "--out", str(out), "--work", str(copy), "--rescore-fp16"]) == 0
    key = ("model", "noise", "snr_db", "seed")
    again = {tuple(r[k] for k in key): r for r in map(json.loads, rows_path.read_text().splitlines())}
    fixed = again[tuple(victim[k] for k in key)]
    assert "fp16_error" not in fixed
    assert fixed["fp16_accuracy"] == pytest.approx(expected["fp16_accuracy"])
    assert len(again) == len(rows)  # nothing trained, nothing lost


def test_fp16_table_pairs_fp32_and_fp16_over_the_same_runs() -> None:
    """A run whose FP16 export failed is left out of both columns and counted, not silently skipped."""
    from drsn_edge.study.report import fp16_markdown

    rows = [
        {"model": "drsn_cw_paper", "noise": "pink", "snr_db": -6.0, "seed": 0, "accuracy": 0.90,
         "fp16_accuracy": 0.89, "fp16_agreement": 0.99},
        {"model": "drsn_cw_paper", "noise": "pink", "snr_db": -6.0, "seed": 1, "accuracy": 0.50,
         "fp16_error": "ParityError: ..."},
        {"model": "resnet_paper", "noise": "pink", "snr_db": -6.0, "seed": 0, "accuracy": 0.70},
    ]
    table = fp16_markdown(rows)
    assert "| pink | -6 | 1/2 | 90.00 | 89.00 | 99.00 |" in table  # not 70.00: seed 1 has no FP16
    assert fp16_markdown([r for r in rows if r["model"] == "resnet_paper"]) == ""


def test_noise_augmentation_keys_the_work_only_when_it_is_on(tmp_path: Path) -> None:
    from drsn_edge.study.noise import NoiseStudy, study_data_spec
    from drsn_edge.training.trainer import TrainConfig

    spec = study_data_spec("cwru", str(tmp_path))
    off = NoiseStudy(preset("full"), spec, TrainConfig(), tmp_path)
    on = NoiseStudy(preset("full"), spec, TrainConfig(augment_noise="pink:-10..4"), tmp_path)
    assert "augment_noise" not in off.settings()["train"] and "augment_prob" not in off.settings()["train"]
    assert on.settings()["train"]["augment_noise"] == "pink:-10..4"
    assert on.work_dir != off.work_dir


def test_summary_says_when_fp16_exports_failed() -> None:
    from drsn_edge.study.noise import ProtocolResult
    from drsn_edge.study.report import summarise, summary_markdown
    from drsn_edge.training.sweep import aggregate

    rows = [
        {"model": "drsn_cw_paper", "noise": "pink", "snr_db": -6.0, "seed": 0, "accuracy": 0.9,
         "fp16_accuracy": 0.9},
        {"model": "drsn_cw_paper", "noise": "pink", "snr_db": -6.0, "seed": 1, "accuracy": 0.8,
         "fp16_error": "ParityError: ..."},
    ]
    res = {"train_test": ProtocolResult("train_test", rows, 2, 0.0)}
    table = summary_markdown(summarise({"train_test": aggregate(rows, ["accuracy", "fp16_accuracy"])}, res))
    assert "| 90.00 (1/2 runs) |" in table
    rows[1] = {**rows[1], "fp16_accuracy": 0.8}
    del rows[1]["fp16_error"]
    table = summary_markdown(summarise({"train_test": aggregate(rows, ["accuracy", "fp16_accuracy"])}, res))
    assert "| 85.00 |" in table and "runs)" not in table
