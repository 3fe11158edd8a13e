"""The runners of `drsn-edge bench backends --device cuda`: PyTorch eager and CUDA graphs, ONNX Runtime CUDA.

Every runner answers two questions about one batch size, the way a GPU deployment meets them:

* ``compute()``: the network alone, with the input already in device memory and the logits left
  there (what the GPU can do; the timer synchronises the device after each call);
* ``end_to_end(x)``: from a numpy batch in host memory to numpy logits in host memory, through
  pinned staging buffers and copies on the same stream, as the TensorRT backend does it.

``prepare(x)`` allocates the buffers of one batch size (and, for CUDA graphs, captures the graph
for that shape) outside the timed loop. torch and onnxruntime are imported inside the runners.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtime.errors import BackendUnavailableError, ConfigError

log = logging.getLogger(__name__)

TORCH_RUNNERS = ("torch-fp32-eager", "torch-fp16-eager", "torch-fp32-graph", "torch-fp16-graph")
ORT_RUNNERS = ("onnxruntime-cuda",)
RUNNER_NAMES = TORCH_RUNNERS + ORT_RUNNERS
_GRAPH_WARMUP = 3


class CudaRunner(Protocol):
    """What the CUDA timing loop drives; see the module docstring."""

    name: str

    def load(self) -> None: ...

    def prepare(self, x: np.ndarray) -> None: ...

    def compute(self) -> None: ...

    def sync(self) -> None: ...

    def end_to_end(self, x: np.ndarray) -> np.ndarray: ...

    def device_peak_mib(self) -> float | None: ...

    def close(self) -> None: ...


class TorchCudaRunner:
    """A PyTorch module on a CUDA device, in FP32 or FP16 (``.half()``), eager or replayed as a CUDA graph.

    FP32 runs with TF32 off, so "FP32" means FP32 here. A CUDA graph is captured once per batch
    size on static input/output tensors; ``compute`` is then a single ``replay()``.
    """

    def __init__(self, name: str, model: Any, device: Any) -> None:
        self.name, self.device = name, device
        self.half, self.graph = "fp16" in name, name.endswith("-graph")
        self._model = model
        self._graph: Any = None
        self._static_in: Any = None
        self._static_out: Any = None
        self._host_in: Any = None
        self._host_out: Any = None
        self._base_mib = 0.0

    def load(self) -> None:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self._model = self._model.to(self.device).eval()
        if self.half:
            self._model = self._model.half()
        torch.cuda.synchronize(self.device)
        self._base_mib = torch.cuda.memory_allocated(self.device) / 2**20

    def _forward(self, x: Any) -> Any:
        y = self._model(x)
        return y[0] if isinstance(y, tuple | list) else y

    def prepare(self, x: np.ndarray) -> None:
        import torch

        self._graph = None
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)
        dtype = torch.float16 if self.half else torch.float32
        self._host_in = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).pin_memory()
        self._static_in = self._host_in.to(self.device, dtype=dtype)
        with torch.inference_mode():
            self._static_out = self._forward(self._static_in)
            if self.graph:
                self._capture()
        # a normal (not inference-mode) tensor, so end_to_end may copy into it
        self._host_out = torch.empty(tuple(self._static_out.shape), dtype=torch.float32, pin_memory=True)
        torch.cuda.synchronize(self.device)

    def _capture(self) -> None:
        """Warm up on a side stream (as the CUDA graph docs require), then capture one forward pass."""
        import torch

        side = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(_GRAPH_WARMUP):
                self._forward(self._static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._static_out = self._forward(self._static_in)

    def compute(self) -> None:
        import torch

        if self._graph is not None:
            self._graph.replay()
            return
        with torch.inference_mode():
            self._static_out = self._forward(self._static_in)

    def sync(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)

    def end_to_end(self, x: np.ndarray) -> np.ndarray:
        """Stage ``x`` in pinned memory, copy in, compute, copy the logits out, wait for the stream."""
        import torch

        n = x.shape[0]
        self._host_in[:n].numpy()[...] = x
        with torch.inference_mode():
            self._static_in[:n].copy_(self._host_in[:n], non_blocking=True)
            self.compute()
            self._host_out[:n].copy_(self._static_out[:n], non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return np.array(self._host_out[:n].numpy())

    def device_peak_mib(self) -> float | None:
        import torch

        return max(torch.cuda.max_memory_allocated(self.device) / 2**20 - self._base_mib, 0.0)

    def close(self) -> None:
        import torch

        self._graph = self._static_in = self._static_out = self._host_in = self._host_out = None
        self._model = None
        torch.cuda.empty_cache()


class OrtCudaRunner:
    """ONNX Runtime's CUDA execution provider on the FP32 ONNX file.

    ``compute`` runs through an IO binding with the input and outputs in device memory;
    ``end_to_end`` is a plain ``session.run`` on numpy arrays (ONNX Runtime copies both ways).
    ``run`` returns once the provider's stream is synchronised, so ``sync`` has nothing to do.
    """

    name = "onnxruntime-cuda"

    def __init__(self, model_path: Path, device_id: int) -> None:
        self.model_path, self.device_id = model_path, device_id
        self._session: Any = None
        self._binding: Any = None
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._keep: Any = None

    def load(self) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise BackendUnavailableError(
                f"onnxruntime {ort.__version__} here has no CUDA provider (it offers "
                f"{', '.join(available)}); install onnxruntime-gpu in place of onnxruntime for this column"
            )
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        providers = [("CUDAExecutionProvider", {"device_id": self.device_id}), "CPUExecutionProvider"]
        self._session = ort.InferenceSession(str(self.model_path), opts, providers=providers)
        if self._session.get_providers()[0] != "CUDAExecutionProvider":
            raise BackendUnavailableError(
                f"onnxruntime fell back to {self._session.get_providers()} (CUDA or cuDNN libraries "
                "missing?); see onnxruntime's CUDA requirements for this version"
            )
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._outputs = [o.name for o in self._session.get_outputs()]

    def prepare(self, x: np.ndarray) -> None:
        import onnxruntime as ort

        host = np.ascontiguousarray(x, np.float32)
        self._keep = ort.OrtValue.ortvalue_from_numpy(host, "cuda", self.device_id)
        self._binding = self._session.io_binding()
        self._binding.bind_ortvalue_input(self._inputs[0], self._keep)
        for name in self._outputs:
            self._binding.bind_output(name, "cuda", self.device_id)
        self._session.run_with_iobinding(self._binding)

    def compute(self) -> None:
        self._session.run_with_iobinding(self._binding)

    def sync(self) -> None:
        return None

    def end_to_end(self, x: np.ndarray) -> np.ndarray:
        logits_name = "logits" if "logits" in self._outputs else self._outputs[0]
        logits: np.ndarray = self._session.run([logits_name], {self._inputs[0]: x})[0]
        return logits

    def device_peak_mib(self) -> float | None:
        return None  # ONNX Runtime's arena is invisible to torch's allocator statistics

    def close(self) -> None:
        self._binding = self._keep = self._session = None


def make_runner(
    name: str, *, onnx_path: Path, checkpoint: Path | None, weights_sha256: str, device_id: int
) -> CudaRunner:
    """The not yet loaded runner ``name``; torch runners need the checkpoint the ONNX came from."""
    if name in ORT_RUNNERS:
        return OrtCudaRunner(onnx_path, device_id)
    if checkpoint is None:
        raise BackendUnavailableError(
            "no --checkpoint: the ONNX file holds no PyTorch weights; pass the checkpoint it was exported "
            "from"
        )
    import torch

    from drsn_edge.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    if weights_sha256 and ckpt.metadata.weights_sha256 != weights_sha256:
        raise ConfigError(
            f"{checkpoint} holds other weights than the benchmarked model (sha256 "
            f"{ckpt.metadata.weights_sha256[:12]} vs {weights_sha256[:12]}); pass the checkpoint the ONNX "
            "file was exported from, or omit the model to benchmark an export of the checkpoint"
        )
    model = ckpt.build_model()
    return TorchCudaRunner(name, model, torch.device("cuda", device_id))
