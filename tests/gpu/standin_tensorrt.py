"""A STAND-IN for the ``tensorrt`` module that computes on a real GPU with PyTorch.

TensorRT cannot be installed on the machines these tests run on, but a GPU with PyTorch and
cuda-python (or pycuda) sometimes is. This stand-in reuses the recording fake
(:mod:`tests.fakes.fake_tensorrt`: its builder, parser, profiles, plan format and version
rules) and replaces only the part that touches memory: the execution context. Its
``execute_async_v3`` wraps the device pointers the backend bound with ``set_tensor_address`` in
``__cuda_array_interface__`` views, runs the model with PyTorch on exactly the CUDA stream the
backend passed, and writes the logits into the bound output memory. So the backend's real CUDA
code (``runtime/backends/cuda_buffers.py``: ``cudaMalloc``, pinned host memory, async copies on
one stream, synchronisation) moves real bytes on a real device, and a missing synchronisation or
a host pointer handed over as a device pointer shows up as wrong logits or a refused call.

What runs is the PyTorch module the test hands over (the network the engine's ONNX was exported
from), not the ONNX in the plan: a stand-in, not a TensorRT. An FP16 plan runs under FP16
autocast, as a weakly typed TensorRT FP16 engine would pick FP16 kernels.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tests.fakes.fake_cuda import FakeContractError, FakeGpu
from tests.fakes.fake_tensorrt import FakeEngine, FakeExecutionContext, FakeTensorRT, _FakeRuntime, nptype

#: numpy dtype -> the typestr of the CUDA array interface
_TYPESTR = {np.dtype(np.float32): "<f4", np.dtype(np.float16): "<f2", np.dtype(np.int32): "<i4"}


class DeviceView:
    """A device pointer described by the CUDA array interface (v3), so ``torch.as_tensor`` can wrap it
    without a copy. ``stream: None`` tells the consumer no synchronisation is needed: the stand-in
    orders its work on the stream the backend passed to ``execute_async_v3``."""

    def __init__(self, ptr: int, shape: tuple[int, ...], dtype: np.dtype[Any], *, readonly: bool) -> None:
        self.__cuda_array_interface__ = {
            "shape": tuple(int(d) for d in shape),
            "typestr": _TYPESTR[np.dtype(dtype)],
            "data": (int(ptr), readonly),
            "version": 3,
            "strides": None,
            "stream": None,
        }


def device_pointer_kind(ptr: int) -> str | None:
    """``device``, ``host``, ``managed`` or ``unregistered`` per cuda-python; None without cuda-python."""
    try:
        from cuda.bindings import runtime as rt
    except ImportError:
        try:
            from cuda import cudart as rt
        except ImportError:
            return None
    err, attrs = rt.cudaPointerGetAttributes(ptr)
    if err != rt.cudaError_t.cudaSuccess:
        return "unregistered"
    kinds = {
        rt.cudaMemoryType.cudaMemoryTypeDevice: "device",
        rt.cudaMemoryType.cudaMemoryTypeHost: "host",
        rt.cudaMemoryType.cudaMemoryTypeManaged: "managed",
    }
    return kinds.get(attrs.type, "unregistered")


class StandinExecutionContext(FakeExecutionContext):
    """The fake's context with real device memory: addresses must be device pointers, execution is torch."""

    engine: StandinEngine

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        fake = self.engine.fake
        fake.calls.append("set_tensor_address")
        if name not in self.engine.io:
            raise FakeContractError(f"set_tensor_address on unknown tensor {name!r}")
        if not isinstance(ptr, int):
            raise FakeContractError(
                f"set_tensor_address needs an int device pointer, got {type(ptr).__name__}"
            )
        kind = device_pointer_kind(ptr)
        if kind not in (None, "device"):
            raise FakeContractError(
                f"set_tensor_address({name!r}) got a {kind} pointer {ptr:#x}, not device memory"
            )
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        import torch

        fake, engine = self.engine.fake, self.engine
        fake.calls.append("execute_async_v3")
        if not isinstance(stream_handle, int) or stream_handle == 0:
            raise FakeContractError(
                f"execute_async_v3 needs the handle (int) of a created CUDA stream, got {stream_handle!r}"
            )
        (name,) = engine.input_names
        out_name = engine.logits_name()
        missing = [n for n in (name, out_name) if n not in self.addresses] + (
            [] if name in self.shapes else [f"{name} (shape)"]
        )
        if missing:
            raise FakeContractError(f"execute_async_v3 before shapes/addresses were set for {missing}")
        shape = self.shapes[name]
        in_dtype = np.dtype(nptype(engine.io[name]["dtype"]))
        x = torch.as_tensor(
            DeviceView(self.addresses[name], shape, in_dtype, readonly=True), device=fake.torch_device
        )
        out_dtype = np.dtype(nptype(engine.io[out_name]["dtype"]))
        out = torch.as_tensor(
            DeviceView(self.addresses[out_name], (shape[0], fake.num_classes), out_dtype, readonly=False),
            device=fake.torch_device,
        )
        stream = torch.cuda.ExternalStream(stream_handle, device=fake.torch_device)
        with torch.cuda.stream(stream), torch.inference_mode():
            logits = fake.run_model(x, half=engine.doc["precision"] == "fp16")
            out.copy_(-logits if fake.corrupt_outputs else logits)
        fake.executions.append({"batch": shape[0], "thread": threading.get_ident(), "stream": stream_handle})
        return True


class StandinEngine(FakeEngine):
    fake: StandinTensorRT

    def logits_name(self) -> str:
        return "logits" if "logits" in self.output_names else self.output_names[0]

    def create_execution_context(self) -> StandinExecutionContext:
        self.fake.calls.append("create_execution_context")
        return StandinExecutionContext(self)


class _StandinRuntime(_FakeRuntime):
    fake: StandinTensorRT

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> StandinEngine | None:
        engine = super().deserialize_cuda_engine(serialized_engine)
        return None if engine is None else StandinEngine(self.fake, engine.doc)


class StandinTensorRT(FakeTensorRT):
    """The fake module of ``version`` whose engines run ``model`` (a torch module) on ``device``.

    ``gpu`` only names the device the plans are built for (it must be the real GPU's name, as the
    backend reads that from CUDA); no fake memory is used.
    """

    def __init__(self, version: str, gpu: FakeGpu, model: Any, num_classes: int, device: Any) -> None:
        super().__init__(version, gpu)
        self.model, self.num_classes, self.torch_device = model, num_classes, device
        self.module.Runtime = lambda logger: _StandinRuntime(self)  # type: ignore[attr-defined]

    def run_model(self, x: Any, *, half: bool) -> Any:
        import torch

        with torch.autocast("cuda", dtype=torch.float16, enabled=half):
            y = self.model(x.float())
        logits = y[0] if isinstance(y, tuple | list) else y
        return logits.float()
