"""Checkpoint -> ONNX, checked, simplified and gated against PyTorch: the only export step with torch.

The result is the model artifact the device consumes: one ONNX file (opset 17 by default) with a
dynamic batch axis, input ``input`` and output ``logits``, BatchNorm folded where exact, no
operator TensorRT would trip on, and the drsn-edge metadata (classes, signal, normalisation,
golden windows with their ONNX FP32 logits, and the gate's figures) in ``metadata_props``.

The TorchScript exporter (``dynamo=False``) is used on purpose: the dynamo exporter needs
onnxscript, and for these static, control-flow-free networks both produce the same graph.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from export.bn_fold import fold_batchnorm
from export.checkpoint_format import Checkpoint, load_checkpoint
from export.graph_rules import check_supported_ops, op_histogram
from runtime.artifact import SCHEMA_VERSION, Golden, ModelMetadata, read_onnx_metadata
from runtime.errors import ModelFileError
from runtime.novelty.stats import NoveltyScorer, NoveltyStats
from runtime.onnx_tools.metadata_io import embed_metadata, save_onnx
from runtime.onnx_tools.ort_run import cpu_session, run_outputs
from runtime.parity import ParityReport, check_parity

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
#: second output: the pooled features in front of the final layer (novelty scores are distances there)
FEATURES_NAME = "features"
#: relative part of the features' parity tolerance (on their largest magnitude)
FEATURES_RTOL = 1e-4
DEFAULT_GOLDEN = 8


@dataclass
class ExportReport:
    """What :func:`onnx_from_checkpoint` wrote and measured."""

    path: Path
    opset: int
    parity: ParityReport
    ops: dict[str, int]
    bn_folded: int
    metadata: ModelMetadata

    def summary(self) -> str:
        return (
            f"wrote {self.path} (opset {self.opset}, {sum(self.ops.values())} nodes, "
            f"{self.bn_folded} BatchNorm folded); {self.parity.summary()}"
        )


#: rebuilds the network (with its weights, in eval mode) that a checkpoint describes
ModelBuilder = Callable[[Checkpoint], torch.nn.Module]

#: relative part of the export gate's tolerance (on the largest |logit| of the parity windows)
EXPORT_RTOL = 1e-5


def onnx_from_checkpoint(
    ckpt_path: str | Path,
    out_path: str | Path,
    *,
    build_model: ModelBuilder,
    opset: int = 17,
    parity_inputs: np.ndarray | None = None,
    atol: float = 1e-4,
    rtol: float | None = None,
    golden_count: int = DEFAULT_GOLDEN,
) -> ExportReport:
    """Export a drsn-edge checkpoint to ONNX and gate it: ONNX Runtime vs PyTorch on real windows.

    ``build_model`` rebuilds the network from the checkpoint (the host's model registry:
    :func:`drsn_edge.training.checkpoint.build_model`; export does not import it).
    ``parity_inputs`` default to the checkpoint's golden windows (real, normalised windows from
    the validation span). The gate demands max |logit diff| <= ``atol`` + ``EXPORT_RTOL`` x
    max |logit| (``rtol`` replaces that factor) and the same argmax on every window;
    otherwise :class:`~runtime.errors.ParityError` is raised and nothing is written.
    """
    ckpt = load_checkpoint(ckpt_path)
    model = _build(build_model, ckpt, ckpt_path)
    shape = _sample_shape(ckpt, model)
    windows = _parity_windows(ckpt, parity_inputs, shape)
    proto = _export_graph(_with_features(model), windows[:2], opset)
    folded = _clean_graph(proto)
    session = cpu_session(proto)
    ort = run_outputs(session, windows)
    torch_logits, torch_features = _torch_outputs(model, windows)
    report = check_parity(
        torch_logits,
        ort[OUTPUT_NAME],
        atol=atol,
        # FP32 rounding grows with the logits' scale: a model confident at 50 differs by more than
        # one at 5, with nothing wrong in the graph
        rtol=EXPORT_RTOL if rtol is None else rtol,
        exact_argmax=True,
        reference_name="pytorch",
        candidate_name="onnxruntime",
        fix="the exported graph computes something else than the model: report the model with this message",
    )
    features_report = _features_parity(torch_features, ort.get(FEATURES_NAME), atol)
    golden_x = (
        ckpt.golden_inputs[
            _spread_over_labels(ckpt.golden_labels, max(golden_count, len(ckpt.metadata.classes)))
        ]
        if len(ckpt.golden_inputs)
        else windows[:golden_count]
    )
    golden_out = run_outputs(session, golden_x)
    golden = Golden.from_arrays(golden_x, golden_out[OUTPUT_NAME], golden_out.get(FEATURES_NAME))
    meta = _metadata(
        ckpt,
        model,
        shape,
        golden,
        {
            "opset": opset,
            "exporter": "torch.onnx TorchScript",
            "torch_version": torch.__version__,
            "onnx_version": onnx.__version__,
            "parity": report.as_dict(),
            **({"features_parity": features_report.as_dict()} if features_report else {}),
            "bn_folded": folded,
        },
        ort,
    )
    embed_metadata(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    save_onnx(proto, out_path)
    read_onnx_metadata(out_path)  # the file on disk round-trips through the device's reader
    result = ExportReport(Path(out_path), opset, report, op_histogram(proto), folded, meta)
    log.info("%s", result.summary())
    return result


def _spread_over_labels(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` golden windows taken class by class, so device checks cover every class."""
    y = np.asarray(labels).reshape(-1)
    if len(y) == 0:
        return np.arange(0, dtype=np.int64)
    buckets = [list(np.flatnonzero(y == c)) for c in np.unique(y)]
    order: list[int] = []
    while len(order) < min(count, len(y)):
        for b in buckets:
            if b and len(order) < count:
                order.append(int(b.pop(0)))
    return np.asarray(order, dtype=np.int64)


