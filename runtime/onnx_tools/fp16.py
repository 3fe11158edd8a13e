"""FP32 ONNX -> FP16 ONNX with the precision-sensitive nodes kept in FP32, behind an accuracy gate.

TensorRT 10.12+ (and 11, where the FP16 builder flag is gone) builds strongly typed networks:
the precision is whatever the ONNX says. This module writes that ONNX: FP16 weights and
activations, FP32 inputs and outputs (casts inside the graph, so callers never change), and the
nodes listed by :mod:`.precision_sensitive` in FP32. NVIDIA ModelOpt AutoCast is used when
it is installed; otherwise onnxconverter-common with an explicit node block list.

The gate runs both files in ONNX Runtime on the CPU: argmax agreement of at least 99.5% (flips
of near-ties forgiven, see :func:`argmax_agreement`) and, when labels are given, an accuracy drop
of at most 0.2 percentage points; a features output (when exported) may move by at most 5% of
its largest value. The figures are logged and
stored in the metadata under ``export.fp16_gate`` (and printed by ``drsn-edge export fp16``).
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx

from runtime.artifact import ModelMetadata, sha256_file
from runtime.errors import BackendUnavailableError, ModelFileError, ParityError
from runtime.onnx_tools.fp16_graph import (
    drop_cast_round_trips,
    float_tensors,
    restore_fp32_inputs,
    restore_fp32_outputs,
    untie_initializers,
)
from runtime.onnx_tools.metadata_io import embed_metadata, load_onnx, metadata_of, save_onnx
from runtime.onnx_tools.ort_run import cpu_session, onnx_logits, run_outputs
from runtime.onnx_tools.precision_sensitive import SensitiveNodes, find_sensitive_nodes
from runtime.parity import ParityReport, compare_logits

log = logging.getLogger(__name__)

Converter = Literal["auto", "autocast", "onnxconverter"]
MIN_AGREEMENT = 0.995
MAX_ACCURACY_DROP_POINTS = 0.2
#: the features output (novelty scores are distances there) may move by at most this share of its
#: largest FP32 value: DRSN-CW trained on CWRU measures 0.15%, the deepest registered network with
#: random weights 1.5%; a broken conversion moves them by tens of percent
FEATURES_MAX_REL_DIFF = 0.05
FEATURES_OUTPUT = "features"
#: an FP16/FP32 argmax flip on a window whose two best FP32 logits are closer than this share of
#: its largest |logit| is a near-tie that a few FP16 rounding steps decide, not a conversion defect
NEAR_TIE_FRACTION = 0.02


def argmax_agreement(ref: np.ndarray, low: np.ndarray) -> tuple[float, float, int]:
    """``(agreement, decisive agreement, near-tie flips)`` of FP16 logits ``low`` against FP32 ``ref``.

    The gate judges the decisive agreement: flips of near-ties count as agreements there, so a
    handful of golden windows that happen to sit on a decision boundary cannot fail a sound
    conversion, while a broken one (which flips confident windows) still fails.
    """
    report = _compare(ref, low)
    return report.argmax_agreement, report.decisive_agreement, report.near_tie_flips


def _compare(ref: np.ndarray, low: np.ndarray) -> ParityReport:
    """The shared comparator with the FP16 near-tie rule (no tolerance: the gate judges argmaxes)."""
    return compare_logits(
        ref, low, atol=0.0, near_tie_fraction=NEAR_TIE_FRACTION, reference_name="fp32", candidate_name="fp16"
    )


@dataclass
class Fp16Report:
    """The FP16 gate's figures; ``accuracy_*`` are None without labels."""

    path: Path
    converter: str
    n: int
    argmax_agreement: float
    max_abs_diff: float
    #: agreement with near-tie flips forgiven (what the gate judges)
    decisive_agreement: float = 1.0
    near_tie_flips: int = 0
    accuracy_fp32: float | None = None
    accuracy_fp16: float | None = None
    kept_fp32: dict[str, list[str]] = field(default_factory=dict)
    #: max |FP16 - FP32| of the features output over the largest FP32 |feature|; None without one
    features_max_rel_diff: float | None = None

    @property
    def accuracy_drop_points(self) -> float | None:
        if self.accuracy_fp32 is None or self.accuracy_fp16 is None:
            return None
        return 100.0 * (self.accuracy_fp32 - self.accuracy_fp16)

    def as_dict(self) -> dict[str, Any]:
        return {
            "converter": self.converter,
            "n": self.n,
            "argmax_agreement": self.argmax_agreement,
            "decisive_agreement": self.decisive_agreement,
            "near_tie_flips": self.near_tie_flips,
            "max_abs_diff": self.max_abs_diff,
            "accuracy_fp32": self.accuracy_fp32,
            "accuracy_fp16": self.accuracy_fp16,
            "accuracy_drop_points": self.accuracy_drop_points,
            "min_agreement": MIN_AGREEMENT,
            "max_accuracy_drop_points": MAX_ACCURACY_DROP_POINTS,
            "kept_fp32": self.kept_fp32,
            "features_max_rel_diff": self.features_max_rel_diff,
            "features_max_rel_diff_gate": FEATURES_MAX_REL_DIFF,
        }

    def summary(self) -> str:
        text = (
            f"FP16 vs FP32 on {self.n} windows: argmax agreement {100 * self.argmax_agreement:.2f}%, "
            f"{100 * self.decisive_agreement:.2f}% with {self.near_tie_flips} near-tie flip(s) forgiven "
            f"(gate >= {100 * MIN_AGREEMENT:.1f}%), max |logit diff| {self.max_abs_diff:.3g}"
        )
        if self.accuracy_fp32 is not None and self.accuracy_fp16 is not None:
            text += (
                f", accuracy {100 * self.accuracy_fp32:.2f}% -> {100 * self.accuracy_fp16:.2f}% "
                f"(drop {100 * (self.accuracy_fp32 - self.accuracy_fp16):.2f} points, "
                f"gate <= {MAX_ACCURACY_DROP_POINTS})"
            )
        if self.features_max_rel_diff is not None:
            text += (
                f", features max |diff| {100 * self.features_max_rel_diff:.2f}% of the largest "
                f"(gate <= {100 * FEATURES_MAX_REL_DIFF:g}%)"
            )
        return text


