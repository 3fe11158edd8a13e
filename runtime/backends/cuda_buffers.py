"""The small slice of CUDA the TensorRT backend needs, over cuda-python or pycuda.

TensorRT's Python API takes raw device pointers and a stream handle; something else has to
allocate them. Devices differ in what is installed (JetPack images often carry pycuda, newer
x86 setups cuda-python), so this module offers one interface, :class:`CudaApi`, with an
implementation per library, picked by what imports. Everything is explicit and synchronous from
the caller's point of view: copies and kernels are queued on one stream and the caller waits on
it, on the thread that called, so no CUDA work ever happens on a hidden thread.

Pinned (page-locked) host buffers are used for the copies so that ``*Async`` copies really are
asynchronous DMA transfers; the buffers are allocated once, for the largest batch.
"""

from __future__ import annotations

import abc
import ctypes
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from runtime.errors import BackendUnavailableError

log = logging.getLogger(__name__)

CudaLibrary = Literal["auto", "cuda-python", "pycuda"]


class CudaError(RuntimeError):
    """A CUDA call failed (out of memory, device lost...): not something a config change fixes."""


@dataclass(frozen=True)
class DeviceInfo:
    """What an engine is tied to: TensorRT plans only run on the GPU model they were built for."""

    device_id: int
    name: str
    compute_capability: str


class CudaApi(abc.ABC):
    """Device memory, pinned host memory, one stream type and the copies between them."""

    library: ClassVar[str] = ""

    def __init__(self, device_id: int) -> None:
        self.device_id = device_id

    @contextmanager
    def current(self) -> Iterator[None]:
        """Make this device current on the calling thread for the duration of the block."""
        self._push()
        try:
            yield
        finally:
            self._pop()

    def _push(self) -> None:  # noqa: B027 - optional hook, a no-op for most libraries
        """Make the device current; default is a no-op."""

    def _pop(self) -> None:  # noqa: B027 - optional hook
        """Undo :meth:`_push`; default is a no-op."""

    @abc.abstractmethod
    def device_info(self) -> DeviceInfo: ...

    @abc.abstractmethod
    def malloc(self, nbytes: int) -> int: ...

    @abc.abstractmethod
    def free(self, ptr: int) -> None: ...

    @abc.abstractmethod
    def host_alloc(self, nbytes: int) -> np.ndarray:
        """A pinned, writable uint8 array of ``nbytes``; freed with :meth:`host_free`."""

    @abc.abstractmethod
    def host_free(self, array: np.ndarray) -> None: ...

    @abc.abstractmethod
    def create_stream(self) -> Any: ...

    @abc.abstractmethod
    def stream_handle(self, stream: Any) -> int:
        """The integer handle TensorRT's ``execute_async_v3`` expects."""

    @abc.abstractmethod
    def destroy_stream(self, stream: Any) -> None: ...

    @abc.abstractmethod
    def copy_to_device(self, dst: int, src: np.ndarray, stream: Any) -> None: ...

    @abc.abstractmethod
    def copy_to_host(self, dst: np.ndarray, src: int, stream: Any) -> None: ...

    @abc.abstractmethod
    def synchronize(self, stream: Any) -> None: ...


