"""`drsn-edge diagnose` end to end on generated recordings (and on real CWRU files when present)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.cli import main
from runtime.signals.simulator import BearingSimulator


def _npy(tmp_path: Path, condition: str, seconds: float = 2.0) -> Path:
    path = tmp_path / f"{condition}.npy"
    np.save(
        path, BearingSimulator(condition, sample_rate=12000, rpm=1797, seed=3).generate(int(seconds * 12000))
    )
    return path


def test_diagnose_writes_a_table_a_figure_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = _npy(tmp_path, "outer_race")
    rc = main(
        ["diagnose", str(rec), "--bearing", "6205", "--rpm", "1797", "--rate", "12000", "-o", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "| outer_race | 107.36 |" in out and "verdict: outer_race" in out
    png = tmp_path / "outer_race_diagnosis.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "outer_race_diagnosis.json").read_text())
    assert summary["verdict"] == "outer_race" and summary["harmonics_found"] >= 2


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--bearing", "6205", "--rate", "12000"], "shaft speed; give it with --rpm"),
        (["--bearing", "6205", "--rpm", "0", "--rate", "12000"], "positive number of rpm"),
        (["--bearing", "6205", "--rpm", "1797"], "sample rate; give it with --rate"),
        (["--bearing", "6309", "--rpm", "1797", "--rate", "12000"], "catalogue holds"),
        (
            ["--bearing", "6205", "--rpm", "1797", "--rate", "12000", "--seconds", "0.3"],
            "at least 5589 samples",
        ),
    ],
)
def test_bad_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    rec = _npy(tmp_path, "inner_race", seconds=1.0)
    assert main(["diagnose", str(rec), *extra, "-o", str(tmp_path)]) == 2
    assert words in capsys.readouterr().err


@pytest.mark.shared_data
def test_a_cwru_file_gives_its_own_key_rate_and_speed(
    cwru_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = cwru_dir / "12k_DE" / "106_IR007_1hp.mat"
    assert main(["diagnose", str(rec), "--bearing", "6205", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "at 1772 rpm" in out and "verdict: inner_race (strong)" in out


def test_wav_and_csv_recordings_are_read_by_the_project_readers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scipy.io import wavfile

    x = BearingSimulator("inner_race", sample_rate=12000, rpm=1500, seed=4).generate(24000)
    wavfile.write(tmp_path / "pump.wav", 12000, x)
    np.savetxt(
        tmp_path / "pump.csv",
        np.column_stack([np.arange(x.size), x]),
        delimiter=",",
        header="t,accel",
        comments="",
    )
    assert (
        main(
            [
                "diagnose",
                str(tmp_path / "pump.wav"),
                "--bearing",
                "6205",
                "--rpm",
                "1500",
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "verdict: inner_race" in capsys.readouterr().out
    args = [
        "diagnose",
        str(tmp_path / "pump.csv"),
        "--bearing",
        "6205",
        "--rpm",
        "1500",
        "--rate",
        "12000",
        "--column",
        "accel",
        "-o",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert "verdict: inner_race" in capsys.readouterr().out