def fp16_from_onnx(
    src: str | Path,
    dst: str | Path,
    *,
    eval_windows: np.ndarray | None = None,
    eval_labels: np.ndarray | None = None,
    converter: Converter = "auto",
) -> Fp16Report:
    """Convert the drsn-edge FP32 ONNX file ``src`` into the FP16 file ``dst`` and gate it.

    ``eval_windows`` are normalised model inputs (N, ...); without them the golden windows stored
    in the metadata are used. Raises :class:`ParityError` (and writes nothing) when the gate fails.
    """
    model = load_onnx(src)
    meta = metadata_of(model, source=str(src))
    if meta.precision != "fp32":
        raise ModelFileError(f"{src} is already {meta.precision}; convert the FP32 export instead")
    windows, labels = _eval_set(meta, eval_windows, eval_labels, src)
    sensitive = find_sensitive_nodes(model)
    converted, used = _convert(model, sensitive, converter)
    check_kept_fp32(converted, sensitive)
    report = _gate(model, converted, windows, labels, used, Path(dst), sensitive)
    log.info("%s", report.summary())
    gate = {**report.as_dict(), "source_sha256": sha256_file(src)}
    new_meta = meta.model_copy(update={"precision": "fp16", "export": {**meta.export, "fp16_gate": gate}})
    embed_metadata(converted, new_meta)
    save_onnx(converted, dst)
    onnx_logits(Path(dst), windows[:2])  # the file on disk really runs in ONNX Runtime CPU
    log.info("wrote FP16 model %s (%s)", dst, used)
    return report


def _eval_set(
    meta: ModelMetadata, windows: np.ndarray | None, labels: np.ndarray | None, src: str | Path
) -> tuple[np.ndarray, np.ndarray | None]:
    if windows is None:
        if meta.golden is None:
            raise ModelFileError(
                f"{src} stores no golden windows and none were given; pass evaluation windows "
                "(`drsn-edge export fp16 ... --windows windows.npz`)"
            )
        windows = meta.golden.arrays()[0]
    x = np.asarray(windows, dtype=np.float32)
    expected = tuple(meta.input.shape[1:])
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected or len(x) == 0:
        raise ModelFileError(
            f"evaluation windows of shape {x.shape} do not fit the model input "
            f"(N, {', '.join(map(str, expected))}); "
            "pass normalised windows cut like the training data"
        )
    y = None if labels is None else np.asarray(labels).reshape(-1).astype(np.int64)
    if y is not None and len(y) != len(x):
        raise ModelFileError(f"{len(y)} labels for {len(x)} evaluation windows; pass one label per window")
    return x, y


