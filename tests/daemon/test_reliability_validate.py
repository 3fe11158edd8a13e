"""`validate-config` refuses what `run` would refuse (issue 10, defect 8), and `run` says why in one line.

The systemd unit runs validate-config as ExecStartPre; it used to pass an outbox path whose
parent is a file (``run`` then died with a raw traceback), a missing TLS CA file, ``backend:
tensorrt`` without TensorRT, a model whose graph does not match its metadata, and duplicate YAML
keys (silently last-wins).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drsn_edge.cli import main
from runtime.backends import is_installed
from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from runtime.errors import ConfigError
from tests.daemon.support import base_config, write_config
from tests.daemon.test_reliability_sources import mismatched_model


def _cfg(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    source = {"type": "synthetic", "sample_rate": 12000.0, "sensors": [{"id": "pump-1"}]}
    return base_config("localhost", 1883, tmp_path, [source], **extra)


def _validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["validate-config", str(path)])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_an_outbox_whose_parent_is_a_file_is_refused_by_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "state").write_text("not a folder")
    cfg = _cfg(tmp_path)
    cfg["mqtt"]["outbox"]["path"] = str(tmp_path / "state" / "outbox.sqlite3")
    rc, text = _validate(write_config(tmp_path / "d.yaml", cfg), capsys)
    assert rc == 1 and f"{tmp_path / 'state'} is a file, not a directory" in text
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        Daemon(validate_config_dict(cfg)).start()  # run: the same sentence, not a NotADirectoryError


def test_an_outbox_path_that_is_a_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _cfg(tmp_path)
    cfg["mqtt"]["outbox"]["path"] = str(tmp_path)
    rc, text = _validate(write_config(tmp_path / "d.yaml", cfg), capsys)
    assert rc == 1 and "is a directory; name a file in it" in text


def test_a_missing_tls_ca_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(tmp_path)
    cfg["mqtt"]["tls"] = {"enabled": True, "ca_file": str(tmp_path / "ca.pem")}
    rc, text = _validate(write_config(tmp_path / "d.yaml", cfg), capsys)
    assert rc == 1 and f"mqtt.tls.ca_file {tmp_path / 'ca.pem'} does not exist" in text


@pytest.mark.skipif(is_installed("tensorrt"), reason="TensorRT is installed here")
def test_backend_tensorrt_without_tensorrt_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _cfg(tmp_path, backend={"type": "tensorrt"})
    rc, text = _validate(write_config(tmp_path / "d.yaml", cfg), capsys)
    assert rc == 1 and "needs the tensorrt package" in text and "drsn-edge[trt]" in text


@pytest.mark.parametrize(("how", "expected"), [
    ("classes", "4 classes, but the metadata names 5 classes"),
    ("golden", "golden gate failed"),
])
def test_a_model_that_does_not_match_its_metadata_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, expected: str
) -> None:
    cfg = _cfg(tmp_path, model=str(mismatched_model(tmp_path / "m.onnx", how)))
    rc, text = _validate(write_config(tmp_path / "d.yaml", cfg), capsys)
    assert rc == 1 and expected in text, text


def test_duplicate_yaml_keys_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path / "d.yaml", _cfg(tmp_path))
    path.write_text(path.read_text() + "logging:\n  level: DEBUG\n")  # a second top-level 'logging'
    rc, text = _validate(path, capsys)
    assert rc != 0 and "'logging' appears twice" in text


def test_a_good_config_still_passes_with_its_model_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, text = _validate(write_config(tmp_path / "d.yaml", _cfg(tmp_path)), capsys)
    assert rc == 0 and "OK" in text, text
