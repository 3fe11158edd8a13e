"""Every backend proves a model on its golden windows at load (defect 4 of issue 10).

A model whose graph disagrees with its metadata (3 outputs, 4 classes in the metadata) was
accepted and then failed every batch; ONNX Runtime never ran the golden windows the metadata
carries. Tiny real ONNX files here: the same MatMul graph with golden logits that it does or
does not reproduce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from runtime.artifact import METADATA_KEY, Golden, ModelMetadata
from runtime.backends import create_backend
from runtime.backends.golden import golden_gate
from runtime.errors import ModelFileError, ParityError
from tests.runtime.tiny_models import CLASSES, TinyModel, build_tiny_onnx, make_metadata

ONE_THREAD = {"intra_op_threads": 1}


def _windows(n: int = 12, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, 64)).astype(np.float32)


def with_golden(model: TinyModel, logits: np.ndarray, *, meta: ModelMetadata | None = None) -> Path:
    """Rewrite the file's metadata with golden windows and ``logits`` as their reference."""
    proto = onnx.load(str(model.path))
    stored = ModelMetadata.from_json(next(p.value for p in proto.metadata_props if p.key == METADATA_KEY))
    base = meta if meta is not None else stored
    doc = base.model_copy(update={"golden": Golden.from_arrays(_windows(), logits),
                                  "precision": stored.precision})
    del proto.metadata_props[:]
    helper.set_model_props(proto, {METADATA_KEY: doc.to_json()})
    onnx.save(proto, str(model.path))
    return model.path


def _load(path: Path) -> None:
    backend = create_backend(path, "onnxruntime", **ONE_THREAD)
    try:
        backend.load()
    finally:
        backend.close()


def test_a_model_that_reproduces_its_golden_windows_loads(tmp_path: Path) -> None:
    m = build_tiny_onnx(tmp_path / "good.onnx")
    path = with_golden(m, m.reference(_windows()).astype(np.float32))
    backend = create_backend(path, "onnxruntime", **ONE_THREAD)
    backend.load()
    report = golden_gate(backend)
    backend.close()
    assert report is not None and report.n == 12 and report.max_abs_diff < 1e-4


def test_other_weights_fail_the_gate_with_the_figures(tmp_path: Path) -> None:
    m = build_tiny_onnx(tmp_path / "retrained.onnx", seed=0)
    other = build_tiny_onnx(tmp_path / "other.onnx", seed=1)  # golden logits of another training run
    path = with_golden(m, other.reference(_windows()).astype(np.float32))
    with pytest.raises(ParityError) as info:
        _load(path)
    msg = str(info.value)
    assert "golden gate failed" in msg and "on 12 windows" in msg and "max |diff|" in msg
    assert "tolerance" in msg and "re-export" in msg


def test_three_outputs_against_four_classes_is_refused_before_serving(tmp_path: Path) -> None:
    """The issue's case: the graph outputs 3 classes, the metadata names 4."""
    m = build_tiny_onnx(tmp_path / "three.onnx", make_metadata(classes=CLASSES))
    four = make_metadata(classes=[*CLASSES, "ball"])
    path = with_golden(m, np.zeros((12, 4), np.float32), meta=four)
    with pytest.raises(ModelFileError, match=r"shape \['N', 3\], 3 classes, but the metadata names 4"):
        _load(path)


def test_an_fp16_model_is_judged_on_argmaxes_against_fp32_golden_logits(tmp_path: Path) -> None:
    m = build_tiny_onnx(tmp_path / "half.onnx", fp16=True)
    path = with_golden(m, m.reference(_windows()).astype(np.float32))
    _load(path)


def test_golden_windows_that_do_not_fit_the_metadata_are_a_model_file_error(tmp_path: Path) -> None:
    m = build_tiny_onnx(tmp_path / "edited.onnx")
    proto = onnx.load(str(m.path))
    meta = ModelMetadata.from_json(proto.metadata_props[0].value)
    golden = Golden.from_arrays(np.zeros((4, 1, 32), np.float32), np.zeros((4, 3), np.float32))
    del proto.metadata_props[:]
    helper.set_model_props(proto, {METADATA_KEY: meta.model_copy(update={"golden": golden}).to_json()})
    onnx.save(proto, str(m.path))
    with pytest.raises(ModelFileError, match="golden windows are"):
        _load(m.path)
