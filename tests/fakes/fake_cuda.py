"""A FAKE GPU behind fake ``cuda.bindings.runtime`` (cuda-python) and fake ``pycuda.driver`` modules.

"Device memory" is ordinary host memory (ctypes buffers), so copies really move bytes and the
fake TensorRT engine can read its input from, and write its output to, the addresses it was
given. The fake keeps the rules the real libraries enforce or that this project relies on:

* device pointers must come from the fake's allocator (a host pointer handed to TensorRT is a
  classic bug that only crashes on a real GPU);
* pycuda calls need a pushed context on the calling thread;
* every call is recorded with its thread, so tests can check that GPU work happens on the
  thread that calls ``infer`` with the device made current there;
* live allocations and streams are tracked, so tests can check that ``close`` frees them.
"""

# ruff: noqa: N802, N815 - the fake keeps cuda-python's own camelCase names
from __future__ import annotations

import ctypes
import enum
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest


class FakeContractError(AssertionError):
    """The code under test used a fake external API in a way the real one would reject."""


@dataclass
class FakeGpu:
    """State shared by the fake CUDA faces and the fake TensorRT: memory, streams, call log."""

    name: str = "NVIDIA Jetson Orin (fake)"
    compute_capability: tuple[int, int] = (8, 7)
    device_count: int = 1
    calls: list[tuple[str, int]] = field(default_factory=list)
    device_allocs: dict[int, ctypes.Array[ctypes.c_char]] = field(default_factory=dict)
    host_allocs: dict[int, ctypes.Array[ctypes.c_char]] = field(default_factory=dict)
    streams: set[int] = field(default_factory=set)
    current: dict[int, int] = field(default_factory=dict)  # thread -> device set by cudaSetDevice
    context_stack: dict[int, list[int]] = field(default_factory=dict)  # pycuda, per thread
    _next_stream: int = 0x5000

    def record(self, call: str) -> None:
        self.calls.append((call, threading.get_ident()))

    def call_names(self) -> list[str]:
        return [c for c, _ in self.calls]

    def alloc(self, nbytes: int, *, host: bool = False) -> int:
        if nbytes <= 0:
            raise FakeContractError(f"allocation of {nbytes} bytes")
        buf = ctypes.create_string_buffer(nbytes)
        ptr = ctypes.addressof(buf)
        (self.host_allocs if host else self.device_allocs)[ptr] = buf
        return ptr

    def release(self, ptr: int, *, host: bool = False) -> None:
        pool = self.host_allocs if host else self.device_allocs
        if ptr not in pool:
            raise FakeContractError(
                f"free of {ptr:#x}, which is not a live {'host' if host else 'device'} allocation"
            )
        del pool[ptr]

    def device_region(self, ptr: int, nbytes: int) -> None:
        """Raise unless [ptr, ptr + nbytes) lies inside one live device allocation."""
        for base, buf in self.device_allocs.items():
            if base <= ptr and ptr + nbytes <= base + ctypes.sizeof(buf):
                return
        raise FakeContractError(f"{nbytes} bytes at {ptr:#x} are not inside a device allocation")

    def new_stream(self) -> int:
        self._next_stream += 1
        self.streams.add(self._next_stream)
        return self._next_stream

    def read(self, ptr: int, nbytes: int) -> bytes:
        self.device_region(ptr, nbytes)
        return ctypes.string_at(ptr, nbytes)

    def write(self, ptr: int, data: bytes) -> None:
        self.device_region(ptr, len(data))
        ctypes.memmove(ptr, data, len(data))

    def device_made_current_on_this_thread(self) -> bool:
        tid = threading.get_ident()
        return tid in self.current or bool(self.context_stack.get(tid))


# --------------------------------------------------------------------------- cuda-python face


class cudaError_t(enum.IntEnum):  # noqa: N801
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInvalidDevice = 101
    cudaErrorInvalidResourceHandle = 400


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3


class cudaStream_t:  # noqa: N801
    def __init__(self, handle: int) -> None:
        self._handle = handle

    def __int__(self) -> int:
        return self._handle


@dataclass
class _Props:
    name: bytes
    major: int
    minor: int


