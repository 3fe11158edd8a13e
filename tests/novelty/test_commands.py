"""`drsn-edge train` calibrates, `calibrate` refits, `export onnx` carries it, `baseline` learns a machine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.cli import main
from drsn_edge.training.checkpoint import load_checkpoint
from runtime.artifact import read_onnx_metadata
from runtime.novelty import Baseline, BaselineFileError
from runtime.novelty.stats import scorer_of
from runtime.onnx_tools.metadata_io import write_metadata_file
from runtime.signals.simulator import BearingSimulator
from tests.support.tiny_training import TINY_TRAIN_ARGS

TINY = [*TINY_TRAIN_ARGS, "--epochs", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out / "best.pt"


def test_training_ends_with_calibrated_statistics_that_export_carries(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = load_checkpoint(trained).metadata
    assert meta.novelty is not None
    calib = meta.training["novelty_calibration"]
    assert calib["n_train"] > 0 and calib["n_val"] >= 10 and 0.0 <= calib["test_flagged_p99"] <= 1.0
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", "onnx", str(trained), "-o", str(onnx_path)]) == 0
    exported = read_onnx_metadata(onnx_path)
    assert exported.features_name == "features" and exported.novelty == meta.novelty
    assert scorer_of(exported, str(onnx_path)) is not None


def test_calibrate_refits_into_a_new_checkpoint(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "again.pt"
    assert main(["calibrate", str(trained), "-o", str(out), "--score", "relative_mahalanobis"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["score"] == "relative_mahalanobis" and printed["checkpoint"] == str(out)
    assert load_checkpoint(out).metadata.novelty["score"] == "relative_mahalanobis"  # type: ignore[index]
    # the training run calibrated with the default score (the envelope one), which the refit left alone
    trained_stats = load_checkpoint(trained).metadata.novelty
    assert trained_stats["score"] == "sqrt_envelope_mahalanobis"  # type: ignore[index]
    assert trained_stats["envelope_bands"] == 4  # type: ignore[index]


def test_calibrate_on_fresh_machines_takes_thresholds_from_machines_held_out_of_the_fit(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "machines.pt"
    assert main(["calibrate", str(trained), "-o", str(out), "--machines", "10"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["data"] == "10 fresh simulated machines per class"
    # 60 / 20 / 20 % of 10 machines per class, 4 classes: 24 machines fitted, 8 set the thresholds
    assert printed["n_train"] > 2 * printed["n_val"] > 0 and printed["n_test"] > 0
    calib = load_checkpoint(out).metadata.training["novelty_calibration"]
    assert calib["data"] == printed["data"]
    assert load_checkpoint(out).metadata.novelty != load_checkpoint(trained).metadata.novelty


def test_calibrate_on_machines_is_refused_for_too_few_or_for_recorded_data(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calibrate", str(trained), "-o", str(tmp_path / "x.pt"), "--machines", "4"]) == 2
    assert "at least 10" in capsys.readouterr().err
    cwru = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets" / "drsn_cw_cwru0hp.pt"
    assert main(["calibrate", str(cwru), "-o", str(tmp_path / "y.pt"), "--machines", "48"]) == 2
    err = capsys.readouterr().err
    assert "trained on cwru data" in err and "drop --machines" in err
    assert not (tmp_path / "y.pt").exists()


def test_calibrate_names_a_file_that_is_not_a_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["calibrate", str(bad)]) == 2
    assert "x.pt" in capsys.readouterr().err


def test_baseline_command_learns_a_machine_and_refuses_another_model(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", "onnx", str(trained), "-o", str(onnx_path)]) == 0
    recording = tmp_path / "pump.npy"
    np.save(recording, BearingSimulator("normal", 0.0, 12000, rpm=1500, seed=3).generate(12000 * 20))
    state = tmp_path / "state"
    assert (
        main(
            [
                "baseline",
                str(onnx_path),
                str(recording),
                "--sensor",
                "pump-1",
                "--state-dir",
                str(state),
                "--rate",
                "12000",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    path = Path(printed["path"])
    assert path == state / "baselines" / "pump-1.json" and printed["windows"] > 100
    meta = read_onnx_metadata(onnx_path)
    base = Baseline.load(path, meta.weights_sha256)
    assert base.thresholds["p99.9"] >= base.thresholds["p99"] > 0
    with pytest.raises(BaselineFileError, match="another model"):
        Baseline.load(path, "0" * 64)


def test_baseline_needs_a_model_with_features(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx_path = tmp_path / "old.onnx"
    assert main(["export", "onnx", str(trained), "-o", str(onnx_path)]) == 0
    write_metadata_file(onnx_path, read_onnx_metadata(onnx_path), features_name=None)  # as before novelty
    recording = tmp_path / "r.npy"
    np.save(recording, np.zeros(10000, np.float32))
    assert (
        main(
            [
                "baseline",
                str(onnx_path),
                str(recording),
                "--sensor",
                "s",
                "--rate",
                "12000",
                "--state-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "no features output" in capsys.readouterr().err


def test_bench_novelty_prints_and_saves_its_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "novelty", "--seconds", "0.2", "--out", str(tmp_path)]) == 0
    assert "novelty path" in capsys.readouterr().out
    figures = json.loads((tmp_path / "bench_novelty.json").read_text())
    assert figures["features"] == 16 and figures["rounds"] >= 10 and figures["novelty_us_per_window"] > 0
    assert (tmp_path / "bench_novelty.md").is_file()
    assert figures["load_1m_before"] >= 0 and figures["load_1m_after"] >= 0
    # the daemon's reuse of a sensor's bands: 16 sensors x 2 consecutive windows per batch, every
    # fourth window computes (window 2048, hop 512)
    assert figures["envelope_reused_computed_share"] == 0.25
    assert figures["envelope_reused_ms_per_batch"] > 0
    assert "reused across a sensor's windows" in (tmp_path / "bench_novelty.md").read_text()


def test_bench_novelty_repeats_runs_and_reports_each_beside_the_medians(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "novelty", "--seconds", "0.1", "--runs", "3", "--out", str(tmp_path)]) == 0
    figures = json.loads((tmp_path / "bench_novelty.json").read_text())
    runs = figures["runs"]
    assert len(runs) == 3 and figures["rounds"] == sum(r["rounds"] for r in runs)
    for key in ("inference_ms_per_batch", "envelope_bands_ms_per_batch", "novelty_share_of_inference"):
        assert figures[key] == pytest.approx(float(np.median([r[key] for r in runs])))
    table = (tmp_path / "bench_novelty.md").read_text()
    assert "medians of 3 runs" in table and table.count("\n| 3 |") == 1
    assert (tmp_path / "bench_novelty.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["bench", "novelty", "--runs", "0", "--out", str(tmp_path)]) == 2
    assert "at least 1 run" in capsys.readouterr().err


def test_the_envelope_score_is_fitted_exported_and_scored_with_the_windows(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refit = tmp_path / "envelope.pt"
    assert main(["calibrate", str(trained), "-o", str(refit), "--score", "sqrt_envelope_mahalanobis"]) == 0
    stats = load_checkpoint(refit).metadata.novelty
    assert stats is not None and stats["score"] == "sqrt_envelope_mahalanobis"
    assert stats["envelope_bands"] == 4
    onnx_path = tmp_path / "envelope.onnx"
    assert main(["export", "onnx", str(refit), "-o", str(onnx_path)]) == 0
    scorer = scorer_of(read_onnx_metadata(onnx_path), str(onnx_path))
    assert scorer is not None and scorer.stats.needs_windows and scorer.stats.feature_dim == 16
    capsys.readouterr()
    bench = ["bench", "novelty", "--model", str(onnx_path), "--seconds", "0.2", "--out", str(tmp_path)]
    assert main(bench) == 0
    figures = json.loads((tmp_path / "bench_novelty.json").read_text())
    assert figures["score"] == "sqrt_envelope_mahalanobis" and figures["envelope_bands_ms_per_batch"] > 0


def test_training_can_fit_the_features_only_score_at_the_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out), "--novelty-score", "sqrt_mahalanobis"]) == 0
    stats = load_checkpoint(out / "best.pt").metadata.novelty
    assert stats is not None and stats["score"] == "sqrt_mahalanobis" and "envelope_bands" not in stats