class CudaPythonApi(CudaApi):
    """NVIDIA's cuda-python runtime bindings (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6)."""

    library = "cuda-python"

    def __init__(self, device_id: int, cudart: Any) -> None:
        super().__init__(device_id)
        self._rt = cudart
        self._host: dict[int, int] = {}

    def _check(self, what: str, result: Any) -> Any:
        """cuda-python returns ``(error, *values)``; raise on error, unwrap the values."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self._rt.cudaError_t.cudaSuccess:
            raise CudaError(f"CUDA {what} failed on device {self.device_id}: {err!r}")
        return values[0] if len(values) == 1 else tuple(values)

    def _push(self) -> None:
        self._check("cudaSetDevice", self._rt.cudaSetDevice(self.device_id))

    def device_info(self) -> DeviceInfo:
        prop = self._check("cudaGetDeviceProperties", self._rt.cudaGetDeviceProperties(self.device_id))
        name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
        return DeviceInfo(self.device_id, name.rstrip("\x00").strip(), f"{prop.major}.{prop.minor}")

    def malloc(self, nbytes: int) -> int:
        return int(self._check("cudaMalloc", self._rt.cudaMalloc(nbytes)))

    def free(self, ptr: int) -> None:
        self._check("cudaFree", self._rt.cudaFree(ptr))

    def host_alloc(self, nbytes: int) -> np.ndarray:
        ptr = int(self._check("cudaMallocHost", self._rt.cudaMallocHost(nbytes)))
        array: np.ndarray = np.ctypeslib.as_array((ctypes.c_ubyte * nbytes).from_address(ptr))
        self._host[array.ctypes.data] = ptr
        return array

    def host_free(self, array: np.ndarray) -> None:
        ptr = self._host.pop(array.ctypes.data, None)
        if ptr is not None:
            self._check("cudaFreeHost", self._rt.cudaFreeHost(ptr))

    def create_stream(self) -> Any:
        return self._check("cudaStreamCreate", self._rt.cudaStreamCreate())

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def destroy_stream(self, stream: Any) -> None:
        self._check("cudaStreamDestroy", self._rt.cudaStreamDestroy(stream))

    def copy_to_device(self, dst: int, src: np.ndarray, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(
            "cudaMemcpyAsync", self._rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream)
        )

    def copy_to_host(self, dst: np.ndarray, src: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(
            "cudaMemcpyAsync", self._rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream)
        )

    def synchronize(self, stream: Any) -> None:
        self._check("cudaStreamSynchronize", self._rt.cudaStreamSynchronize(stream))


class PycudaApi(CudaApi):
    """pycuda's driver API on the device's primary context (the one TensorRT's runtime API uses)."""

    library = "pycuda"

    def __init__(self, device_id: int, driver: Any) -> None:
        super().__init__(device_id)
        self._drv = driver
        driver.init()
        self._device = driver.Device(device_id)
        self._context = self._device.retain_primary_context()
        self._allocations: dict[int, Any] = {}

    def _push(self) -> None:
        self._context.push()

    def _pop(self) -> None:
        self._drv.Context.pop()

    def device_info(self) -> DeviceInfo:
        major, minor = self._device.compute_capability()
        return DeviceInfo(self.device_id, str(self._device.name()), f"{major}.{minor}")

    def malloc(self, nbytes: int) -> int:
        allocation = self._drv.mem_alloc(nbytes)
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, ptr: int) -> None:
        allocation = self._allocations.pop(ptr, None)
        if allocation is not None:
            allocation.free()

    def host_alloc(self, nbytes: int) -> np.ndarray:
        return np.asarray(self._drv.pagelocked_empty(nbytes, np.uint8))

    def host_free(self, array: np.ndarray) -> None:
        """pycuda frees page-locked memory when the array is garbage collected."""

    def create_stream(self) -> Any:
        return self._drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def destroy_stream(self, stream: Any) -> None:
        """pycuda destroys a stream when the object is garbage collected."""

    def copy_to_device(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self._drv.memcpy_htod_async(dst, src, stream)

    def copy_to_host(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self._drv.memcpy_dtoh_async(dst, src, stream)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()


def _cuda_python() -> Any | None:
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime
        except ImportError:
            return None
    return runtime


def _pycuda() -> Any | None:
    try:
        import pycuda.driver as driver
    except ImportError:
        return None
    return driver


def load_cuda(device_id: int = 0, library: CudaLibrary = "auto") -> CudaApi:
    """The CUDA layer for ``device_id``, from cuda-python or else pycuda (or the one asked for)."""
    if library in ("auto", "cuda-python"):
        runtime = _cuda_python()
        if runtime is not None:
            return CudaPythonApi(device_id, runtime)
    if library in ("auto", "pycuda"):
        driver = _pycuda()
        if driver is not None:
            return PycudaApi(device_id, driver)
    wanted = "cuda-python or pycuda" if library == "auto" else library
    raise BackendUnavailableError(
        f"the TensorRT backend needs {wanted} for GPU buffers, which is not installed; install it with "
        "`pip install 'drsn-edge[trt]'` (pycuda) or `pip install cuda-python` (on Jetson, use the "
        "JetPack wheels)"
    )


def query_device(device_id: int = 0, library: CudaLibrary = "auto") -> DeviceInfo:
    """Name and compute capability of a GPU: the part of an engine cache key that names the device."""
    return load_cuda(device_id, library).device_info()


class TensorBuffer:
    """One engine IO tensor: pinned host staging memory plus device memory, sized for the largest batch."""

    def __init__(self, cuda: CudaApi, name: str, dtype: np.dtype[Any], max_shape: tuple[int, ...]) -> None:
        self.cuda, self.name, self.dtype = cuda, name, np.dtype(dtype)
        self.max_shape = max_shape
        nbytes = int(np.prod(max_shape)) * self.dtype.itemsize
        self._raw = cuda.host_alloc(nbytes)
        self.host = self._raw.view(self.dtype).reshape(max_shape)
        self.device = cuda.malloc(nbytes)

    def upload(self, batch: np.ndarray, stream: Any) -> None:
        """Stage ``batch`` in pinned memory and queue the copy to the device."""
        n = batch.shape[0]
        self.host[:n] = batch
        self.cuda.copy_to_device(self.device, self.host[:n], stream)

    def download(self, rows: int, stream: Any) -> np.ndarray:
        """Queue the copy of the first ``rows`` back; valid after the stream is synchronised."""
        self.cuda.copy_to_host(self.host[:rows], self.device, stream)
        return self.host[:rows]

    def release(self) -> None:
        self.cuda.free(self.device)
        self.cuda.host_free(self._raw)