def make_cuda_python(gpu: FakeGpu) -> types.ModuleType:
    """A fake ``cuda.bindings.runtime``: functions return ``(cudaError_t, *values)`` like the real one."""
    rt = types.ModuleType("cuda.bindings.runtime")
    ok = cudaError_t.cudaSuccess
    rt.cudaError_t, rt.cudaMemcpyKind, rt.cudaStream_t = cudaError_t, cudaMemcpyKind, cudaStream_t

    def cudaSetDevice(device: int) -> tuple[Any, ...]:
        gpu.record("cudaSetDevice")
        if not 0 <= device < gpu.device_count:
            return (cudaError_t.cudaErrorInvalidDevice,)
        gpu.current[threading.get_ident()] = device
        return (ok,)

    def cudaGetDeviceProperties(device: int) -> tuple[Any, ...]:
        gpu.record("cudaGetDeviceProperties")
        if not 0 <= device < gpu.device_count:
            return (cudaError_t.cudaErrorInvalidDevice, None)
        name = gpu.name.encode().ljust(256, b"\x00")
        return (ok, _Props(name, *gpu.compute_capability))

    def cudaMalloc(nbytes: int) -> tuple[Any, ...]:
        gpu.record("cudaMalloc")
        return (ok, gpu.alloc(nbytes))

    def cudaFree(ptr: int) -> tuple[Any, ...]:
        gpu.record("cudaFree")
        gpu.release(int(ptr))
        return (ok,)

    def cudaMallocHost(nbytes: int) -> tuple[Any, ...]:
        gpu.record("cudaMallocHost")
        return (ok, gpu.alloc(nbytes, host=True))

    def cudaFreeHost(ptr: int) -> tuple[Any, ...]:
        gpu.record("cudaFreeHost")
        gpu.release(int(ptr), host=True)
        return (ok,)

    def cudaStreamCreate() -> tuple[Any, ...]:
        gpu.record("cudaStreamCreate")
        return (ok, cudaStream_t(gpu.new_stream()))

    def cudaStreamDestroy(stream: cudaStream_t) -> tuple[Any, ...]:
        gpu.record("cudaStreamDestroy")
        if int(stream) not in gpu.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        gpu.streams.discard(int(stream))
        return (ok,)

    def cudaMemcpyAsync(
        dst: int, src: int, count: int, kind: cudaMemcpyKind, stream: cudaStream_t
    ) -> tuple[Any, ...]:
        gpu.record(f"cudaMemcpyAsync:{cudaMemcpyKind(kind).name}")
        if int(stream) not in gpu.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            gpu.device_region(int(dst), count)
        elif kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
            gpu.device_region(int(src), count)
        else:
            raise FakeContractError(f"unexpected copy kind {kind!r}")
        ctypes.memmove(int(dst), int(src), count)
        return (ok,)

    def cudaStreamSynchronize(stream: cudaStream_t) -> tuple[Any, ...]:
        gpu.record("cudaStreamSynchronize")
        return (ok,) if int(stream) in gpu.streams else (cudaError_t.cudaErrorInvalidResourceHandle,)

    for fn in (
        cudaSetDevice,
        cudaGetDeviceProperties,
        cudaMalloc,
        cudaFree,
        cudaMallocHost,
        cudaFreeHost,
        cudaStreamCreate,
        cudaStreamDestroy,
        cudaMemcpyAsync,
        cudaStreamSynchronize,
    ):
        setattr(rt, fn.__name__, fn)
    return rt


def install_fake_cuda_python(monkeypatch: pytest.MonkeyPatch, gpu: FakeGpu) -> types.ModuleType:
    """Make ``from cuda.bindings import runtime`` return the fake for this test."""
    rt = make_cuda_python(gpu)
    cuda_pkg, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda_pkg.__path__, bindings.__path__ = [], []  # type: ignore[attr-defined]
    cuda_pkg.bindings, bindings.runtime = bindings, rt  # type: ignore[attr-defined]
    for name, module in (("cuda", cuda_pkg), ("cuda.bindings", bindings), ("cuda.bindings.runtime", rt)):
        monkeypatch.setitem(sys.modules, name, module)
    return rt


