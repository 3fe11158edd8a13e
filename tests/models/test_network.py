"""The configurable network and WDCNN: the paper's size, structure, lengths and argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from drsn_edge.models import WDCNN, ResidualShrinkageNetwork, create_model, shrinkage_layers
from drsn_edge.models.wdcnn import MIN_INPUT_LENGTH, flattened_length
from runtime.errors import ConfigError


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_paper_drsn_cw_has_about_11_6k_parameters() -> None:
    assert _params(create_model("drsn_cw_paper", num_classes=10)) == pytest.approx(11_600, rel=0.05)


def test_paper_network_follows_table_ii() -> None:
    model = create_model("drsn_cw_paper")
    assert isinstance(model, ResidualShrinkageNetwork)
    assert (model.stem.out_channels, model.stem.kernel_size, model.stem.stride) == (4, (3,), (2,))
    assert [len(stage) for stage in model.stages] == [4, 4, 4]
    layers = shrinkage_layers(model)
    assert [layer.fc1.out_features for layer in layers] == [layer.channels for layer in layers]
    x = torch.randn(1, 1, 2048)
    feature_map = model.stages(model.stem(x))
    assert feature_map.shape == (1, 16, 128)  # 2048 halved by the stem and by each stage


def test_baselines_are_the_same_network_without_thresholds() -> None:
    cw, cs = create_model("drsn_cw_paper"), create_model("drsn_cs_paper")
    resnet, convnet = create_model("resnet_paper"), create_model("convnet_paper")
    assert _params(resnet) == _params(convnet) < _params(cs) < _params(cw)
    assert all(unit.shortcut is None for stage in convnet.stages for unit in stage)


def test_gap_head_accepts_any_length_and_records_the_configured_one() -> None:
    model = create_model("drsn_cw_paper", input_length=1024).eval()
    assert model.input_shape == (1, 1024)
    for length in (1000, 1024, 4096):
        assert model(torch.randn(2, 1, length)).shape == (2, 10)


def test_multichannel_signals() -> None:
    model = create_model("drsn_cs_s", in_channels=3, num_classes=4)
    assert model.input_shape == (3, 2048)
    assert model(torch.randn(2, 3, 2048)).shape == (2, 4)


def test_kaiming_init_starts_batchnorm_as_identity_and_biases_at_zero() -> None:
    model = create_model("drsn_cw_paper")
    assert torch.equal(model.head[0].weight, torch.ones(16))
    assert (model.stem.bias == 0).all()
    std = float(model.stages[2][1].branch[2].weight.detach().std())
    assert std == pytest.approx((2.0 / (16 * 3)) ** 0.5, rel=0.25)  # He normal, fan-in 16 x 3


def test_wdcnn_layout_and_length_limit() -> None:
    model = WDCNN(num_classes=10)
    assert model.features[0][0].kernel_size == (64,) and model.features[0][0].stride == (16,)
    assert flattened_length(2048) == 3
    assert flattened_length(MIN_INPUT_LENGTH) == 1 and flattened_length(MIN_INPUT_LENGTH - 16) == 0
    for length in (MIN_INPUT_LENGTH, 3000):
        assert WDCNN(input_length=length).eval()(torch.randn(2, 1, length)).shape == (2, 10)
    with pytest.raises(ConfigError, match=f"input_length >= {MIN_INPUT_LENGTH}"):
        WDCNN(input_length=512)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dims": 3}, "dims"),
        ({"stages": []}, "at least one stage"),
        ({"stages": [(8, 0, 1)]}, "stage 0 units"),
        ({"stem": (0, 3, 1)}, "stem channels"),
        ({"unit": "dense"}, "unit"),
        ({"num_classes": 1}, "num_classes"),
        ({"input_size": (28, 28)}, "input size"),
        ({"stages": [(8, 1, 1), (4, 1, 1)]}, "drop channels"),
    ],
)
def test_bad_network_arguments_name_the_problem(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"dims": 1, "in_channels": 1, "num_classes": 3, "input_size": 256,
                               "stem": (4, 3, 1), "stages": [(8, 1, 2)], **kwargs}
    with pytest.raises(ConfigError, match=message):
        ResidualShrinkageNetwork(**args)  # type: ignore[arg-type]
