"""Every registered network exposes the pooled features in front of its final layer.

Novelty scores are distances in this space, and the ONNX export adds it as a second output, so
the contract must hold for the whole registry: ``forward_head(forward_features(x))`` is exactly
``forward(x)`` and the width is ``feature_dim``.
"""

from __future__ import annotations

import pytest
import torch

from drsn_edge.models import create_model, list_models, model_info


@pytest.mark.parametrize("name", list_models())
def test_features_feed_the_final_layer_of_every_model(name: str) -> None:
    model = create_model(name, num_classes=4).eval()
    x = torch.randn(3, *model_info(name)["input_shape"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
        again = model.forward_head(feats)
    assert feats.shape == (3, model.feature_dim)
    assert torch.isfinite(feats).all()
    torch.testing.assert_close(again, logits, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["drsn_cw_paper", "wdcnn", "drsn_cs_mnist"])
def test_features_differ_between_inputs(name: str) -> None:
    """A constant feature vector would make every distance zero: the features must see the input."""
    model = create_model(name, num_classes=4).eval()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, *model_info(name)["input_shape"], generator=gen)
    x[1] *= 5.0
    with torch.no_grad():
        feats = model.forward_features(x)
    assert not torch.allclose(feats[0], feats[1])


def test_paper_network_has_16_features_and_wdcnn_100() -> None:
    assert create_model("drsn_cw_paper").feature_dim == 16
    assert create_model("wdcnn").feature_dim == 100
