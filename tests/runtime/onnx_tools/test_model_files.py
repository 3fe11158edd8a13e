"""Corrupt, foreign and truncated model files: each is a ModelFileError that names the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from runtime.backends.tensorrt.build import engine_from_onnx
from runtime.errors import ModelFileError
from runtime.onnx_tools.fp16 import fp16_from_onnx
from runtime.onnx_tools.metadata_io import load_onnx, read_metadata, write_metadata_file
from tests.fakes.fake_tensorrt import FakeTensorRT
from tests.support.model_files import ExportCache


def _random_bytes(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _without_metadata(path: Path, source: Path) -> Path:
    model = onnx.load(str(source))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    return path


def _truncated(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def bad_files(exports: ExportCache, tmp_path: Path) -> dict[str, Path]:
    src = exports.onnx("drsn_cs_mnist")
    return {
        "random": _random_bytes(tmp_path / "random.onnx"),
        "foreign": _without_metadata(tmp_path / "foreign.onnx", src),
        "truncated": _truncated(tmp_path / "truncated.onnx", src),
        "missing": tmp_path / "missing.onnx",
    }


EXPECTED = {
    "random": "not a readable ONNX file|no drsn-edge metadata",
    "foreign": "no drsn-edge metadata.*export",
    "truncated": "not a readable ONNX file.*re-export",
    "missing": "does not exist",
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_bad_onnx_files_are_refused_by_readers_and_fp16(
    kind: str, bad_files: dict[str, Path], tmp_path: Path
) -> None:
    path = bad_files[kind]
    with pytest.raises(ModelFileError, match=EXPECTED[kind]):
        read_metadata(path)
    with pytest.raises(ModelFileError, match=EXPECTED[kind]):
        fp16_from_onnx(path, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.fake_tensorrt
@pytest.mark.parametrize("kind", list(EXPECTED))
def test_bad_onnx_files_are_refused_by_the_engine_builder(
    kind: str, bad_files: dict[str, Path], make_fake_trt: Callable[[str], FakeTensorRT]
) -> None:
    fake = make_fake_trt("10.3.0.30")
    with pytest.raises(ModelFileError, match=EXPECTED[kind]):
        engine_from_onnx(bad_files[kind])
    assert fake.builds == []


def test_load_onnx_refuses_a_graphless_protobuf(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    onnx.save(onnx.ModelProto(), str(path))
    with pytest.raises(ModelFileError, match="no graph"):
        load_onnx(path)


def test_invalid_metadata_is_reported_with_its_field(exports: ExportCache, tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(exports.onnx("drsn_cs_mnist").read_bytes())
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "drsn_edge":
            prop.value = prop.value.replace('"healthy_class": "normal"', '"healthy_class": "broken"')
    onnx.save(model, str(path))
    with pytest.raises(ModelFileError, match=r"healthy_class.*re-export"):
        read_metadata(path)


def test_metadata_can_be_replaced_in_place(exports: ExportCache, tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(exports.onnx("drsn_cs_mnist").read_bytes())
    meta = read_metadata(path)
    written = write_metadata_file(path, meta, training={"note": "relabelled"})
    again = read_metadata(path)
    assert again == written and again.training == {"note": "relabelled"} and again.golden == meta.golden
    assert [p.key for p in onnx.load(str(path)).metadata_props].count("drsn_edge") == 1