# --------------------------------------------------------------------------- pycuda face


def make_pycuda_driver(gpu: FakeGpu) -> types.ModuleType:
    """A fake ``pycuda.driver`` with the calls :class:`runtime.backends.cuda_buffers.PycudaApi` makes."""
    drv = types.ModuleType("pycuda.driver")

    def _need_context(what: str) -> None:
        if not gpu.context_stack.get(threading.get_ident()):
            raise FakeContractError(f"pycuda {what} without an active context on this thread (push it first)")

    class DeviceAllocation:
        def __init__(self, nbytes: int) -> None:
            self.ptr = gpu.alloc(nbytes)

        def __int__(self) -> int:
            return self.ptr

        def free(self) -> None:
            gpu.record("mem_free")
            gpu.release(self.ptr)

    class Context:
        def __init__(self, device: int) -> None:
            self.device = device

        def push(self) -> None:
            gpu.record("Context.push")
            gpu.context_stack.setdefault(threading.get_ident(), []).append(self.device)

        @staticmethod
        def pop() -> None:
            gpu.record("Context.pop")
            stack = gpu.context_stack.get(threading.get_ident())
            if not stack:
                raise FakeContractError("Context.pop with no pushed context")
            stack.pop()

    class Device:
        def __init__(self, ordinal: int) -> None:
            if not 0 <= ordinal < gpu.device_count:
                raise FakeContractError(f"no CUDA device {ordinal}")
            self.ordinal = ordinal

        def name(self) -> str:
            return gpu.name

        def compute_capability(self) -> tuple[int, int]:
            return gpu.compute_capability

        def retain_primary_context(self) -> Context:
            return Context(self.ordinal)

    class Stream:
        def __init__(self) -> None:
            _need_context("Stream()")
            self.handle = gpu.new_stream()

        def synchronize(self) -> None:
            gpu.record("Stream.synchronize")

    def mem_alloc(nbytes: int) -> DeviceAllocation:
        _need_context("mem_alloc")
        gpu.record("mem_alloc")
        return DeviceAllocation(nbytes)

    def pagelocked_empty(shape: Any, dtype: Any) -> np.ndarray:
        gpu.record("pagelocked_empty")
        return np.empty(shape, dtype)

    def memcpy_htod_async(dst: int, src: np.ndarray, stream: Stream) -> None:
        _need_context("memcpy_htod_async")
        gpu.record("memcpy_htod_async")
        gpu.write(int(dst), np.ascontiguousarray(src).tobytes())

    def memcpy_dtoh_async(dst: np.ndarray, src: int, stream: Stream) -> None:
        _need_context("memcpy_dtoh_async")
        gpu.record("memcpy_dtoh_async")
        if not dst.flags.c_contiguous:
            raise FakeContractError("memcpy_dtoh_async into a non-contiguous array")
        gpu.device_region(int(src), dst.nbytes)
        ctypes.memmove(dst.ctypes.data, int(src), dst.nbytes)

    drv.init = lambda: gpu.record("init")
    drv.Device, drv.Context, drv.Stream, drv.DeviceAllocation = Device, Context, Stream, DeviceAllocation
    drv.mem_alloc, drv.pagelocked_empty = mem_alloc, pagelocked_empty
    drv.memcpy_htod_async, drv.memcpy_dtoh_async = memcpy_htod_async, memcpy_dtoh_async
    return drv


def install_fake_pycuda(
    monkeypatch: pytest.MonkeyPatch, gpu: FakeGpu, *, hide_cuda_python: bool = True
) -> None:
    """Make ``import pycuda.driver`` return the fake (and, by default, cuda-python unimportable)."""
    drv = make_pycuda_driver(gpu)
    pkg = types.ModuleType("pycuda")
    pkg.__path__ = []  # type: ignore[attr-defined]
    pkg.driver = drv  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pycuda", pkg)
    monkeypatch.setitem(sys.modules, "pycuda.driver", drv)
    if hide_cuda_python:
        hide_cuda_python_modules(monkeypatch)


def hide_cuda_python_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every spelling of the cuda-python import fail, as on a machine without it."""
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
