"""Keep the precision-sensitive layers in FP32 when a weakly typed TensorRT builds an FP16 engine.

With ``BuilderFlag.FP16`` (TensorRT <= 10.11, JetPack 6's 10.3 among them) the builder is free to
run every layer in half precision, including the three places :mod:`runtime.onnx_tools.precision_sensitive`
names: the mean of ``|x|`` that sets each threshold, the sigmoid that scales it, and the logits.
The strongly typed path gets the same protection from the FP16 ONNX, where those nodes stay FP32;
here it comes from per-layer constraints instead: ``layer.precision`` and the output types set to
FP32, and ``BuilderFlag.OBEY_PRECISION_CONSTRAINTS`` so the builder may not override them.

Layers are found by the ONNX tensor names the parser gives their outputs, or by their name when
the parser kept the ONNX node's, so the search does not depend on the parser's naming of helper
layers (a Gemm may become a matrix multiply and a bias add; the add carries the output name).
If no layer matches, the build goes on unconstrained with a warning and the post-build parity
gate decides whether the engine is good enough.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from runtime.onnx_tools.precision_sensitive import find_sensitive_nodes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SensitiveTargets:
    """What to look for in the parsed network: ONNX node names and their output tensor names."""

    node_names: frozenset[str]
    tensor_names: frozenset[str]

    @classmethod
    def from_onnx(cls, onnx_path: Path) -> SensitiveTargets:
        model = onnx.load(str(onnx_path), load_external_data=False)
        names = set(find_sensitive_nodes(model).all)
        outputs = {out for node in model.graph.node if node.name in names for out in node.output}
        return cls(frozenset(names), frozenset(outputs))

    def matches(self, layer: Any) -> bool:
        if layer.name in self.node_names:
            return True
        return any(layer.get_output(i).name in self.tensor_names for i in range(layer.num_outputs))


def pin_sensitive_layers(trt: Any, network: Any, config: Any, onnx_path: Path) -> list[str]:
    """Constrain the sensitive layers of a parsed weakly typed network to FP32; return their names."""
    targets = SensitiveTargets.from_onnx(onnx_path)
    if not targets.node_names:
        return []
    pinned: list[str] = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if not targets.matches(layer):
            continue
        layer.precision = trt.DataType.FLOAT
        for out in range(layer.num_outputs):
            layer.set_output_type(out, trt.DataType.FLOAT)
        pinned.append(layer.name)
    if not pinned:
        log.warning(
            "none of the %d precision-sensitive ONNX nodes was found among TensorRT's layers; the FP16 "
            "build is unconstrained and only the parity gate guards its accuracy",
            len(targets.node_names),
        )
        return []
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    log.info("kept %d precision-sensitive layers in FP32: %s", len(pinned), ", ".join(pinned))
    return pinned