def _build(build_model: ModelBuilder, ckpt: Checkpoint, path: str | Path) -> torch.nn.Module:
    """Rebuild the network; a state dict that does not fit its model is a corrupt checkpoint."""
    try:
        return build_model(ckpt)
    except RuntimeError as exc:
        raise ModelFileError(
            f"{path}: the weights do not fit model {ckpt.model_name} with {ckpt.model_kwargs} ({exc}); "
            "the checkpoint is corrupt or from an incompatible version: retrain it"
        ) from exc


def _sample_shape(ckpt: Checkpoint, model: torch.nn.Module) -> tuple[int, ...]:
    """The input shape without batch, from the metadata, cross-checked with the model's own."""
    shape = tuple(int(d) for d in ckpt.metadata.input.shape[1:])
    declared = tuple(getattr(model, "input_shape", shape))
    if declared != shape:
        raise ModelFileError(
            f"checkpoint metadata says input (N, {shape}) but model {ckpt.model_name} expects "
            f"(N, {declared}); "
            "the checkpoint was edited or written by a different version: retrain or fix model_kwargs"
        )
    return shape


def _parity_windows(ckpt: Checkpoint, given: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    x = ckpt.golden_inputs if given is None else np.asarray(given)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ModelFileError(
            "the checkpoint holds no golden windows and no parity_inputs were given; pass real windows "
            "(normalised like the training data) to gate the export"
        )
    if tuple(x.shape[1:]) != shape:
        raise ModelFileError(f"parity windows of shape {x.shape} do not fit the model input (N, {shape})")
    return x


def _export_graph(model: torch.nn.Module, example: np.ndarray, opset: int) -> onnx.ModelProto:
    """TorchScript export with a dynamic batch axis, read back as a ModelProto."""
    dummy = torch.from_numpy(np.repeat(example[:1], 2, axis=0) if len(example) < 2 else example)
    names = [OUTPUT_NAME, FEATURES_NAME] if isinstance(model, _WithFeatures) else [OUTPUT_NAME]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter announces itself
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")  # strided shortcut
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *names)},
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
        return onnx.load(str(path))


def _clean_graph(proto: onnx.ModelProto) -> int:
    """Simplify, fold BatchNorm, refuse bad operators, check and infer shapes; return folds."""
    try:
        import onnxslim
    except ImportError:
        log.warning("onnxslim is not installed; exporting without graph simplification")
    else:
        proto.CopyFrom(onnxslim.slim(proto))
    folded = fold_batchnorm(proto)
    check_supported_ops(proto)
    onnx.checker.check_model(proto, full_check=True)
    proto.CopyFrom(onnx.shape_inference.infer_shapes(proto, strict_mode=True))
    _check_io(proto)
    return folded


