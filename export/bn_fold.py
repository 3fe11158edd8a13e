"""Fold inference-mode BatchNormalization into the Conv or Gemm that feeds it.

The TorchScript exporter folds Conv -> BatchNorm itself but leaves Linear -> BatchNorm1d (the
threshold sub-network of every shrinkage layer) as two nodes. Folding is exact in real
arithmetic (``y = s * (W x + b - mean) + beta`` with ``s = gamma / sqrt(var + eps)`` is again an
affine map); the new weights are computed in float64 so the only difference left is float32
rounding of the product. Only the simple, safe pattern is folded: the producer's weights are
constants and its output feeds nothing but the BatchNormalization. Weights shared with other
nodes (an exporter may deduplicate equal tensors) get a private folded copy.
"""

from __future__ import annotations

import collections
import logging

import numpy as np
import onnx
from onnx import helper, numpy_helper

log = logging.getLogger(__name__)


def fold_batchnorm(model: onnx.ModelProto) -> int:
    """Fold every foldable BatchNormalization in place; return how many were folded."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: n for n in graph.node for out in n.output}
    uses = collections.Counter(name for n in graph.node for name in n.input)
    uses.update(o.name for o in graph.output)
    folded = []
    for bn in graph.node:
        prev = producers.get(bn.input[0]) if bn.op_type == "BatchNormalization" else None
        if prev is None or not _foldable(prev, bn, inits, uses):
            continue
        scale, shift = _affine_of(bn, inits)
        _fold_into(prev, scale, shift, inits, graph)
        prev.output[0] = bn.output[0]
        folded.append(bn)
    for bn in folded:
        graph.node.remove(bn)
    _drop_unused_initializers(graph)
    if folded:
        log.info("folded %d BatchNormalization nodes into the preceding Conv/Gemm", len(folded))
    return len(folded)


def _foldable(
    prev: onnx.NodeProto,
    bn: onnx.NodeProto,
    inits: dict[str, onnx.TensorProto],
    uses: collections.Counter[str],
) -> bool:
    if len(bn.output) != 1 or any(name not in inits for name in bn.input[1:5]):
        return False
    if uses[prev.output[0]] != 1 or prev.input[1] not in inits:
        return False
    bias = prev.input[2] if len(prev.input) > 2 and prev.input[2] else None
    if bias is not None and bias not in inits:
        return False
    if prev.op_type == "Conv":
        return True
    if prev.op_type == "Gemm":
        attrs = {a.name: helper.get_attribute_value(a) for a in prev.attribute}
        return int(attrs.get("transA", 0)) == 0
    return False


def _affine_of(bn: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) in float64 such that BN(y) = s * y + t along the channel axis."""
    gamma, beta, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:5])
    eps = next((helper.get_attribute_value(a) for a in bn.attribute if a.name == "epsilon"), 1e-5)
    s = gamma / np.sqrt(var + float(eps))
    return s, beta - mean * s


def _fold_into(
    prev: onnx.NodeProto,
    s: np.ndarray,
    t: np.ndarray,
    inits: dict[str, onnx.TensorProto],
    graph: onnx.GraphProto,
) -> None:
    w = numpy_helper.to_array(inits[prev.input[1]]).astype(np.float64)
    attrs = {a.name: helper.get_attribute_value(a) for a in prev.attribute}
    bias_name = prev.input[2] if len(prev.input) > 2 and prev.input[2] else None
    bias = numpy_helper.to_array(inits[bias_name]).astype(np.float64).reshape(-1) if bias_name else 0.0
    if prev.op_type == "Conv":
        w = w * s.reshape(-1, *([1] * (w.ndim - 1)))
    else:
        w = w * (s[:, None] if int(attrs.get("transB", 0)) else s[None, :])
        bias = float(attrs.get("beta", 1.0)) * bias
        _set_attr(prev, "beta", 1.0)
    new_bias = np.broadcast_to(bias, s.shape) * s + t
    while len(prev.input) < 3:
        prev.input.append("")
    for index, value in ((1, w), (2, new_bias)):
        name = f"{prev.output[0]}_folded_{'weight' if index == 1 else 'bias'}"
        prev.input[index] = name
        _replace_init(graph, inits, name, value)


def _set_attr(node: onnx.NodeProto, name: str, value: float) -> None:
    for a in node.attribute:
        if a.name == name:
            node.attribute.remove(a)
            break
    node.attribute.append(helper.make_attribute(name, value))


def _replace_init(
    graph: onnx.GraphProto, inits: dict[str, onnx.TensorProto], name: str, value: np.ndarray
) -> None:
    tensor = numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name)
    if name in inits:
        inits[name].CopyFrom(tensor)
    else:
        graph.initializer.append(tensor)
        inits[name] = graph.initializer[-1]


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for n in graph.node for name in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
