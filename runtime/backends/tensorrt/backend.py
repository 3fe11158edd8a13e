"""TensorRT backend: runs a drsn-edge engine file, or builds (once) and caches one from an ONNX file.

The config may name either file. An engine file must carry the drsn-edge header (model metadata
plus what it was built for); an ONNX file is turned into an engine on first start through
:mod:`.cache` (imported only then), keyed by the ONNX hash, TensorRT version, GPU,
precision and batch profile, so a JetPack upgrade or a new model rebuilds instead of crashing.

Inference uses the TensorRT 10 tensor API: ``set_input_shape``, ``set_tensor_address`` and
``execute_async_v3`` on one CUDA stream, with pinned host buffers sized for the profile's largest
batch. Every CUDA call happens on the thread that calls :meth:`load`/:meth:`infer`, with the
device made current for the call; load and infer on the inference thread.

``tensorrt`` and the CUDA bindings are imported inside :meth:`TensorRTBackend._load`, so this
module imports (and its config validates) on machines without a GPU.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from runtime.artifact import EngineInfo, ModelMetadata, read_engine_file
from runtime.backends.base import Backend
from runtime.backends.cuda_buffers import CudaApi, CudaError, TensorBuffer, load_cuda
from runtime.backends.golden import run_windows
from runtime.backends.tensorrt.config import TensorRTConfig
from runtime.backends.tensorrt.trt import ENGINE_TOLERANCES, import_tensorrt, trt_logger
from runtime.errors import DataError, ModelFileError, ParityError
from runtime.parity import compare_logits

log = logging.getLogger(__name__)


class TensorRTBackend(Backend):
    """Runs a serialized TensorRT engine with one execution context and one CUDA stream."""

    name = "tensorrt"
    checks_golden_in_load = True  # _golden_check, with the engine tolerances and golden_check: warn|off

    def __init__(
        self, model_path: str | Path, metadata: ModelMetadata, config: TensorRTConfig | None = None
    ) -> None:
        super().__init__(model_path, metadata)
        self.config = config or TensorRTConfig()
        self.engine_path: Path | None = None
        self.engine_info: EngineInfo | None = None
        self._cuda: CudaApi | None = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._input_name = metadata.input.name
        self._output_name = metadata.output_name
        self._other_outputs: list[str] = []
        self._stream: Any = None
        self._buffers: list[TensorBuffer] = []
        self._owner_thread = 0
        self._warned_thread = False

    def _load(self) -> None:
        trt = import_tensorrt()
        self.engine_path = self._resolve_engine()
        try:
            self._open(trt, self.engine_path)
        except ModelFileError as exc:
            if self.model_path.suffix.lower() != ".onnx":
                raise
            log.warning("tensorrt: cached engine %s is unusable (%s); rebuilding it", self.engine_path, exc)
            self.engine_path = self._resolve_engine(force=True)
            self._open(trt, self.engine_path)
        assert self.engine_info is not None
        self._golden_check(self.engine_info.precision)
        log.info(
            "tensorrt: loaded %s (%s, batch %s, %s)",
            self.engine_path.name,
            self.engine_info.precision,
            list(self.engine_info.profile),
            self.engine_info.gpu_name,
        )

    def _open(self, trt: Any, engine_path: Path) -> None:
        """Read and check the engine file, deserialize it and allocate its buffers."""
        meta, info, blob = read_engine_file(engine_path)
        self._check_model(meta)
        cuda = load_cuda(self.config.device_id, self.config.cuda_library)
        self._check_target(info, trt.__version__, cuda)
        self._cuda, self.engine_info, self._owner_thread = cuda, info, threading.get_ident()
        with cuda.current():
            try:
                self._create(trt, blob)
            except BaseException:
                self._release()
                raise

    def _resolve_engine(self, force: bool = False) -> Path:
        """The engine file to load: the model path itself, or the cached build of an ONNX file."""
        if self.model_path.suffix.lower() != ".onnx":
            return self.model_path
        from runtime.backends.tensorrt.cache import ensure_engine  # on-device build path only

        cfg = self.config
        return ensure_engine(
            self.model_path,
            precision=cfg.precision,
            batch=cfg.batch,
            workspace_mb=cfg.workspace_mb,
            timing_cache=cfg.timing_cache,
            cache_dir=cfg.cache_dir,
            device_id=cfg.device_id,
            force=force,
        )

    def _check_model(self, header: ModelMetadata) -> None:
        """The engine must hold the model the daemon was configured with."""
        mine = self.metadata
        if (header.model.name, header.classes, header.input.shape) != (
            mine.model.name,
            mine.classes,
            mine.input.shape,
        ):
            raise ModelFileError(
                f"{self.engine_path} holds model {header.model.name} ({header.classes}, "
                f"input {header.input.shape}) "
                f"but {mine.model.name} ({mine.classes}, input {mine.input.shape}) was expected; point the "
                "config at the right engine or rebuild it from the model's ONNX file"
            )

    def _check_target(self, info: EngineInfo, trt_version: str, cuda: CudaApi) -> None:
        """A plan only runs on the TensorRT version and GPU it was built for: say so before TensorRT fails."""
        device = cuda.device_info()
        built = (info.tensorrt_version, info.gpu_name, info.compute_capability)
        here = (trt_version, device.name, device.compute_capability)
        if built != here:
            raise ModelFileError(
                f"{self.engine_path} was built for TensorRT {built[0]} on {built[1]} (sm {built[2]}) "
                "but this "
                f"device has TensorRT {here[0]} on {here[1]} (sm {here[2]}); rebuild it here with `drsn-edge "
                "build-engine`, or put the ONNX file in the config so the engine is built and cached "
                "automatically"
            )

    def _create(self, trt: Any, blob: bytes) -> None:
        runtime = trt.Runtime(trt_logger(trt))
        engine = runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise ModelFileError(
                f"TensorRT could not deserialize {self.engine_path} (truncated, corrupt, or built by another "
                "TensorRT); rebuild it with `drsn-edge build-engine`"
            )
        self._runtime, self._engine = runtime, engine
        self._context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or not outputs:
            raise ModelFileError(
                f"{self.engine_path} has inputs {inputs} and outputs {outputs}; expected one of each"
            )
        self._input_name = inputs[0]
        self._output_name = self.metadata.output_name if self.metadata.output_name in outputs else outputs[0]
        # every output needs a device address before execute_async_v3, the features one too
        self._other_outputs = [n for n in outputs if n != self._output_name]
        self.has_features = self.metadata.features_name in self._other_outputs
        max_batch = int(engine.get_tensor_profile_shape(self._input_name, 0)[2][0])
        self.max_batch = max_batch
        self._allocate(trt, max_batch)

    def _allocate(self, trt: Any, max_batch: int) -> None:
        assert self._cuda is not None
        engine, cuda = self._engine, self._cuda
        specs = [
            (self._input_name, (max_batch, *self.sample_shape)),
            (self._output_name, (max_batch, self.num_classes)),
            *((name, (max_batch, *engine.get_tensor_shape(name)[1:])) for name in self._other_outputs),
        ]
        for name, shape in specs:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            self._buffers.append(TensorBuffer(cuda, name, dtype, shape))
        self._stream = cuda.create_stream()
        for buf in self._buffers:
            if not self._context.set_tensor_address(buf.name, buf.device):
                raise CudaError(f"TensorRT refused the device address of tensor {buf.name}")

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self._execute(batch, with_features=False)[0]

    def _infer_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self._execute(batch, with_features=True)

    def _execute(self, batch: np.ndarray, *, with_features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """One engine run; the features buffer (bound for every run) is downloaded when asked for."""
        assert self._cuda is not None
        self._note_thread()
        inp, out = self._buffers[0], self._buffers[1]
        feat = None
        if with_features and self.has_features:
            feat = self._buffers[2 + self._other_outputs.index(str(self.metadata.features_name))]
        n = batch.shape[0]
        with self._cuda.current():
            if not self._context.set_input_shape(self._input_name, tuple(batch.shape)):
                raise DataError(
                    f"TensorRT rejected input shape {tuple(batch.shape)}; the engine profile allows batches "
                    f"up to {self.max_batch}"
                )
            inp.upload(batch, self._stream)
            if not self._context.execute_async_v3(self._cuda.stream_handle(self._stream)):
                raise CudaError(f"TensorRT execution failed for a batch of {n}; see the TensorRT log")
            logits = out.download(n, self._stream)
            features = None if feat is None else feat.download(n, self._stream)
            self._cuda.synchronize(self._stream)
            return (
                np.array(logits, dtype=np.float32),
                None if features is None else np.array(features, dtype=np.float32),
            )

    def _note_thread(self) -> None:
        if threading.get_ident() != self._owner_thread and not self._warned_thread:
            self._warned_thread = True
            log.warning(
                "tensorrt: infer called from a thread other than the one that loaded the engine; "
                "call load() on the inference thread"
            )

    def _golden_check(self, precision: str) -> None:
        golden = self.metadata.golden
        if golden is None or self.config.golden_check == "off":
            return
        x, ref = golden.arrays()
        got = run_windows(self, x)
        atol, rtol = ENGINE_TOLERANCES[precision]
        report = compare_logits(
            ref, got, atol=atol, rtol=rtol, reference_name="golden logits", candidate_name="engine"
        )
        if report.passed(exact_argmax=False):
            return
        message = f"{self.engine_path}: engine disagrees with the model's golden windows ({report.summary()})"
        if self.config.golden_check == "warn":
            log.warning("%s", message)
            return
        self._release()
        raise ParityError(message + "; rebuild the engine, or set golden_check: warn to run it anyway")

    def _close(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._cuda is None:
            return
        with self._cuda.current():
            for buf in self._buffers:
                buf.release()
            if self._stream is not None:
                self._cuda.destroy_stream(self._stream)
        self._buffers, self._stream = [], None
        self._context = self._engine = self._runtime = None
