"""Backend selection, metadata reading and the ONNX Runtime backend on tiny real ONNX files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from runtime.artifact import EngineInfo, write_engine_file
from runtime.backends import (
    AutoBackendConfig,
    BackendConfig,
    OnnxRuntimeConfig,
    TensorRTConfig,
    create_backend,
    is_installed,
    open_model,
    resolve_kind,
)
from runtime.backends.onnxruntime import OnnxRuntimeBackend, select_providers
from runtime.errors import BackendUnavailableError, ConfigError, DataError, ModelFileError
from tests.runtime.tiny_models import TinyModel, build_tiny_onnx, make_metadata

ONE_THREAD = {"intra_op_threads": 1}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny_onnx(tmp_path_factory.mktemp("m") / "tiny.onnx")


@pytest.fixture(scope="module")
def tiny_fp16(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny_onnx(tmp_path_factory.mktemp("m16") / "tiny_fp16.onnx", fp16=True)


def _batch(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, 64)).astype(np.float32)


@pytest.mark.parametrize("n", [1, 7, 32])
def test_fp32_onnx_matches_reference(tiny: TinyModel, n: int) -> None:
    x = _batch(n)
    with create_backend(tiny.path, "onnxruntime", **ONE_THREAD) as backend:
        logits = backend.infer(x)
    assert logits.dtype == np.float32 and logits.shape == (n, 3)
    np.testing.assert_allclose(logits, tiny.reference(x), rtol=1e-4, atol=1e-5)


def test_fp16_onnx_takes_and_returns_float32(tiny_fp16: TinyModel) -> None:
    x = _batch(16)
    with create_backend(tiny_fp16.path, "onnxruntime", **ONE_THREAD) as backend:
        logits = backend.infer(x)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, tiny_fp16.reference(x), rtol=2e-2, atol=2e-2)
    assert not np.allclose(logits, tiny_fp16.reference(x), rtol=0, atol=1e-7), "FP16 math differs slightly"


def test_wrong_window_length_is_a_data_error(tiny: TinyModel) -> None:
    backend = create_backend(tiny.path, "onnxruntime", **ONE_THREAD)
    with backend, pytest.raises(DataError, match="64"):
        backend.infer(np.zeros((2, 1, 63), dtype=np.float32))


def test_open_model_reads_onnx_and_engine_headers(tiny: TinyModel, tmp_path: Path) -> None:
    assert open_model(tiny.path).classes == tiny.metadata.classes
    info = EngineInfo(
        onnx_sha256="0" * 64, tensorrt_version="10.3.0", gpu_name="Orin", compute_capability="8.7",
        precision="fp16", profile=(1, 16, 32),
    )
    engine = tmp_path / "tiny.engine"
    write_engine_file(engine, tiny.metadata, info, b"not-a-real-plan")
    meta = open_model(engine)
    assert meta.signal == tiny.metadata.signal and meta.healthy_class == "normal"


def test_open_model_rejects_unknown_suffix(tmp_path: Path) -> None:
    p = tmp_path / "model.pt"
    p.write_bytes(b"x")
    with pytest.raises(ModelFileError, match=r"\.pt"):
        open_model(p)


def test_auto_picks_by_suffix_and_installed_packages(tiny: TinyModel) -> None:
    expected = "tensorrt" if is_installed("tensorrt") else "onnxruntime"
    assert resolve_kind(tiny.path) == expected
    assert resolve_kind("model.engine") == "tensorrt"
    assert resolve_kind("model.plan") == "tensorrt"
    with pytest.raises(ModelFileError, match="backend"):
        resolve_kind("model.bin")


@pytest.mark.skipif(is_installed("tensorrt"), reason="tensorrt is installed here")
def test_engine_without_tensorrt_names_the_extra(tiny: TinyModel, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"drsn-edge\[trt\]"):
        create_backend(tmp_path / "x.engine")
    with pytest.raises(BackendUnavailableError, match=r"drsn-edge\[trt\]"):
        create_backend(tiny.path, "tensorrt")


def test_missing_onnxruntime_names_the_extra(tiny: TinyModel, monkeypatch: pytest.MonkeyPatch) -> None:
    # fake at the true boundary: make the onnxruntime package absent for this test
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendUnavailableError, match=r"drsn-edge\[ort\]"):
        create_backend(tiny.path, "onnxruntime")
    backend = OnnxRuntimeBackend(tiny.path, tiny.metadata)
    with pytest.raises(BackendUnavailableError, match=r"drsn-edge\[ort\]"):
        backend.load()


def test_onnxruntime_cannot_run_an_engine() -> None:
    with pytest.raises(ConfigError, match="tensorrt"):
        resolve_kind("model.engine", "onnxruntime")


def test_unknown_kind_and_bad_option_are_config_errors(tiny: TinyModel) -> None:
    with pytest.raises(ConfigError, match="openvino"):
        create_backend(tiny.path, "openvino")
    with pytest.raises(ConfigError, match="intra_op_threads"):
        create_backend(tiny.path, "onnxruntime", intra_op_threads=-1)
    with pytest.raises(ConfigError, match="not both"):
        create_backend(tiny.path, "onnxruntime", config=OnnxRuntimeConfig(), intra_op_threads=1)


def test_corrupt_onnx_file_names_the_file(tmp_path: Path, tiny: TinyModel) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(tiny.path.read_bytes()[:200] + b"\x00garbage" * 10)
    with pytest.raises(ModelFileError, match=r"broken\.onnx"):
        create_backend(bad, "onnxruntime")
    # the backend itself also reports it, when handed metadata from elsewhere
    with pytest.raises(ModelFileError, match=r"broken\.onnx"):
        OnnxRuntimeBackend(bad, tiny.metadata, OnnxRuntimeConfig(**ONE_THREAD)).load()


def test_onnx_without_metadata_is_rejected(tmp_path: Path) -> None:
    bare = build_tiny_onnx(tmp_path / "bare.onnx", with_metadata=False)
    with pytest.raises(ModelFileError, match="no drsn-edge metadata"):
        create_backend(bare.path, "onnxruntime")


def test_graph_not_matching_metadata_is_rejected(tmp_path: Path) -> None:
    m = build_tiny_onnx(tmp_path / "edited.onnx", make_metadata(window=64), graph_window=32)
    backend = create_backend(m.path, "onnxruntime", **ONE_THREAD)
    with pytest.raises(ModelFileError, match="re-export"):
        backend.load()


def test_providers_are_filtered_to_available_ones(tiny: TinyModel) -> None:
    assert select_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]
    with pytest.raises(ConfigError, match="available"):
        select_providers(["TensorrtExecutionProvider"], ["CPUExecutionProvider"])
    backend = create_backend(tiny.path, "onnxruntime", **ONE_THREAD)
    assert isinstance(backend, OnnxRuntimeBackend)
    with backend:
        assert "CPUExecutionProvider" in backend.providers


def test_backend_config_union_discriminates_on_type(tiny: TinyModel) -> None:
    adapter: TypeAdapter[object] = TypeAdapter(BackendConfig)
    ort_cfg = adapter.validate_python({"type": "onnxruntime", "intra_op_threads": 1})
    assert isinstance(ort_cfg, OnnxRuntimeConfig) and ort_cfg.intra_op_threads == 1
    auto = adapter.validate_python({"type": "auto", "onnxruntime": {"graph_optimization": "basic"}})
    assert isinstance(auto, AutoBackendConfig) and auto.onnxruntime.graph_optimization == "basic"
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "onnxruntime", "threads": 2})
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "cuda"})
    trt_cfg = adapter.validate_python({"type": "tensorrt", "batch": [1, 4, 16]})
    assert isinstance(trt_cfg, TensorRTConfig) and trt_cfg.batch == (1, 4, 16)
    with create_backend(tiny.path, config=auto) as backend:
        assert backend.name in ("onnxruntime", "tensorrt")


@pytest.mark.parametrize("cls", [OnnxRuntimeConfig, AutoBackendConfig])
def test_every_config_field_is_described(cls: type[OnnxRuntimeConfig]) -> None:
    for name, field in cls.model_fields.items():
        assert field.description, f"{cls.__name__}.{name} has no description"


PACKAGED_SIM = Path(__file__).resolve().parents[3] / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"


def test_one_call_returns_logits_and_the_golden_features() -> None:
    """The packaged model's features output comes back from the same call as its logits and
    reproduces the reference features stored at export."""
    meta = open_model(PACKAGED_SIM)
    assert meta.golden is not None
    x, ref_logits = meta.golden.arrays()
    ref_features = meta.golden.features()
    assert ref_features is not None
    with create_backend(PACKAGED_SIM, "onnxruntime", **ONE_THREAD) as backend:
        assert backend.has_features
        logits, features = backend.infer_outputs(x)
        plain = backend.infer(x)
    assert features is not None and features.dtype == np.float32
    assert features.shape == (len(x), ref_features.shape[1])
    np.testing.assert_allclose(features, ref_features, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(logits, plain)


def test_model_without_features_classifies_and_warns_once(
    tiny: TinyModel, caplog: pytest.LogCaptureFixture
) -> None:
    x = _batch(5)
    with (
        caplog.at_level("WARNING", logger="runtime.backends.base"),
        create_backend(tiny.path, "onnxruntime", **ONE_THREAD) as backend,
    ):
        first = backend.infer_outputs(x)
        second = backend.infer_outputs(x)
    assert not backend.has_features
    assert first.features is None and second.features is None
    np.testing.assert_allclose(first.logits, tiny.reference(x), rtol=1e-4, atol=1e-5)
    warnings = [r.getMessage() for r in caplog.records if "novelty scoring is off" in r.getMessage()]
    assert len(warnings) == 1 and tiny.path.name in warnings[0]
