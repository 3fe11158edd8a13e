"""Documentation that is generated from code must match the code, so it cannot drift."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from runtime.config import DaemonConfig
from runtime.config_reference import reference_markdown

REPO = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_current() -> None:
    doc = (REPO / "docs" / "configuration.md").read_text()
    assert reference_markdown(DaemonConfig) in doc, (
        "docs/configuration.md is stale; regenerate it with "
        "`drsn-edge validate-config --reference > docs/configuration.md`"
    )


def test_readme_quick_start_is_the_ci_command() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick, flags=re.M)
    assert commands == ["make demo", "make test"]
    assert re.search(r"^make test$", ci, flags=re.M), ".ci/run must run the README's test command"


def test_readme_first_training_commands_run() -> None:
    """Run the README's simulator training command (1 epoch) and its CLI flags exactly as printed."""
    readme = (REPO / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if ln.startswith("drsn-edge train --source synthetic"))
    argv = shlex.split(line.split("#")[0])[1:]
    out = REPO / ".pytest_cache" / "readme-train"
    argv = [a for a in argv]
    argv[argv.index("--epochs") + 1] = "1"
    argv[argv.index("--out") + 1] = str(out)
    res = subprocess.run(
        [sys.executable, "-m", "drsn_edge", *argv, "--no-progress", "--synthetic-per-class", "2",
         "--synthetic-seconds", "3", "--threads", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "best.pt").is_file()
