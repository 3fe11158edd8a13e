"""Threshold statistics read from real forward passes of DRSN models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drsn_edge.models import create_model
from drsn_edge.study.thresholds import aggregate, block_stats, flatten


def _calibrated(name: str, x: np.ndarray) -> torch.nn.Module:
    """A fresh model whose BatchNorm statistics come from ``x``, as after training (eval mode)."""
    torch.manual_seed(0)
    model = create_model(name, input_length=x.shape[-1])
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average: one pass gives the exact statistics
    with torch.no_grad():
        model.train()(torch.from_numpy(x))
    return model.eval()


@pytest.mark.parametrize("name", ["drsn_cw_paper", "drsn_cs_paper"])
def test_block_stats_per_shrinkage_layer(name: str) -> None:
    x = np.random.default_rng(0).standard_normal((20, 1, 512)).astype(np.float32)
    model = _calibrated(name, x)
    stats = block_stats(model, x, batch_size=8)  # several batches, so the averages are accumulated
    assert [s["block"] for s in stats] == list(range(1, 13))
    assert [s["stage"] for s in stats] == [1] * 4 + [2] * 4 + [3] * 4
    for s in stats:
        assert s["mode"] == name.split("_")[1]
        assert 0.0 < s["tau_ratio"] < 1.0  # tau = sigmoid(.) * mean|x|
        assert 0.0 < s["zero_fraction"] < 1.0
        assert 0.0 < s["tau"] < s["abs_mean"]  # the layer can never silence a whole channel


def test_zero_fraction_matches_the_soft_threshold_output() -> None:
    x = np.random.default_rng(1).standard_normal((6, 1, 256)).astype(np.float32)
    model = _calibrated("drsn_cw_paper", x)
    seen = []
    layer = next(m for m in model.modules() if type(m).__name__ == "Shrinkage")
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(float((out == 0).float().mean())))
    stats = block_stats(model, x)
    handle.remove()
    assert stats[0]["zero_fraction"] == pytest.approx(seen[0])


def test_models_without_shrinkage_have_no_blocks() -> None:
    model = create_model("resnet_paper", input_length=256)
    assert block_stats(model, np.zeros((2, 1, 256), np.float32)) == []


def test_aggregate_averages_seeds_per_block() -> None:
    rows = [
        {
            "model": "m",
            "noise": "pink",
            "snr_db": -4.0,
            "seed": s,
            "thresholds": [
                {
                    "block": 1,
                    "stage": 1,
                    "mode": "cw",
                    "channels": 4,
                    "layer": "x",
                    "tau_ratio": r,
                    "zero_fraction": 0.5,
                    "tau": 1.0,
                    "abs_mean": 2.0,
                }
            ],
        }
        for s, r in ((0, 0.2), (1, 0.4))
    ]
    agg = aggregate(flatten(rows, "train_test"))
    assert len(agg) == 1
    assert agg[0]["seeds"] == 2
    assert agg[0]["tau_ratio"] == pytest.approx(0.3)
    assert agg[0]["tau_ratio_std"] == pytest.approx(0.1 * 2**0.5)  # sample std over two seeds
