"""The TensorRT backend's CUDA path on a real GPU: real buffers, copies and stream, a stand-in engine.

The engine is built by the recording fake's builder (the plan embeds the ONNX) through the
project's own ``engine_from_onnx``, including its post-build gate; the backend then allocates
device and pinned memory with cuda-python or pycuda, and the stand-in's ``execute_async_v3`` runs
the exported network with PyTorch on the bound device pointers and stream. Logits are compared
with ONNX Runtime on the CPU.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.artifact import read_onnx_metadata
from runtime.backends.cuda_buffers import load_cuda
from runtime.backends.tensorrt import ENGINE_TOLERANCES, TensorRTBackend, TensorRTConfig
from runtime.backends.tensorrt.build import engine_from_onnx
from runtime.errors import DataError, ParityError
from runtime.onnx_tools.ort_run import onnx_logits
from runtime.parity import check_parity
from tests.fakes.fake_cuda import FakeGpu
from tests.gpu.standin_tensorrt import StandinTensorRT, device_pointer_kind
from tests.support.model_files import make_checkpoint, windows_for

MODEL = "drsn_cw_s"
MakeStandin = Callable[..., StandinTensorRT]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A small 1-D DRSN-CW: its ONNX file and the checkpoint it came from."""
    from drsn_edge.training.checkpoint import build_model
    from export.onnx_export import onnx_from_checkpoint

    root = tmp_path_factory.mktemp("gpu-export")
    ckpt = make_checkpoint(root / f"{MODEL}.ckpt", MODEL)
    onnx_from_checkpoint(root / f"{MODEL}.ckpt", root / f"{MODEL}.onnx", build_model=build_model)
    return root / f"{MODEL}.onnx", ckpt


@pytest.fixture
def model_onnx(exported: tuple[Path, Any], tmp_path: Path) -> Path:
    """A private copy: engines and timing caches are written beside it."""
    dst = tmp_path / "model.onnx"
    dst.write_bytes(exported[0].read_bytes())
    return dst


@pytest.fixture
def make_standin(
    exported: tuple[Path, Any], cuda_device: Any, cuda_library: str, monkeypatch: pytest.MonkeyPatch
) -> MakeStandin:
    """Install the stand-in ``tensorrt`` of a version, running the exported network (or ``model``)."""
    ckpt = exported[1]
    device = load_cuda(0, cuda_library).device_info()  # the real GPU, read the way the backend reads it
    major, minor = (int(p) for p in device.compute_capability.split("."))
    gpu = FakeGpu(name=device.name, compute_capability=(major, minor))

    def install(version: str = "10.3.0.30", model: Any = None) -> StandinTensorRT:
        net = (model if model is not None else ckpt.build_model()).to(cuda_device).eval()
        standin = StandinTensorRT(version, gpu, net, len(ckpt.metadata.classes), cuda_device)
        monkeypatch.setitem(sys.modules, "tensorrt", standin.module)
        return standin

    return install


def _config(library: str, **kwargs: Any) -> TensorRTConfig:
    return TensorRTConfig(cuda_library=library, **kwargs)  # type: ignore[arg-type]


def _windows(n: int, seed: int = 3) -> np.ndarray:
    return windows_for((1, 1024), n, seed)[0]


def _matches(reference: np.ndarray, got: np.ndarray, precision: str) -> None:
    """The engine gate's own rule: within the precision's tolerance, no argmax flip beyond a near-tie."""
    atol, rtol = ENGINE_TOLERANCES[precision]
    check_parity(reference, got, atol=atol, rtol=rtol, exact_argmax=False, reference_name="onnxruntime cpu",
                 candidate_name=f"tensorrt stand-in {precision}")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_partial_and_full_batches_match_onnx_runtime(
    precision: str, make_standin: MakeStandin, model_onnx: Path, cuda_library: str
) -> None:
    standin = make_standin()
    engine = engine_from_onnx(model_onnx, precision=precision, batch=(1, 4, 8))  # type: ignore[arg-type]
    meta = read_onnx_metadata(model_onnx)
    x = _windows(8)
    reference = onnx_logits(model_onnx, x)
    with TensorRTBackend(engine, meta, _config(cuda_library)) as backend:
        assert backend.max_batch == 8
        partial, full = backend.infer(x[:3]), backend.infer(x)
        single = np.concatenate([backend.infer(x[i : i + 1]) for i in range(len(x))])
    _matches(reference[:3], partial, precision)
    _matches(reference, full, precision)
    _matches(reference, single, precision)
    _matches(full[:3], partial, precision)  # a partial batch reads only its own rows
    batches = [e["batch"] for e in standin.executions]
    assert batches[-10:] == [3, 8, *[1] * 8]
    assert len({e["stream"] for e in standin.executions[-10:]}) == 1, "one stream for every call"


def test_an_oversize_batch_is_refused_and_the_backend_still_serves(
    make_standin: MakeStandin, model_onnx: Path, cuda_library: str
) -> None:
    make_standin()
    engine = engine_from_onnx(model_onnx, precision="fp32", batch=(1, 2, 4))
    meta = read_onnx_metadata(model_onnx)
    x = _windows(5)
    with TensorRTBackend(engine, meta, _config(cuda_library)) as backend:
        with pytest.raises(DataError, match="maximum of 4"):
            backend.infer(x)
        got = backend.infer(x[:4])
    _matches(onnx_logits(model_onnx, x[:4]), got, "fp32")


def test_the_golden_gate_passes_the_right_engine_and_refuses_a_wrong_one(
    make_standin: MakeStandin, model_onnx: Path, cuda_library: str, exported: tuple[Path, Any]
) -> None:
    make_standin()
    engine = engine_from_onnx(model_onnx, precision="fp16", batch=(1, 8, 16))
    meta = read_onnx_metadata(model_onnx)
    assert meta.golden is not None
    with TensorRTBackend(engine, meta, _config(cuda_library)) as backend:  # golden_check="error"
        backend.infer(_windows(2))
    other = make_checkpoint(engine.parent / "other.ckpt", MODEL, seed=7).build_model()
    make_standin(model=other)  # same plan, other weights: the engine no longer computes this model
    with pytest.raises(ParityError, match="golden windows"):
        TensorRTBackend(engine, meta, _config(cuda_library)).load()


def test_every_call_runs_on_the_calling_thread_and_close_frees_device_memory(
    make_standin: MakeStandin, model_onnx: Path, cuda_library: str
) -> None:
    standin = make_standin("11.0.0.114")  # strongly typed: the engine parses the FP16 ONNX
    engine = engine_from_onnx(model_onnx, precision="fp16", batch=(1, 4, 8))
    meta = read_onnx_metadata(model_onnx)
    backend = TensorRTBackend(engine, meta, _config(cuda_library))
    backend.load()
    got = backend.infer(_windows(4))
    pointers = [buf.device for buf in backend._buffers]
    assert all(device_pointer_kind(p) in (None, "device") for p in pointers)
    backend.close()
    kinds = [device_pointer_kind(p) for p in pointers]  # before anything else could reuse the addresses
    _matches(onnx_logits(model_onnx, _windows(4)), got, "fp16")
    assert {e["thread"] for e in standin.executions} == {threading.get_ident()}
    assert all(k in (None, "unregistered") for k in kinds), f"close() left device memory allocated: {kinds}"
