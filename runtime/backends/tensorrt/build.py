"""ONNX -> TensorRT engine file, on the device that will run it.

One optimisation profile covers the batch sizes the daemon sends (min/opt/max), the workspace is
capped, and a persistent timing cache makes the second build on a device take seconds instead of
minutes. The precision path (FP16 flag or strongly typed FP16 ONNX) comes from
:mod:`.compat`; with the FP16 flag the threshold and logit layers are pinned to FP32
(:mod:`.precision`). The engine is written with the drsn-edge header (model metadata plus
TensorRT version, GPU, precision, profile) and then gated against ONNX Runtime on the golden
windows; an engine that fails the gate is deleted.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from runtime.artifact import EngineInfo, ModelMetadata, read_onnx_metadata, sha256_file, write_engine_file
from runtime.backends.cuda_buffers import load_cuda
from runtime.backends.tensorrt.compat import BuildRecipe, Precision, recipe_for
from runtime.backends.tensorrt.gate import gate_engine
from runtime.backends.tensorrt.precision import pin_sensitive_layers
from runtime.backends.tensorrt.source import base_stem, onnx_for_recipe
from runtime.backends.tensorrt.trt import import_tensorrt, trt_logger
from runtime.errors import ConfigError, ModelFileError

log = logging.getLogger(__name__)

DEFAULT_BATCH = (1, 8, 32)
TIMING_CACHE_NAME = "trt-timing.cache"


def default_engine_path(onnx_path: Path, precision: Precision, cache_dir: Path | None = None) -> Path:
    """``<cache_dir or ONNX folder>/<model>.<precision>.engine``."""
    folder = cache_dir if cache_dir is not None else onnx_path.parent
    return folder / f"{base_stem(onnx_path)}.{precision}.engine"


def engine_from_onnx(
    onnx_path: str | Path,
    out_path: str | Path | None = None,
    *,
    precision: Precision = "fp16",
    batch: tuple[int, int, int] = DEFAULT_BATCH,
    workspace_mb: int = 1024,
    timing_cache: str | Path | None = None,
    device_id: int = 0,
    gate: bool = True,
) -> Path:
    """Build an engine from a drsn-edge ONNX file and write it with its header; return its path."""
    src = Path(onnx_path)
    meta = read_onnx_metadata(src)
    _check_batch(batch)
    out = Path(out_path) if out_path is not None else default_engine_path(src, precision)
    _check_writable(out.parent)
    trt = import_tensorrt()
    recipe = recipe_for(trt.__version__, precision)
    parsed = onnx_for_recipe(src, meta, recipe, out.parent)
    cuda = load_cuda(device_id)
    device = cuda.device_info()
    cache_path = Path(timing_cache) if timing_cache is not None else out.parent / TIMING_CACHE_NAME
    started = time.monotonic()
    with cuda.current():
        blob = _build(trt, recipe, parsed, meta, batch, workspace_mb << 20, cache_path)
    info = EngineInfo(
        onnx_sha256=sha256_file(src),
        tensorrt_version=trt.__version__,
        gpu_name=device.name,
        compute_capability=device.compute_capability,
        precision=precision,
        profile=batch,
        strongly_typed=recipe.strongly_typed,
    )
    write_engine_file(out, meta, info, blob)
    log.info(
        "built %s in %.1f s (%s, batch %s)", out, time.monotonic() - started, recipe.describe(), list(batch)
    )
    if gate:
        try:
            gate_engine(out, parsed, meta, precision=precision, device_id=device_id)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
    return out


def _check_writable(folder: Path) -> None:
    """Fail before a minutes-long build, not after it, when the engine cannot be saved."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".drsn-edge-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write the engine into {folder} ({exc.strerror}); choose a writable output path, or set "
            "the tensorrt backend's cache_dir to a writable folder"
        ) from exc


def _check_batch(batch: tuple[int, int, int]) -> None:
    if len(batch) != 3 or not 1 <= batch[0] <= batch[1] <= batch[2]:
        raise ConfigError(f"batch profile must be min,opt,max with 1 <= min <= opt <= max, got {list(batch)}")


def _build(
    trt: Any,
    recipe: BuildRecipe,
    onnx_path: Path,
    meta: ModelMetadata,
    batch: tuple[int, int, int],
    workspace_bytes: int,
    cache_path: Path,
) -> bytes:
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(recipe.network_flags(trt))
    parser = _parse(trt, network, logger, onnx_path)  # keep the parser alive until the build is done
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    recipe.configure(trt, config)
    if recipe.pin_sensitive_fp32:
        pin_sensitive_layers(trt, network, config, onnx_path)
    config.add_optimization_profile(_profile(builder, network, meta, batch))
    _load_timing_cache(config, cache_path)
    serialized = builder.build_serialized_network(network, config)
    del parser
    if serialized is None:
        raise ModelFileError(
            f"TensorRT could not build an engine from {onnx_path} (see the TensorRT errors logged above); "
            "try a larger --workspace-mb or --precision fp32"
        )
    _save_timing_cache(config, cache_path)
    return bytes(serialized)


def _parse(trt: Any, network: Any, logger: Any, onnx_path: Path) -> Any:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [_describe(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ModelFileError(
            f"TensorRT's ONNX parser rejected {onnx_path}: {'; '.join(errors) or 'no details'}. "
            "Re-export with `drsn-edge export onnx` (opset 17), or upgrade TensorRT"
        )
    return parser


def _describe(error: Any) -> str:
    node = error.node() if hasattr(error, "node") else -1
    return f"{error.desc()}" + (f" (node {node})" if node is not None and node >= 0 else "")


def _profile(builder: Any, network: Any, meta: ModelMetadata, batch: tuple[int, int, int]) -> Any:
    """One profile over the batch axis; the sample shape is fixed by the metadata."""
    tensor = network.get_input(0)
    sample = tuple(int(d) for d in meta.input.shape[1:])
    declared = tuple(int(d) for d in tensor.shape)[1:]
    if declared != sample:
        raise ModelFileError(
            f"the ONNX input {tensor.name} has shape {tuple(tensor.shape)} but its metadata says "
            f"(N, {sample}); "
            "the file was edited after export: re-export it"
        )
    profile = builder.create_optimization_profile()
    lo, opt, hi = batch
    profile.set_shape(tensor.name, (lo, *sample), (opt, *sample), (hi, *sample))
    return profile


def _load_timing_cache(config: Any, path: Path) -> None:
    """Reuse earlier tactic timings; a cache from another TensorRT or GPU is ignored, not fatal."""
    data = path.read_bytes() if path.is_file() else b""
    cache = None
    if data:
        try:
            cache = config.create_timing_cache(data)
        except (RuntimeError, TypeError, ValueError) as exc:
            log.warning("timing cache %s is unreadable (%s)", path, exc)
    if cache is None or not config.set_timing_cache(cache, False):
        if data:
            log.warning("timing cache %s does not match this TensorRT/GPU; starting a fresh one", path)
        config.set_timing_cache(config.create_timing_cache(b""), False)


def _save_timing_cache(config: Any, path: Path) -> None:
    data = bytes(config.get_timing_cache().serialize())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    log.debug("saved timing cache %s (%d bytes)", path, len(data))
