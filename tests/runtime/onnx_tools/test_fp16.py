"""FP32 -> FP16 ONNX: sensitive nodes stay FP32 (read from the graph), IO stays FP32, the gate holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from drsn_edge.models import list_models
from runtime.artifact import read_onnx_metadata
from runtime.errors import ModelFileError, ParityError
from runtime.onnx_tools.fp16 import fp16_from_onnx
from runtime.onnx_tools.ort_run import onnx_logits
from tests.support.model_files import ExportCache, windows_for

FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


def _types(model: onnx.ModelProto) -> dict[str, int]:
    g = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def _upstream(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> onnx.NodeProto | None:
    """First producer above ``node`` that is not a Cast or another reduction."""
    cur = producers.get(node.input[0])
    while cur is not None and cur.op_type in ("Cast", "ReduceMean", "GlobalAveragePool"):
        cur = producers.get(cur.input[0])
    return cur


@pytest.mark.parametrize("name", list_models())
def test_fp16_keeps_sensitive_nodes_fp32_and_agrees(name: str, exports: ExportCache, tmp_path: Path) -> None:
    src = exports.onnx(name)
    meta = read_onnx_metadata(src)
    x, y = windows_for(tuple(meta.input.shape[1:]), 24, seed=11)
    dst = tmp_path / "m.fp16.onnx"
    report = fp16_from_onnx(src, dst, eval_windows=x, eval_labels=y)

    model = onnx.load(str(dst))
    types = _types(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    abs_means = [
        n
        for n in model.graph.node
        if n.op_type == "ReduceMean" and (u := _upstream(n, producers)) is not None and u.op_type == "Abs"
    ]
    sigmoids = [n for n in model.graph.node if n.op_type == "Sigmoid"]
    logits_node = producers["logits"]
    for node in [*abs_means, *sigmoids, logits_node]:
        assert types[node.input[0]] == FLOAT and types[node.output[0]] == FLOAT, node.name
    assert logits_node.op_type == "Gemm" and all(types[i] == FLOAT for i in logits_node.input)
    if "drsn" in name:
        assert abs_means and sigmoids
    # the bulk really is FP16, and the interface is not
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(types[n.input[1]] == FLOAT16 for n in convs)
    assert model.graph.input[0].type.tensor_type.elem_type == FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == FLOAT

    # the gate's figures are true and stored
    ref, low = onnx_logits(src, x), onnx_logits(dst, x)
    assert report.argmax_agreement == pytest.approx(np.mean(ref.argmax(1) == low.argmax(1)))
    assert report.argmax_agreement >= 0.995
    assert report.accuracy_drop_points is not None and report.accuracy_drop_points <= 0.2
    stored = read_onnx_metadata(dst)
    assert stored.precision == "fp16" and stored.classes == meta.classes
    assert stored.export["fp16_gate"]["n"] == 24
    assert stored.export["fp16_gate"]["argmax_agreement"] == report.argmax_agreement


def test_fp16_defaults_to_the_golden_windows(exports: ExportCache, tmp_path: Path) -> None:
    report = fp16_from_onnx(exports.onnx("drsn_cw_mnist"), tmp_path / "g.fp16.onnx")
    assert report.n == 8 and report.accuracy_fp32 is None


def _overflowing_model(path: Path) -> None:
    """A model FP16 genuinely breaks: a 3e4 Conv weight exceeds what the converter keeps (1e4).

    FP32 logits are [3e4 * x, 2e4] (class 0 for x = 1); with the weight clipped they become
    [1e4, 2e4] and the argmax flips to class 1.
    """
    from onnx import helper, numpy_helper

    from runtime.artifact import Golden, ModelInfo, ModelMetadata, SignalSpec, TensorSpec
    from runtime.onnx_tools.metadata_io import embed_metadata, save_onnx

    inits = [
        numpy_helper.from_array(np.full((1, 1, 1), 3e4, np.float32), "w"),
        numpy_helper.from_array(np.array([[1.0, 0.0]], np.float32), "W"),
        numpy_helper.from_array(np.array([0.0, 2e4], np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["z"], name="conv"),
        helper.make_node("Flatten", ["z"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "W", "b"], ["logits"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "overflow",
        [helper.make_tensor_value_info("input", FLOAT, ["batch", 1, 1])],
        [helper.make_tensor_value_info("logits", FLOAT, ["batch", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.ones((4, 1, 1), np.float32)
    meta = ModelMetadata(
        model=ModelInfo(name="overflow"),
        classes=["a", "b"],
        healthy_class="a",
        signal=SignalSpec(sample_rate=1.0, window=1, hop=1),
        input=TensorSpec(shape=[-1, 1, 1]),
        golden=Golden.from_arrays(x, onnx_logits(model, x)),
    )
    embed_metadata(model, meta)
    save_onnx(model, path)


@pytest.mark.filterwarnings("ignore:the float32 number:UserWarning")
def test_fp16_gate_refuses_a_conversion_that_changes_predictions(tmp_path: Path) -> None:
    src, dst = tmp_path / "overflow.onnx", tmp_path / "overflow.fp16.onnx"
    _overflowing_model(src)
    x = np.ones((4, 1, 1), np.float32)
    assert (onnx_logits(src, x).argmax(1) == 0).all()
    with pytest.raises(ParityError, match=r"agreement 0\.00%.*drop 100\.00 points"):
        fp16_from_onnx(src, dst, eval_windows=x, eval_labels=np.zeros(4, np.int64))
    assert not dst.exists()
    with pytest.raises(ParityError, match="FP16 gate failed"):  # golden windows alone catch it too
        fp16_from_onnx(src, dst)


def test_already_fp16_and_misshapen_windows_are_refused(exports: ExportCache, tmp_path: Path) -> None:
    fp16 = tmp_path / "a.fp16.onnx"
    fp16_from_onnx(exports.onnx("resnet_mnist"), fp16)
    with pytest.raises(ModelFileError, match="already fp16"):
        fp16_from_onnx(fp16, tmp_path / "b.onnx")
    with pytest.raises(ModelFileError, match="do not fit"):
        fp16_from_onnx(exports.onnx("resnet_mnist"), tmp_path / "c.onnx", eval_windows=np.zeros((2, 1, 28)))


def test_near_tie_flips_are_forgiven_and_confident_flips_are_not() -> None:
    """Worked by hand: 4 windows, FP32 logits with two confident and two near-tie decisions."""
    from runtime.onnx_tools.fp16 import argmax_agreement

    ref = np.array([[5.0, 1.0], [2.0, 1.99], [0.0, 4.0], [3.0, 2.95]], np.float32)
    # windows 1 and 3 flip with margins 0.01 and 0.05, under 2% of 2.0 and of 3.0: forgiven
    low = np.array([[5.0, 1.0], [1.99, 2.0], [0.0, 4.0], [2.95, 3.0]], np.float32)
    assert argmax_agreement(ref, low) == (0.5, 1.0, 2)
    # a confident window flipping (margin 4 of 5) is a defect, whatever the near-ties do
    low[0] = [1.0, 5.0]
    assert argmax_agreement(ref, low) == (0.25, 0.75, 2)
