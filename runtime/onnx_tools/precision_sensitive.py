"""Find the nodes of a DRSN graph that must stay FP32 when the rest runs in FP16.

Three places lose accuracy in half precision:

* the long mean of ``|x|`` that sets each shrinkage threshold: a sum over thousands of samples
  in FP16 (11-bit mantissa) drifts, and the threshold scales every value of the block;
* the sigmoid that turns the attention logits into the threshold scale alpha: its saturated
  tails round to exactly 0 or 1 in FP16;
* the final logits (the Gemm/MatMul producing the graph output), whose small differences decide
  the argmax and therefore the alert.

The search works on operator patterns, not on names, so it holds for every registered model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import onnx

log = logging.getLogger(__name__)

REDUCTIONS = frozenset({"ReduceMean", "GlobalAveragePool", "ReduceSum", "ReduceL1"})
_PASS_THROUGH = frozenset({"Flatten", "Reshape", "Identity", "Squeeze", "Unsqueeze"})


@dataclass(frozen=True)
class SensitiveNodes:
    """Names of the nodes to keep in FP32, grouped by why."""

    abs_means: tuple[str, ...]
    sigmoids: tuple[str, ...]
    logits: tuple[str, ...]

    @property
    def all(self) -> list[str]:
        return [*self.abs_means, *self.sigmoids, *self.logits]

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "abs_means": list(self.abs_means),
            "sigmoids": list(self.sigmoids),
            "logits": list(self.logits),
        }


def name_all_nodes(model: onnx.ModelProto) -> None:
    """Give every unnamed node a unique name: block lists refer to nodes by name."""
    taken = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{i}"
            while candidate in taken:
                candidate += "_"
            node.name = candidate
            taken.add(candidate)


def find_sensitive_nodes(model: onnx.ModelProto) -> SensitiveNodes:
    """Locate the precision-sensitive nodes (names them first if needed)."""
    name_all_nodes(model)
    producers = {out: n for n in model.graph.node for out in n.output}
    abs_means = [
        n.name
        for n in model.graph.node
        if n.op_type == "ReduceL1" or (n.op_type in REDUCTIONS and _reduces_abs(n, producers))
    ]
    sigmoids = [n.name for n in model.graph.node if n.op_type == "Sigmoid"]
    logits = _logit_nodes(model, producers)
    found = SensitiveNodes(tuple(abs_means), tuple(sigmoids), tuple(logits))
    log.debug("precision-sensitive nodes: %s", found.as_dict())
    return found


def _reduces_abs(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> bool:
    """True when ``node`` averages |x|, directly or through further reductions (channel-shared mean)."""
    current: onnx.NodeProto | None = node
    while current is not None and current.op_type in REDUCTIONS | _PASS_THROUGH:
        current = producers.get(current.input[0])
    return current is not None and current.op_type == "Abs"


def _logit_nodes(model: onnx.ModelProto, producers: dict[str, onnx.NodeProto]) -> list[str]:
    """The Gemm/MatMul (and a bias Add after a MatMul) that produce each graph output."""
    names: list[str] = []
    for out in model.graph.output:
        node = producers.get(out.name)
        while node is not None and node.op_type in _PASS_THROUGH:
            node = producers.get(node.input[0])
        if node is None:
            continue
        if node.op_type == "Add":
            matmul = next(
                (producers[i] for i in node.input if i in producers and producers[i].op_type == "MatMul"),
                None,
            )
            if matmul is not None:
                names += [matmul.name, node.name]
        elif node.op_type in ("Gemm", "MatMul"):
            names.append(node.name)
    return names
