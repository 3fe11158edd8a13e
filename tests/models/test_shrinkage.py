"""The shrinkage layer: threshold shapes and bounds, exact soft thresholding, recording."""

from __future__ import annotations

import pytest
import torch

from drsn_edge.models import Shrinkage, create_model, recording, shrinkage_layers, soft_threshold
from runtime.errors import ConfigError


def _input(dims: int, n: int = 5, c: int = 6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(dims)
    shape = (n, c, 64) if dims == 1 else (n, c, 9, 11)
    return torch.randn(shape, generator=gen) * 2.0


def test_soft_threshold_zeroes_the_band_and_shrinks_the_rest() -> None:
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    out = soft_threshold(x, torch.tensor(1.0))
    assert out.tolist() == [-2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize(("mode", "tau_channels"), [("cw", 6), ("cs", 1)])
def test_threshold_shape_per_sample_and_channel(dims: int, mode: str, tau_channels: int) -> None:
    layer = Shrinkage(6, mode=mode)  # type: ignore[arg-type]
    layer.record = True
    x = _input(dims)
    out = layer(x)
    assert out.shape == x.shape
    assert layer.last_tau is not None and layer.last_abs_mean is not None
    assert layer.last_tau.shape == (5, tau_channels)
    assert layer.last_abs_mean.shape == (5, 6)
    # thresholds differ between samples: the attention is per sample, not a learnt constant
    assert not torch.allclose(layer.last_tau[0], layer.last_tau[1])


@pytest.mark.parametrize("mode", ["cw", "cs"])
@pytest.mark.parametrize("train", [True, False])
def test_thresholds_are_positive_and_never_exceed_mean_magnitude(mode: str, train: bool) -> None:
    layer = Shrinkage(6, mode=mode).train(train)  # type: ignore[arg-type]
    x = _input(1)
    tau, abs_mean = layer.thresholds(x.abs())
    bound = abs_mean if mode == "cw" else abs_mean.mean(dim=1, keepdim=True)
    assert (tau > 0).all()
    assert (tau <= bound).all()
    assert torch.allclose(abs_mean, x.abs().mean(dim=2))


def test_threshold_bound_holds_when_the_sigmoid_saturates() -> None:
    layer = Shrinkage(4).eval()
    with torch.no_grad():
        layer.fc2.bias.fill_(100.0)  # alpha == 1.0 in float32
    x = _input(1, c=4)
    tau, abs_mean = layer.thresholds(x.abs())
    assert (tau <= abs_mean).all()
    assert torch.allclose(tau, abs_mean)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("mode", ["cw", "cs"])
def test_layer_output_is_exact_soft_thresholding_with_its_own_tau(dims: int, mode: str) -> None:
    layer = Shrinkage(6, mode=mode).eval()  # type: ignore[arg-type]
    x = _input(dims)
    with recording(layer):
        out = layer(x)
    assert layer.last_tau is not None
    tau = layer.last_tau.reshape(*layer.last_tau.shape, *([1] * dims)).expand_as(x)
    small = x.abs() <= tau
    assert small.any() and (~small).any()
    assert (out[small] == 0).all()
    big = ~small
    torch.testing.assert_close(out[big].abs(), x[big].abs() - tau[big], rtol=0, atol=1e-6)
    assert torch.equal(torch.sign(out[big]), torch.sign(x[big]))


def test_gradients_reach_the_threshold_subnetwork() -> None:
    layer = Shrinkage(6).train()
    layer(_input(1)).square().sum().backward()
    for p in (layer.fc1.weight, layer.fc2.weight, layer.fc2.bias):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_recording_is_off_by_default_and_restored_after_the_block() -> None:
    model = create_model("drsn_cw_paper").eval()
    layers = shrinkage_layers(model)
    layers[0].record = True  # a flag set by the caller survives the block
    model(torch.randn(2, 1, 2048))
    assert layers[1].last_tau is None
    with recording(model) as recorded:
        model(torch.randn(2, 1, 2048))
    assert recorded == layers
    assert all(layer.last_tau is not None for layer in layers)
    assert [layer.record for layer in layers] == [True] + [False] * (len(layers) - 1)


def test_shrinkage_layers_are_listed_in_forward_order() -> None:
    layers = shrinkage_layers(create_model("drsn_cw_paper"))
    assert [layer.channels for layer in layers] == [4] * 4 + [8] * 4 + [16] * 4
    assert shrinkage_layers(create_model("resnet_paper")) == []


def test_reduction_sets_the_hidden_width() -> None:
    assert Shrinkage(32, reduction=4).fc1.out_features == 8
    assert Shrinkage(3, reduction=4).fc1.out_features == 1


@pytest.mark.parametrize("kwargs", [{"mode": "xx"}, {"channels": 0}, {"reduction": 0}])
def test_bad_arguments_raise_config_error(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"channels": 4, **kwargs}
    with pytest.raises(ConfigError):
        Shrinkage(**args)  # type: ignore[arg-type]
