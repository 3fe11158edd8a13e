"""`python -m runtime.bench.compare`: medians and every run of groups of bench results, table and PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.bench.compare import main


def _run(folder: Path, cpu: float, ratio: float | None) -> None:
    folder.mkdir(parents=True)
    result: dict[str, object] = {"fast": {"cpu_us_per_window": cpu}, "targets": {}}
    if ratio is not None:
        result["targets"] = {"throughput_ratio": {"measured": ratio}}
    (folder / "result.json").write_text(json.dumps(result))


def test_groups_give_their_runs_and_median(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, (cpu, ratio) in enumerate([(100.0, 0.5), (120.0, 0.7), (90.0, 0.6)]):
        _run(tmp_path / f"before-{i}", cpu, ratio)
    for i, cpu in enumerate([50.0, 60.0]):
        _run(tmp_path / f"after-{i}", cpu, None)  # runs without a ratio (null backend) leave it out
    out = tmp_path / "summary"
    assert main(["--out", str(out), f"before={tmp_path}/before-*", f"after={tmp_path}/after-*"]) == 0
    text = (out / "summary.md").read_text()
    assert "| before | daemon CPU per window (us) | 100, 120, 90 | 100 |" in text
    assert "| before | daemon / bare | 0.5, 0.7, 0.6 | 0.6 |" in text
    assert "| after | daemon CPU per window (us) | 50, 60 | 55 |" in text
    assert "| after | daemon / bare" not in text
    assert (out / "summary.png").stat().st_size > 5_000 and text in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--out", str(out), f"none={tmp_path}/missing-*"])  # a glob that matches no run
