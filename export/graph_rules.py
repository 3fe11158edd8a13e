"""Which ONNX operators a drsn-edge model may contain, and the check that enforces it.

TensorRT rejects or runs slowly what ONNX Runtime accepts without a word: ``Shrink`` (what
``torch.nn.Softshrink`` exports to), control flow (``If``, ``Loop``, ``Scan``) and operators of
vendor domains. Catching them at export time, on the host, beats a parser error on a Jetson.
"""

from __future__ import annotations

import collections
import logging

import onnx

from runtime.errors import ModelFileError

log = logging.getLogger(__name__)

#: op type -> why it is refused
FORBIDDEN_OPS: dict[str, str] = {
    "Shrink": "Softshrink exports to Shrink, which TensorRT does not fuse; use sign(x) * relu(|x| - tau)",
    "If": "data-dependent control flow; TensorRT builds it as slow conditional layers",
    "Loop": "data-dependent control flow; not supported well by TensorRT",
    "Scan": "recurrent control flow; not supported well by TensorRT",
    "SequenceConstruct": "sequence types are not supported by TensorRT",
    "SplitToSequence": "sequence types are not supported by TensorRT",
}
_STANDARD_DOMAINS = ("", "ai.onnx")


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    """Count of each operator type in the main graph, sorted by name."""
    counts = collections.Counter(n.op_type for n in model.graph.node)
    return dict(sorted(counts.items()))


def check_supported_ops(model: onnx.ModelProto, source: str = "the exported graph") -> None:
    """Raise :class:`ModelFileError` listing every operator TensorRT or ONNX Runtime would trip on."""
    problems = []
    for node in model.graph.node:
        if node.op_type in FORBIDDEN_OPS:
            problems.append(f"{node.op_type} ({node.name or 'unnamed'}): {FORBIDDEN_OPS[node.op_type]}")
        elif node.domain not in _STANDARD_DOMAINS:
            problems.append(
                f"{node.domain}::{node.op_type} ({node.name or 'unnamed'}): not a standard ONNX op"
            )
    if problems:
        raise ModelFileError(
            f"{source} contains operators that TensorRT/ONNX Runtime do not handle well: "
            + "; ".join(sorted(set(problems)))
            + ". Rewrite those layers with elementary operations in the model code and export again"
        )