def _check_io(proto: onnx.ModelProto) -> None:
    inputs, outputs = proto.graph.input, proto.graph.output
    out_names = [o.name for o in outputs]
    if [i.name for i in inputs] != [INPUT_NAME] or out_names not in (
        [OUTPUT_NAME],
        [OUTPUT_NAME, FEATURES_NAME],
    ):
        raise ModelFileError(
            f"exported graph has inputs {[i.name for i in inputs]} and outputs "
            f"{out_names}; expected one 'input' and 'logits' (then 'features')"
        )
    batch = inputs[0].type.tensor_type.shape.dim[0]
    if not batch.dim_param:
        raise ModelFileError(
            "the exported graph has a fixed batch size; the model must not depend on the batch axis"
        )


class _WithFeatures(torch.nn.Module):
    """Exports ``(logits, features)`` from one pass: the head reads the same features it returns."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.forward_features(x)  # type: ignore[operator]
        return self.model.forward_head(features), features  # type: ignore[operator]


def _with_features(model: torch.nn.Module) -> torch.nn.Module:
    """The model with a features output, or as it is when it has no ``forward_features``."""
    if callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None)):
        # eval, as the model: the exporter restores the wrapper's own mode afterwards, recursively
        return _WithFeatures(model).train(model.training)
    log.warning(
        "%s has no forward_features: exporting logits only (novelty scoring off)", type(model).__name__
    )
    return model


def _torch_outputs(
    model: torch.nn.Module, windows: np.ndarray, batch: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch logits and features (an empty features array when the model has none)."""
    wrapped = _with_features(model)
    logits, feats = [], []
    with torch.inference_mode():
        for i in range(0, len(windows), batch):
            out = wrapped(torch.from_numpy(windows[i : i + batch]))
            if isinstance(out, tuple):
                logits.append(out[0].float().numpy())
                feats.append(out[1].float().numpy())
            else:
                logits.append(out.float().numpy())
    return np.concatenate(logits), (np.concatenate(feats) if feats else np.zeros((0, 0), np.float32))


def _features_parity(reference: np.ndarray, candidate: np.ndarray | None, atol: float) -> ParityReport | None:
    """Gate the features output like the logits; argmax of features means nothing, so only |diff| counts."""
    if candidate is None or reference.size == 0:
        return None
    return check_parity(
        reference,
        candidate,
        atol=atol,
        rtol=FEATURES_RTOL,
        exact_argmax=False,  # within tolerance no decisive argmax can flip: the check is |diff| alone
        reference_name="pytorch features",
        candidate_name="onnxruntime features",
        fix="the exported features differ from the model's: report the model with this message",
    )


def _novelty(meta: ModelMetadata, features: np.ndarray | None) -> dict[str, Any] | None:
    """The checkpoint's novelty statistics, checked against the exported features; None without them."""
    if meta.novelty is None:
        return None
    source = f"checkpoint of {meta.model.name}"
    if features is None:
        log.warning(
            "%s carries novelty statistics but the export has no features output; novelty off", source
        )
        return None
    stats = NoveltyStats.from_dict(meta.novelty, source)
    NoveltyScorer(stats, source)  # a covariance that cannot be inverted is refused here, not on a device
    if stats.classes != meta.classes or stats.feature_dim != features.shape[1]:
        raise ModelFileError(
            f"{source}: novelty statistics for classes {stats.classes} and {stats.feature_dim} features "
            f"do not fit the model ({meta.classes}, {features.shape[1]} features); "
            "run `drsn-edge calibrate` again"
        )
    return stats.to_dict()


def _metadata(
    ckpt: Checkpoint,
    model: torch.nn.Module,
    shape: tuple[int, ...],
    golden: Golden,
    export: dict[str, Any],
    outputs: dict[str, np.ndarray],
) -> ModelMetadata:
    meta = ckpt.metadata
    info = meta.model.model_copy(update={"num_parameters": sum(p.numel() for p in model.parameters())})
    tensor = meta.input.model_copy(update={"name": INPUT_NAME, "shape": [-1, *shape], "dtype": "float32"})
    update = {
        "model": info,
        "input": tensor,
        "schema_version": SCHEMA_VERSION,  # what this exporter writes, whatever the checkpoint recorded
        "output_name": OUTPUT_NAME,
        "features_name": FEATURES_NAME if FEATURES_NAME in outputs else None,
        "novelty": _novelty(meta, outputs.get(FEATURES_NAME)),
        "precision": "fp32",
        "golden": golden,
        "export": {**meta.export, **export},
    }
    return ModelMetadata.model_validate(meta.model_copy(update=update).model_dump(by_alias=True))
