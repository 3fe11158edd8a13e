"""Build an engine once per (ONNX, TensorRT, GPU, precision, batch profile) and reuse it after.

The daemon's config names the ONNX file; on first start the engine is built on the device and
cached beside it (or in ``cache_dir``). Later starts find the cached file and check its header:
the same ONNX hash, TensorRT version, GPU, precision and profile is a hit; any difference (a new
export, a JetPack upgrade, another GPU, a new profile) or an unreadable header of ours rebuilds.
A file we did not write (no drsn-edge header) or the engine of a different model at that path is
never overwritten: that raises :class:`ModelFileError`, since deleting it could destroy work.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from runtime.artifact import (
    ENGINE_MAGIC,
    EngineInfo,
    ModelMetadata,
    read_engine_file,
    read_onnx_metadata,
    sha256_file,
)
from runtime.backends.cuda_buffers import query_device
from runtime.backends.tensorrt.build import DEFAULT_BATCH, default_engine_path, engine_from_onnx
from runtime.backends.tensorrt.compat import Precision
from runtime.backends.tensorrt.trt import import_tensorrt
from runtime.errors import ModelFileError

log = logging.getLogger(__name__)

CacheState = Literal["hit", "stale", "missing"]
KEY_FIELDS = ("onnx_sha256", "tensorrt_version", "gpu_name", "compute_capability", "precision", "profile")


def expected_key(
    onnx_path: Path, precision: Precision, batch: tuple[int, int, int], device_id: int = 0
) -> dict[str, object]:
    """The cache key an engine for this ONNX must carry on this device."""
    trt = import_tensorrt()
    device = query_device(device_id)
    return {
        "onnx_sha256": sha256_file(onnx_path),
        "tensorrt_version": trt.__version__,
        "gpu_name": device.name,
        "compute_capability": device.compute_capability,
        "precision": precision,
        "profile": tuple(batch),
    }


def cache_state(engine_path: Path, model: ModelMetadata, key: dict[str, object]) -> CacheState:
    """Whether ``engine_path`` can be reused for ``model`` with ``key``; refuses foreign files."""
    if not engine_path.exists():
        return "missing"
    with open(engine_path, "rb") as f:
        magic = f.read(len(ENGINE_MAGIC))
    if magic != ENGINE_MAGIC:
        raise ModelFileError(
            f"{engine_path} exists but is not a drsn-edge engine (no {ENGINE_MAGIC.decode()} header); "
            "it was not "
            "written by drsn-edge, so it is left alone: move it away or choose another output path"
        )
    try:
        header, info, _ = read_engine_file(engine_path)
    except ModelFileError as exc:
        log.warning("cached engine %s is unreadable (%s); rebuilding", engine_path, exc)
        return "stale"
    _check_same_model(engine_path, header, model)
    changed = _changed_fields(info, key)
    if changed:
        log.info("cached engine %s is stale (%s); rebuilding", engine_path, ", ".join(changed))
        return "stale"
    return "hit"


def _check_same_model(engine_path: Path, header: ModelMetadata, model: ModelMetadata) -> None:
    if (header.model.name, header.classes) != (model.model.name, model.classes):
        raise ModelFileError(
            f"{engine_path} holds the engine of another model ({header.model.name}, "
            f"classes {header.classes}), "
            f"not {model.model.name} ({model.classes}); it is left alone: choose another output path or "
            "delete that file"
        )


def _changed_fields(info: EngineInfo, key: dict[str, object]) -> list[str]:
    have = info.model_dump()
    have["profile"] = tuple(have["profile"])
    return [f"{name}: {have[name]} -> {key[name]}" for name in KEY_FIELDS if have[name] != key[name]]


def ensure_engine(
    onnx_path: str | Path,
    out_path: str | Path | None = None,
    *,
    precision: Precision = "fp16",
    batch: tuple[int, int, int] = DEFAULT_BATCH,
    workspace_mb: int = 1024,
    timing_cache: str | Path | None = None,
    cache_dir: str | Path | None = None,
    device_id: int = 0,
    force: bool = False,
) -> Path:
    """Return an engine for ``onnx_path`` on this device, building it only when needed."""
    src = Path(onnx_path)
    model = read_onnx_metadata(src)
    out = (
        Path(out_path)
        if out_path is not None
        else default_engine_path(src, precision, Path(cache_dir) if cache_dir is not None else None)
    )
    state = cache_state(out, model, expected_key(src, precision, batch, device_id))
    if state == "hit" and not force:
        log.info("engine cache hit: %s", out)
        return out
    return engine_from_onnx(
        src,
        out,
        precision=precision,
        batch=batch,
        workspace_mb=workspace_mb,
        timing_cache=timing_cache,
        device_id=device_id,
    )
