"""`drsn-edge validate-config`: a good config passes; each kind of mistake is refused, named, with a fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drsn_edge.cli import main
from tests.daemon.support import base_config, write_config


def synthetic(rate: float = 12000.0) -> dict[str, Any]:
    return {"type": "synthetic", "sample_rate": rate, "sensors": [{"id": "pump-1"}, {"id": "fan-2"}]}


def validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["validate-config", str(path)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_accepts_a_good_yaml_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path / "good.yaml", base_config("localhost", 1883, tmp_path, [synthetic()]))
    rc, out, err = validate(path, capsys)
    assert rc == 0, err
    assert "OK" in out and "pump-1@12000Hz" in out and "fan-2@12000Hz" in out


def test_refuses_an_unknown_key_and_names_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = base_config("localhost", 1883, tmp_path, [synthetic()])
    cfg["mqtt"]["hots"] = "broker.local"  # a typo of host
    rc, _, err = validate(write_config(tmp_path / "typo.yaml", cfg), capsys)
    assert rc != 0
    assert "mqtt.hots" in err and "Extra inputs are not permitted" in err


def test_refuses_a_missing_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = base_config("localhost", 1883, tmp_path, [synthetic()], model="models/nowhere.onnx")
    rc, _, err = validate(write_config(tmp_path / "missing.yaml", cfg), capsys)
    assert rc == 1
    assert str(tmp_path / "models" / "nowhere.onnx") in err  # resolved against the config's folder
    assert "does not exist" in err


def test_refuses_a_corrupt_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07not a protobuf at all" * 50)
    cfg = base_config("localhost", 1883, tmp_path, [synthetic()], model=str(bad))
    rc, _, err = validate(write_config(tmp_path / "corrupt.yaml", cfg), capsys)
    assert rc == 1
    assert "corrupt.onnx" in err and "not a readable ONNX file" in err and "re-export" in err


def test_refuses_a_sensor_rate_the_model_cannot_meet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = base_config("localhost", 1883, tmp_path, [synthetic(rate=8000.0)])
    rc, _, err = validate(write_config(tmp_path / "slow.yaml", cfg), capsys)
    assert rc == 1
    assert "2 problem(s)" in err
    assert "samples at 8000 Hz but the model needs 12000 Hz" in err


def test_refuses_an_env_reference_without_a_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRSN_TEST_BROKER_PASSWORD", raising=False)
    path = write_config(tmp_path / "env.yaml", base_config("localhost", 1883, tmp_path, [synthetic()]))
    secret = "mqtt:\n  username: edge\n  password: ${DRSN_TEST_BROKER_PASSWORD}\n"
    text = path.read_text().replace("mqtt:\n", secret)
    path.write_text(text)
    rc, _, err = validate(path, capsys)
    assert rc == 2
    assert "${DRSN_TEST_BROKER_PASSWORD}" in err and "export it" in err
    monkeypatch.setenv("DRSN_TEST_BROKER_PASSWORD", "s3cret")
    rc, out, err = validate(path, capsys)
    assert rc == 0, err
    assert "s3cret" not in out + err
