"""The TensorRT runtime backend through the fake ``tensorrt`` and the fake CUDA layers."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from runtime.artifact import read_engine_file, read_onnx_metadata
from runtime.backends.tensorrt import TensorRTBackend, TensorRTConfig
from runtime.backends.tensorrt.build import engine_from_onnx
from runtime.errors import BackendUnavailableError, DataError, ModelFileError, ParityError
from runtime.onnx_tools.ort_run import onnx_logits
from tests.fakes.fake_cuda import FakeGpu, hide_cuda_python_modules, install_fake_pycuda
from tests.fakes.fake_tensorrt import FakeTensorRT
from tests.support.model_files import ExportCache, windows_for

pytestmark = pytest.mark.fake_tensorrt
MakeTrt = Callable[[str], FakeTensorRT]


def _windows(n: int, seed: int = 5) -> np.ndarray:
    return windows_for((1, 28, 28), n, seed)[0]


@pytest.mark.parametrize("library", ["cuda-python", "pycuda"])
def test_engine_runs_with_the_tensor_api_and_frees_everything(
    library: str, make_fake_trt: MakeTrt, fake_gpu: FakeGpu, model_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake_trt("10.3.0.30")
    if library == "pycuda":
        install_fake_pycuda(monkeypatch, fake_gpu)
    engine = engine_from_onnx(model_onnx, precision="fp32", batch=(1, 4, 8))
    fake.calls.clear()
    fake_gpu.calls.clear()
    x = _windows(5)
    backend = TensorRTBackend(engine, read_onnx_metadata(model_onnx), TensorRTConfig(cuda_library=library))
    with backend:
        logits = backend.infer(x)
        assert backend.max_batch == 8
    np.testing.assert_allclose(logits, onnx_logits(model_onnx, x), atol=1e-5)
    # one address per I/O tensor: input, logits and features (every output must be bound)
    assert fake.calls.count("set_tensor_address") == 3 and fake.calls.count("create_execution_context") == 1
    i = len(fake.calls) - 1 - fake.calls[::-1].index("execute_async_v3")
    assert fake.calls[i - 1] == "set_input_shape" and fake.executions[-1]["batch"] == 5
    copies = [c for c in fake_gpu.call_names() if "cudaMemcpyAsync" in c or "memcpy_" in c]
    assert any("HostToDevice" in c or "htod" in c for c in copies) and any(
        "ToHost" in c or "dtoh" in c for c in copies
    )
    assert not fake_gpu.device_allocs and not fake_gpu.host_allocs, (
        "close() must free device and pinned memory"
    )
    if library == "cuda-python":
        assert not fake_gpu.streams
    else:
        assert "Context.push" in fake_gpu.call_names() and "cudaMalloc" not in fake_gpu.call_names()


def test_an_onnx_model_is_built_once_then_loaded_from_the_cache(
    make_fake_trt: MakeTrt, model_onnx: Path
) -> None:
    fake = make_fake_trt("11.0.0.114")
    meta = read_onnx_metadata(model_onnx)
    x = _windows(3)
    for _ in range(2):
        with TensorRTBackend(model_onnx, meta) as backend:
            out = backend.infer(x)
    assert len(fake.builds) == 1 and backend.engine_path == model_onnx.with_name("model.fp16.engine")
    np.testing.assert_allclose(out, onnx_logits(model_onnx.with_name("model.fp16.onnx"), x), atol=1e-5)


def test_batches_beyond_the_profile_are_refused(make_fake_trt: MakeTrt, model_onnx: Path) -> None:
    make_fake_trt("10.3.0.30")
    config = TensorRTConfig(batch=(1, 2, 4))
    with TensorRTBackend(model_onnx, read_onnx_metadata(model_onnx), config) as backend:
        assert backend.infer(_windows(4)).shape == (4, 4)
        with pytest.raises(DataError, match="maximum of 4"):
            backend.infer(_windows(5))


def test_an_engine_from_another_tensorrt_is_refused_or_rebuilt(
    make_fake_trt: MakeTrt, model_onnx: Path
) -> None:
    make_fake_trt("10.3.0.30")
    engine = engine_from_onnx(model_onnx)
    meta = read_onnx_metadata(model_onnx)
    upgraded = make_fake_trt("10.13.0.35")
    with pytest.raises(ModelFileError, match=r"built for TensorRT 10.3.0.30.*rebuild"):
        TensorRTBackend(engine, meta).load()
    with TensorRTBackend(model_onnx, meta) as backend:  # configured with the ONNX file: rebuilt, not crashed
        backend.infer(_windows(2))
    assert len(upgraded.builds) == 1


def test_damaged_or_foreign_engines_are_model_file_errors(make_fake_trt: MakeTrt, model_onnx: Path) -> None:
    make_fake_trt("10.3.0.30")
    engine = engine_from_onnx(model_onnx)
    meta = read_onnx_metadata(model_onnx)
    data = engine.read_bytes()
    header_end = len(data) - len(read_engine_file(engine)[2])
    cases = {
        "could not deserialize": data[: header_end + 40],  # plan cut short
        "truncated inside its header": data[:30],
        "not a drsn-edge engine": data[header_end:],  # a bare plan
    }
    for message, content in cases.items():
        engine.write_bytes(content)
        with pytest.raises(ModelFileError, match=message):
            TensorRTBackend(engine, meta).load()


def test_a_truncated_cached_engine_is_rebuilt_when_the_config_names_the_onnx(
    make_fake_trt: MakeTrt, model_onnx: Path
) -> None:
    fake = make_fake_trt("10.3.0.30")
    meta = read_onnx_metadata(model_onnx)
    with TensorRTBackend(model_onnx, meta) as backend:
        engine = backend.engine_path
    assert engine is not None
    engine.write_bytes(engine.read_bytes()[:-10])
    with TensorRTBackend(model_onnx, meta) as backend:
        backend.infer(_windows(1))
    assert len(fake.builds) == 2


def test_engine_of_a_different_model_is_refused(
    make_fake_trt: MakeTrt, model_onnx: Path, exports: ExportCache
) -> None:
    make_fake_trt("10.3.0.30")
    engine = engine_from_onnx(model_onnx)
    other = read_onnx_metadata(exports.onnx("drsn_cw_mnist"))
    with pytest.raises(ModelFileError, match=r"holds model drsn_cs_mnist.*drsn_cw_mnist"):
        TensorRTBackend(engine, other).load()


def test_golden_check_refuses_a_wrong_engine(
    make_fake_trt: MakeTrt, fake_gpu: FakeGpu, model_onnx: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake_trt("10.3.0.30")
    engine = engine_from_onnx(model_onnx)
    fake.corrupt_outputs = True
    meta = read_onnx_metadata(model_onnx)
    with pytest.raises(ParityError, match="golden windows"):
        TensorRTBackend(engine, meta).load()
    assert not fake_gpu.device_allocs, "a refused engine must not leak its buffers"
    with caplog.at_level(logging.WARNING), TensorRTBackend(engine, meta, TensorRTConfig(golden_check="warn")):
        pass
    assert "golden windows" in caplog.text


def test_inference_on_another_thread_makes_the_device_current_there(
    make_fake_trt: MakeTrt, fake_gpu: FakeGpu, model_onnx: Path
) -> None:
    fake = make_fake_trt("10.3.0.30")
    backend = TensorRTBackend(engine_from_onnx(model_onnx), read_onnx_metadata(model_onnx))
    backend.load()
    result: dict[str, np.ndarray] = {}
    worker = threading.Thread(target=lambda: result.setdefault("y", backend.infer(_windows(2))))
    worker.start()
    worker.join()
    backend.close()
    assert result["y"].shape == (2, 4) and fake.executions[-1]["thread"] == worker.ident
    assert ("cudaSetDevice", worker.ident) in fake_gpu.calls


def test_missing_packages_name_what_to_install(monkeypatch: pytest.MonkeyPatch, model_onnx: Path) -> None:
    meta = read_onnx_metadata(model_onnx)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailableError, match=r"drsn-edge\[trt\]"):
        TensorRTBackend(model_onnx, meta).load()


def test_missing_cuda_bindings_name_what_to_install(
    make_fake_trt: MakeTrt, model_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fake_trt("10.3.0.30")
    engine = engine_from_onnx(model_onnx)
    hide_cuda_python_modules(monkeypatch)
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    with pytest.raises(BackendUnavailableError, match="cuda-python or pycuda"):
        TensorRTBackend(engine, read_onnx_metadata(model_onnx)).load()


def test_config_is_strict_and_documented() -> None:
    assert TensorRTConfig().batch == (1, 8, 32)
    with pytest.raises(ValidationError, match="min <= opt <= max"):
        TensorRTConfig(batch=(8, 4, 32))
    with pytest.raises(ValidationError):
        TensorRTConfig.model_validate({"type": "tensorrt", "engine_pth": "x"})
    assert all(f.description for f in TensorRTConfig.model_fields.values())
