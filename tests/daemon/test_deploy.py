"""The deployment files: every example config validates, and the systemd unit says what the daemon needs."""

from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from drsn_edge.cli import main
from tests.daemon.support import MODEL, REPO, simulate

DEPLOY = REPO / "deploy"
EXAMPLES = sorted((DEPLOY / "examples").glob("*.yaml"))
CWRU_FILES = {  # what deploy/examples/cwru-replay.yaml plays: path -> (.mat key, rate)
    "12k_DE/105_IR007_0hp.mat": ("X105_DE_time", "inner_race"),
    "12k_DE/130_OR007@6_0hp.mat": ("X130_DE_time", "outer_race"),
    "12k_DE/118_B007_0hp.mat": ("X118_DE_time", "ball"),
    "normal/97_normal_0hp.mat": ("X097_DE_time", "normal"),
}


def fake_cwru(root: Path) -> Path:
    """CWRU-shaped .mat files (one (n, 1) column per file, no rate inside), simulated."""
    for rel, (key, condition) in CWRU_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        savemat(path, {key: simulate(condition, 0.5).astype(np.float64)[:, None]})
    return root


def test_there_is_an_example_for_each_kind_of_source() -> None:
    assert {p.stem for p in EXAMPLES} >= {"synthetic-demo", "cwru-replay", "mqtt-raw", "udp"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_config_validates(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRSN_MODEL", str(MODEL))
    monkeypatch.setenv("CWRU_DIR", str(fake_cwru(tmp_path / "cwru")))
    monkeypatch.setenv("MQTT_PASSWORD", "from-the-environment")
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    rc = main(["validate-config", str(example)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert f"{example}: OK" in out.out


def test_systemd_unit_runs_the_daemon_as_a_restartable_reloadable_service() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(DEPLOY / "systemd" / "drsn-edge.service")
    svc = unit["Service"]
    assert svc["Type"] in ("simple", "notify") and svc["Restart"] == "always"
    assert svc["User"] == "drsn-edge" and svc["WorkingDirectory"] == "/var/lib/drsn-edge"
    assert svc["StateDirectory"] == "drsn-edge"  # the outbox and engine cache survive restarts
    assert svc["KillSignal"] == "SIGTERM" and svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert svc["ExecStart"].split()[1:4] == ["run", "--config", "/etc/drsn-edge/daemon.yaml"]
    assert "validate-config" in svc["ExecStartPre"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
