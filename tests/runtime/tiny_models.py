"""Tiny real ONNX classifiers for the runtime tests, built with the onnx helper API (no torch).

The model is ``logits = reshape(x, (N, C*L)) @ W + b``: small enough to build in milliseconds,
real enough that ONNX Runtime parses, optimises and runs it, and its reference output is one
numpy expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from runtime.artifact import METADATA_KEY, ModelInfo, ModelMetadata, Normalization, SignalSpec, TensorSpec

CLASSES = ["normal", "inner_race", "outer_race"]


@dataclass
class TinyModel:
    path: Path
    metadata: ModelMetadata
    weight: np.ndarray
    bias: np.ndarray

    def reference(self, x: np.ndarray) -> np.ndarray:
        """The logits the ONNX graph must produce, computed in float64."""
        flat = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
        return flat @ self.weight.astype(np.float64) + self.bias.astype(np.float64)


def make_metadata(
    window: int = 64,
    channels: int = 1,
    rate: float = 1000.0,
    hop: int = 32,
    norm: str = "zscore",
    classes: list[str] | None = None,
) -> ModelMetadata:
    classes = classes or CLASSES
    return ModelMetadata(
        model=ModelInfo(name="tiny_matmul"),
        classes=classes,
        healthy_class=classes[0],
        signal=SignalSpec(sample_rate=rate, window=window, hop=hop, channels=channels),
        input=TensorSpec(shape=[-1, channels, window]),
        normalization=Normalization(kind=norm),
    )


def build_tiny_onnx(
    path: Path,
    metadata: ModelMetadata | None = None,
    *,
    fp16: bool = False,
    graph_window: int | None = None,
    with_metadata: bool = True,
    seed: int = 0,
) -> TinyModel:
    """Write a MatMul classifier over (N, C, L) to ``path``; FP16 keeps FP32 inputs and outputs."""
    meta = metadata or make_metadata()
    channels, window = meta.input.shape[1], graph_window or meta.input.shape[2]
    k = len(meta.classes)
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((channels * window, k)) / np.sqrt(channels * window)).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32) * 0.1
    wdt = np.float16 if fp16 else np.float32
    inits = [
        numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(weight.astype(wdt), "W"),
        numpy_helper.from_array(bias.astype(wdt), "b"),
    ]
    nodes = [helper.make_node("Reshape", ["input", "flat_shape"], ["flat"])]
    src = "flat"
    if fp16:
        nodes.append(helper.make_node("Cast", ["flat"], ["flat16"], to=TensorProto.FLOAT16))
        src = "flat16"
    nodes += [helper.make_node("MatMul", [src, "W"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["z"])]
    nodes.append(
        helper.make_node("Cast", ["z"], ["logits"], to=TensorProto.FLOAT)
        if fp16
        else helper.make_node("Identity", ["z"], ["logits"])
    )
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, window])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if with_metadata:
        meta_for_file = meta.model_copy(update={"precision": "fp16" if fp16 else "fp32"})
        helper.set_model_props(model, {METADATA_KEY: meta_for_file.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return TinyModel(path, meta, weight, bias)
