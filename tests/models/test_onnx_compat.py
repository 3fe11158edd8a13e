"""The models export to plain ONNX that TensorRT can take: no Softshrink, no control flow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from drsn_edge.models import create_model, model_info

onnx = pytest.importorskip("onnx", reason="onnx is part of the [export] extra")

FORBIDDEN = {"Softshrink", "Shrink", "If", "Loop", "Scan"}


def _export(name: str, path: Path) -> tuple[torch.nn.Module, list[int]]:
    model = create_model(name).eval()
    shape = model_info(name)["input_shape"]
    torch.onnx.export(model, (torch.randn(1, *shape),), str(path), opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}})
    return model, shape


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("name", ["drsn_cw_paper", "drsn_cs_mnist"])
def test_export_at_opset_17_has_only_plain_operators(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.onnx"
    model, shape = _export(name, path)
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    ops = {node.op_type for node in graph.graph.node}
    assert not ops & FORBIDDEN
    assert {"Sign", "Abs", "Relu", "Sigmoid", "ReduceMean"} <= ops  # the soft threshold is really there

    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(3, *shape)  # a batch size other than the traced one
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-4, atol=1e-5)
