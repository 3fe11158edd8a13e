"""`drsn-edge export onnx|fp16` and `drsn-edge build-engine` end to end (TensorRT through its fake)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.cli import main
from runtime.artifact import read_onnx_metadata
from tests.fakes.fake_tensorrt import FakeTensorRT
from tests.support.model_files import ExportCache, windows_for


def _last_json(text: str) -> dict[str, object]:
    return json.loads(text.strip().splitlines()[-1])


def test_export_onnx_then_fp16(
    exports: ExportCache, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = exports.checkpoint("drsn_cw_mnist")
    out = tmp_path / "model.onnx"
    assert main(["export", "onnx", str(ckpt), "-o", str(out), "--golden", "4"]) == 0
    printed = _last_json(capsys.readouterr().out)
    assert printed["onnx"] == str(out) and float(printed["max_abs_diff"]) <= 1e-4  # type: ignore[arg-type]
    assert read_onnx_metadata(out).golden.shape[0] == 4  # type: ignore[union-attr]

    x, y = windows_for((1, 28, 28), 12, seed=4)
    npz = tmp_path / "eval.npz"
    np.savez(npz, x=x, y=y)
    assert main(["export", "fp16", str(out), "--windows", str(npz)]) == 0
    text = capsys.readouterr().out
    assert "argmax agreement" in text and "accuracy" in text
    fp16 = tmp_path / "model.fp16.onnx"
    assert _last_json(text)["n"] == 12 and read_onnx_metadata(fp16).precision == "fp16"


def test_export_errors_are_one_line_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x01\x02 not onnx")
    assert main(["export", "fp16", str(junk)]) == 2
    assert "error" in capsys.readouterr().err
    npz = tmp_path / "w.npz"
    np.savez(npz, windows_wrong_key=np.zeros(3))
    assert main(["export", "onnx", str(tmp_path / "none.ckpt"), "--windows", str(npz)]) == 2


@pytest.mark.fake_tensorrt
def test_build_engine_builds_once(
    make_fake_trt: Callable[[str], FakeTensorRT], model_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = make_fake_trt("10.13.0.35")
    args = ["build-engine", str(model_onnx), "--batch", "1,4,8", "--workspace-mb", "512"]
    assert main(args) == 0
    printed = _last_json(capsys.readouterr().out)
    assert printed["profile"] == [1, 4, 8] and printed["strongly_typed"] is True
    assert printed["engine"] == str(model_onnx.with_name("model.fp16.engine"))
    assert main(args) == 0 and len(fake.builds) == 1
    assert fake.builds[0].workspace_bytes == 512 << 20
    assert main([*args, "--force"]) == 0 and len(fake.builds) == 2


def test_build_engine_rejects_a_bad_profile(model_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build-engine", str(model_onnx), "--batch", "8,4,2"]) == 2
    assert "min,opt,max" in capsys.readouterr().err
