"""The packaged demo model describes itself completely and its golden windows reproduce in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drsn_edge.assets import packaged_model
from runtime.backends import create_backend, open_model
from runtime.windowing import signal_spec


@pytest.fixture(scope="module")
def model_path() -> Path:
    try:
        return packaged_model()
    except Exception as exc:  # ModelFileError: not packaged in this checkout
        pytest.skip(str(exc))


def test_metadata_is_complete(model_path: Path) -> None:
    meta = open_model(model_path)
    assert sorted(meta.classes) == ["ball", "inner_race", "normal", "outer_race"]
    assert meta.healthy_class == "normal"
    spec = signal_spec(meta)
    assert spec.sample_rate == 12000.0 and spec.window == 2048 and 0 < spec.hop <= spec.window
    assert meta.input.shape == [-1, 1, 2048] and meta.input.layout == "NCW"
    assert meta.normalization.kind == "zscore"
    assert meta.model.name == "drsn_cw_paper" and meta.model.version.startswith("sim-")
    assert len(meta.weights_sha256) == 64 and meta.precision == "fp32"
    assert meta.golden is not None and meta.golden.shape[0] >= 4 and meta.golden.num_classes == 4
    assert sorted(meta.training["data"]["classes"]) == sorted(meta.classes)
    assert meta.training["metrics"]["test_acc"] > 0.95
    assert meta.export["parity"]["argmax_agreement"] == 1.0


def test_golden_windows_reproduce_their_logits_in_onnx_runtime(model_path: Path) -> None:
    meta = open_model(model_path)
    assert meta.golden is not None
    x, ref = meta.golden.arrays()
    with create_backend(model_path, "onnxruntime", providers=["CPUExecutionProvider"],
                        intra_op_threads=1) as backend:
        got = backend.infer(x)
        one_by_one = np.concatenate([backend.infer(x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(one_by_one, ref, atol=1e-4, rtol=0)
    assert (got.argmax(1) == ref.argmax(1)).all()


def test_golden_windows_cover_several_classes(model_path: Path) -> None:
    meta = open_model(model_path)
    assert meta.golden is not None
    _, ref = meta.golden.arrays()
    assert len(set(ref.argmax(1).tolist())) >= 2
