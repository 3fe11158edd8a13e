"""Pick (or make) the ONNX file a build recipe needs from the one the user named.

Users name one model file; which ONNX TensorRT must parse depends on its version (see
:mod:`.compat`): the FP32 export for weakly typed TensorRT, the FP16 export for an
FP16 strongly typed build. The matching file is found beside the given one (``model.onnx`` <->
``model.fp16.onnx``, verified by the source hash the FP16 step records) or, for FP16, converted
on the spot into the engine cache folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

from runtime.artifact import ModelMetadata, read_onnx_metadata, sha256_file
from runtime.backends.tensorrt.compat import BuildRecipe
from runtime.errors import ModelFileError

log = logging.getLogger(__name__)

FP16_SUFFIX = ".fp16"


def base_stem(path: Path) -> str:
    """``model.fp16.onnx`` -> ``model``; ``model.onnx`` -> ``model``."""
    stem = path.stem
    return stem[: -len(FP16_SUFFIX)] if stem.endswith(FP16_SUFFIX) else stem


def onnx_for_recipe(onnx_path: Path, meta: ModelMetadata, recipe: BuildRecipe, workdir: Path) -> Path:
    """The ONNX file to parse for ``recipe``, given the user's ``onnx_path`` and its metadata."""
    if meta.precision == recipe.onnx_precision:
        return onnx_path
    if recipe.onnx_precision == "fp16":
        return _fp16_twin(onnx_path, workdir)
    return _fp32_source(onnx_path, meta, recipe)


def _fp16_twin(fp32_path: Path, workdir: Path) -> Path:
    """An FP16 conversion of ``fp32_path`` whose recorded source hash matches: found or made."""
    source_sha = sha256_file(fp32_path)
    stem = base_stem(fp32_path)
    for candidate in (
        fp32_path.with_name(f"{stem}{FP16_SUFFIX}.onnx"),
        workdir / f"{stem}{FP16_SUFFIX}.onnx",
    ):
        if candidate.is_file() and _fp16_source(candidate) == source_sha:
            log.info("using the FP16 model %s for a strongly typed build", candidate)
            return candidate
    try:
        from runtime.onnx_tools.fp16 import fp16_from_onnx
    except ImportError as exc:  # onnx / onnxconverter-common missing on the device
        raise ModelFileError(
            f"this TensorRT builds FP16 engines only from an FP16 ONNX, and converting {fp32_path} here "
            "needs onnxconverter-common (`pip install onnxconverter-common`); or run `drsn-edge export "
            "fp16` on the "
            f"host and copy {stem}{FP16_SUFFIX}.onnx beside {fp32_path.name}"
        ) from exc
    target = workdir / f"{stem}{FP16_SUFFIX}.onnx"
    if target.exists():
        log.warning("%s was not converted from the current %s; replacing it", target, fp32_path.name)
    log.info("converting %s to FP16 for a strongly typed build: %s", fp32_path.name, target)
    fp16_from_onnx(fp32_path, target)
    return target


def _fp16_source(path: Path) -> str | None:
    try:
        gate = read_onnx_metadata(path).export.get("fp16_gate", {})
    except ModelFileError:
        return None
    source = gate.get("source_sha256") if isinstance(gate, dict) else None
    return str(source) if source else None


def _fp32_source(fp16_path: Path, meta: ModelMetadata, recipe: BuildRecipe) -> Path:
    """The FP32 export an FP16 file was converted from, if it sits beside it unchanged."""
    gate = meta.export.get("fp16_gate", {})
    source_sha = gate.get("source_sha256") if isinstance(gate, dict) else None
    candidate = fp16_path.with_name(f"{base_stem(fp16_path)}.onnx")
    if source_sha and candidate.is_file() and sha256_file(candidate) == source_sha:
        log.info("using the FP32 model %s (%s)", candidate, recipe.describe())
        return candidate
    raise ModelFileError(
        f"{fp16_path} is an FP16 model, but {recipe.describe()} needs the FP32 export (it picks FP16 kernels "
        f"itself{' with BuilderFlag.FP16' if recipe.use_fp16_flag else ''}); build from the FP32 ONNX "
        "written by "
        "`drsn-edge export onnx` instead"
    )
