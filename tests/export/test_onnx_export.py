"""Checkpoint -> ONNX for every registered model: parity with PyTorch, metadata, operators, batch axis."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from drsn_edge.models import list_models
from drsn_edge.training.checkpoint import build_model, load_checkpoint
from export.graph_rules import FORBIDDEN_OPS, check_supported_ops
from export.onnx_export import onnx_from_checkpoint
from runtime.artifact import read_onnx_metadata
from runtime.errors import ModelFileError, ParityError
from runtime.onnx_tools.ort_run import onnx_logits
from tests.support.model_files import ExportCache, make_checkpoint, windows_for


@pytest.mark.parametrize("name", list_models())
def test_export_matches_pytorch_and_carries_metadata(name: str, exports: ExportCache) -> None:
    path = exports.onnx(name)
    ckpt = load_checkpoint(exports.checkpoint(name))
    meta = read_onnx_metadata(path)

    # the device-side reader sees what training wrote, plus export facts
    assert meta.model.name == name and meta.classes == ckpt.metadata.classes
    assert meta.input.name == "input" and meta.output_name == "logits" and meta.precision == "fp32"
    assert meta.input.shape == [-1, *ckpt.golden_inputs.shape[1:]]
    assert meta.export["parity"]["max_abs_diff"] <= 1e-4 and meta.export["parity"]["argmax_agreement"] == 1.0
    assert meta.model.num_parameters == sum(p.numel() for p in ckpt.build_model().parameters())

    # golden windows are real checkpoint windows with the file's own FP32 logits
    x, logits = meta.golden.arrays()
    np.testing.assert_array_equal(x, ckpt.golden_inputs[: len(x)])
    np.testing.assert_allclose(onnx_logits(path, x), logits, atol=1e-6)

    # and those logits are PyTorch's, within the gate
    with torch.inference_mode():
        ref = ckpt.build_model()(torch.from_numpy(x)).numpy()
    assert np.abs(ref - logits).max() <= 1e-4
    assert (ref.argmax(1) == logits.argmax(1)).all()


@pytest.mark.parametrize("name", list_models())
def test_graph_is_tensorrt_friendly(name: str, exports: ExportCache) -> None:
    model = onnx.load(str(exports.onnx(name)))
    ops = {n.op_type for n in model.graph.node}
    assert not ops & set(FORBIDDEN_OPS), ops
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    onnx.checker.check_model(model, full_check=True)
    # a BatchNorm that is the only consumer of a Conv or Gemm output is folded into it
    producers = {o: n for n in model.graph.node for o in n.output}
    uses = collections.Counter(i for n in model.graph.node for i in n.input)
    bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    foldable = [
        bn.name
        for bn in bns
        if (p := producers.get(bn.input[0])) is not None
        and p.op_type in ("Conv", "Gemm")
        and uses[bn.input[0]] == 1
    ]
    assert foldable == []


@pytest.mark.parametrize("name", ["drsn_cw_paper", "drsn_cs_mnist"])
def test_batch_axis_is_dynamic(name: str, exports: ExportCache) -> None:
    path = exports.onnx(name)
    shape = tuple(read_onnx_metadata(path).input.shape[1:])
    x, _ = windows_for(shape, 5, seed=7)
    whole = onnx_logits(path, x)
    one_by_one = np.concatenate([onnx_logits(path, x[i : i + 1]) for i in range(5)])
    assert whole.shape == (5, 4)
    np.testing.assert_allclose(whole, one_by_one, atol=1e-5)


def test_parity_gate_refuses_a_tolerance_the_export_cannot_meet(tmp_path: Path) -> None:
    ckpt = tmp_path / "m.ckpt"
    make_checkpoint(ckpt, "drsn_cw_mnist")
    out = tmp_path / "m.onnx"
    with pytest.raises(ParityError, match=r"worst|window") as err:
        onnx_from_checkpoint(ckpt, out, build_model=build_model, atol=0.0, rtol=0.0)
    assert "argmax" in str(err.value)
    assert not out.exists(), "a model that failed its gate must not be written"


def test_parity_windows_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "m.ckpt"
    make_checkpoint(ckpt, "drsn_cs_mnist")
    with pytest.raises(ModelFileError, match="do not fit"):
        onnx_from_checkpoint(
            ckpt,
            tmp_path / "m.onnx",
            build_model=build_model,
            parity_inputs=np.zeros((2, 1, 27, 28), np.float32),
        )


def test_a_softshrink_graph_is_refused() -> None:
    node = onnx.helper.make_node("Shrink", ["x"], ["y"], name="shrink", lambd=0.5)
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )
    with pytest.raises(ModelFileError, match=r"Shrink.*sign"):
        check_supported_ops(onnx.helper.make_model(graph))


def test_export_tolerance_scales_with_the_logits(tmp_path: Path) -> None:
    """A confident model's logits are large; FP32 rounding between runtimes grows with them."""
    from runtime.parity import compare_logits

    ref = np.array([[60.0, -20.0, 3.0]], np.float32)
    cand = ref + np.float32(1.5e-4)  # beyond atol 1e-4 alone, well inside 1e-4 + 1e-5 x 60
    from export.onnx_export import EXPORT_RTOL

    assert not compare_logits(ref, cand, atol=1e-4).within_tolerance
    assert compare_logits(ref, cand, atol=1e-4, rtol=EXPORT_RTOL).within_tolerance