def _convert(
    model: onnx.ModelProto, sensitive: SensitiveNodes, converter: Converter
) -> tuple[onnx.ModelProto, str]:
    """Run AutoCast when available (or asked for), onnxconverter-common otherwise."""
    if converter in ("auto", "autocast"):
        try:
            from modelopt.onnx.autocast import convert_to_mixed_precision
        except ImportError:
            if converter == "autocast":
                raise BackendUnavailableError(
                    "ModelOpt AutoCast is not installed; `pip install nvidia-modelopt[onnx]` or use "
                    "converter='onnxconverter'"
                ) from None
        else:
            return _autocast(convert_to_mixed_precision, model, sensitive), "modelopt-autocast"
    try:
        from onnxconverter_common import float16
    except ImportError as exc:
        raise BackendUnavailableError(
            "FP16 conversion needs onnxconverter-common; install it with `pip install 'drsn-edge[export]'`"
        ) from exc
    model = onnx.ModelProto.FromString(model.SerializeToString())
    untie_initializers(model.graph, set(sensitive.all))
    # FP16 IO here, FP32 IO restored below: keep_io_types=True fails when the logits node is blocked.
    converted = float16.convert_float_to_float16(model, keep_io_types=False, node_block_list=sensitive.all)
    graph = converted.graph
    restore_fp32_inputs(graph)
    restore_fp32_outputs(graph)
    drop_cast_round_trips(graph, float_tensors(converted))
    del graph.value_info[:]
    converted = onnx.shape_inference.infer_shapes(converted)
    onnx.checker.check_model(converted, full_check=True)
    return converted, "onnxconverter-common"


def _autocast(convert: Any, model: onnx.ModelProto, sensitive: SensitiveNodes) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fp32.onnx"
        onnx.save(model, str(path))
        result: onnx.ModelProto = convert(
            onnx_path=str(path),
            low_precision_type="fp16",
            nodes_to_exclude=[f"^{re.escape(name)}$" for name in sensitive.all],
            keep_io_types=True,
        )
    return result


def check_kept_fp32(model: onnx.ModelProto, sensitive: SensitiveNodes) -> None:
    """Inspect the converted graph: every sensitive node must read and write float32 tensors."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    nodes = {n.name: n for n in inferred.graph.node}
    wrong = []
    for name in sensitive.all:
        node = nodes.get(name)
        tensors = [] if node is None else [t for t in (*node.input[:1], *node.output[:1]) if t]
        if node is None or any(types.get(t) != onnx.TensorProto.FLOAT for t in tensors):
            wrong.append(name)
    if wrong:
        raise ModelFileError(
            f"the FP16 conversion did not keep {wrong} in FP32; use converter='onnxconverter' or "
            "report the model"
        )


def _gate(
    fp32: onnx.ModelProto,
    fp16: onnx.ModelProto,
    windows: np.ndarray,
    labels: np.ndarray | None,
    converter: str,
    dst: Path,
    sensitive: SensitiveNodes,
) -> Fp16Report:
    ref_all, low_all = run_outputs(cpu_session(fp32), windows), run_outputs(cpu_session(fp16), windows)
    ref, low = next(iter(ref_all.values())), next(iter(low_all.values()))  # the logits come first
    parity = _compare(ref, low)
    report = Fp16Report(
        path=dst,
        converter=converter,
        n=len(windows),
        argmax_agreement=parity.argmax_agreement,
        max_abs_diff=parity.max_abs_diff,
        decisive_agreement=parity.decisive_agreement,
        near_tie_flips=parity.near_tie_flips,
        kept_fp32=sensitive.as_dict(),
        features_max_rel_diff=_features_rel_diff(ref_all, low_all),
    )
    if labels is not None:
        report.accuracy_fp32 = float(np.mean(ref.argmax(1) == labels))
        report.accuracy_fp16 = float(np.mean(low.argmax(1) == labels))
    drop = report.accuracy_drop_points
    features_bad = (report.features_max_rel_diff or 0.0) > FEATURES_MAX_REL_DIFF
    if (
        report.decisive_agreement < MIN_AGREEMENT
        or (drop is not None and drop > MAX_ACCURACY_DROP_POINTS)
        or features_bad
    ):
        raise ParityError(
            f"FP16 gate failed: {report.summary()}; keep the FP32 model (TensorRT 10.3 builds FP16 from it "
            "with the FP16 flag) or report the model so more nodes can be kept in FP32"
        )
    return report


def _features_rel_diff(ref: dict[str, np.ndarray], low: dict[str, np.ndarray]) -> float | None:
    """Largest FP16 feature error relative to the largest FP32 feature, or None without features."""
    if FEATURES_OUTPUT not in ref:
        return None
    if FEATURES_OUTPUT not in low:
        raise ParityError("the FP16 model lost the features output of the FP32 model; report the model")
    scale = max(float(np.abs(ref[FEATURES_OUTPUT]).max()), 1e-12)
    return float(np.abs(ref[FEATURES_OUTPUT] - low[FEATURES_OUTPUT]).max()) / scale
