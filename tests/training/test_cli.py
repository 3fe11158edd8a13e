"""`drsn-edge train`, `evaluate` and `sweep` as a user runs them (tiny synthetic runs)."""

from __future__ import annotations

import json
from pathlib import Path

from drsn_edge.cli import main
from tests.support.tiny_training import TINY_TRAIN_ARGS

TINY = [*TINY_TRAIN_ARGS, "--epochs", "2"]


def test_train_then_evaluate(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= summary["test_acc"] <= 1.0
    for name in (
        "best.pt",
        "last.pt",
        "history.png",
        "test_confusion.png",
        "test_report.txt",
        "test_metrics.json",
    ):
        assert (out / name).is_file(), name
    assert (
        main(["evaluate", str(out / "best.pt"), "--noise", "gaussian:-6", "--noise-protocol", "test_only"])
        == 0
    )
    printed = capsys.readouterr().out
    ev = json.loads(printed.strip().splitlines()[-1])
    assert ev["n"] > 0
    metrics = json.loads((out / "eval_test_metrics.json").read_text())
    assert metrics["data_spec"]["noise"] == "gaussian:-6"
    assert len(metrics["confusion"]) == len(metrics["classes"])


def test_evaluate_rejects_a_file_that_is_not_a_checkpoint(tmp_path: Path, capsys) -> None:
    bogus = tmp_path / "x.pt"
    bogus.write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(bogus)]) == 2
    assert "not a readable drsn-edge checkpoint" in capsys.readouterr().err


def test_sweep_writes_table_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        "--source",
        "synthetic",
        "--window",
        "1024",
        "--hop",
        "512",
        "--epochs",
        "1",
        "--models",
        "drsn_cw_paper,resnet_paper",
        "--noise-types",
        "gaussian",
        "--snrs",
        "0,6",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    md = (out / "sweep.md").read_text()
    assert "drsn_cw_paper" in md and "resnet_paper" in md and "| gaussian | 6 |" in md
    assert (out / "sweep.png").stat().st_size > 1000
    assert len((out / "sweep.csv").read_text().splitlines()) == 1 + 2 * 2
