"""Every registered model builds, runs and trains; names and options fail with clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from drsn_edge.models import create_model, list_models, model_info
from runtime.errors import ConfigError

REQUIRED = ["drsn_cw_paper", "drsn_cs_paper", "resnet_paper", "convnet_paper", "drsn_cw_mnist",
            "resnet_mnist", "drsn_cw_cifar", "resnet_cifar", "drsn_cw_s", "drsn_cw_m", "drsn_cw_l",
            "drsn_cs_m", "resnet_m", "wdcnn"]


def test_the_required_names_are_registered() -> None:
    assert set(REQUIRED) <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_forward_in_train_and_eval_mode(name: str) -> None:
    info = model_info(name)
    model = create_model(name, num_classes=5)
    assert list(model.input_shape) == info["input_shape"]
    assert model.layout == info["layout"] == ("NCW" if info["dims"] == 1 else "NCHW")
    assert model.num_classes == 5
    gen = torch.Generator().manual_seed(0)
    for train in (True, False):
        model.train(train)
        for batch in (1, 3):
            with torch.no_grad():
                out = model(torch.randn(batch, *info["input_shape"], generator=gen))
            assert out.shape == (batch, 5)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", list_models())
def test_gradients_reach_the_first_convolution(name: str) -> None:
    model = create_model(name, num_classes=3).train()
    x = torch.randn(4, *model_info(name)["input_shape"])
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0])).backward()
    first = next(m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0


def test_a_training_batch_of_one_leaves_running_statistics_alone() -> None:
    model = create_model("drsn_cw_paper").train()
    threshold_bn = model.stages[0][0].shrinkage.bn
    before = threshold_bn.running_mean.clone()
    model(torch.randn(1, 1, 2048))
    assert torch.equal(threshold_bn.running_mean, before)
    model(torch.randn(2, 1, 2048))
    assert not torch.equal(threshold_bn.running_mean, before)


def test_model_info_describes_without_building() -> None:
    info = model_info("drsn_cw_cifar")
    assert info["dims"] == 2 and info["family"] == "drsn-cw" and info["input_shape"] == [3, 32, 32]
    assert set(info["options"]) == {"num_classes", "in_channels", "image_size"}
    assert model_info("drsn_cw_l")["options"]["width"] > model_info("drsn_cw_s")["options"]["width"]
    json.dumps([model_info(n) for n in list_models()])  # plain data, fit for a CLI listing


def test_options_survive_a_json_round_trip_like_a_checkpoint() -> None:
    kwargs = json.loads(json.dumps({"num_classes": 4, "image_size": (20, 24), "in_channels": 2}))
    a, b = create_model("drsn_cs_mnist", **kwargs), create_model("drsn_cs_mnist", **kwargs)
    assert a.input_shape == (2, 20, 24)
    b.load_state_dict(a.state_dict())


def test_scalable_family_grows_with_width_and_depth() -> None:
    def count(name: str, **kw: int) -> int:
        return sum(p.numel() for p in create_model(name, **kw).parameters())

    assert count("drsn_cw_s") < count("drsn_cw_m") < count("drsn_cw_l")
    assert count("drsn_cw_s", width=16) > count("drsn_cw_s")
    deeper = create_model("resnet_s", depth=3)
    assert [len(stage) for stage in deeper.stages] == [3, 3, 3]


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="unknown model 'drsn_xx'") as err:
        create_model("drsn_xx")
    assert "drsn_cw_paper" in str(err.value) and "wdcnn" in str(err.value)
    with pytest.raises(ConfigError, match="unknown model"):
        model_info("nope")


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="has no option 'widht'") as err:
        create_model("drsn_cw_s", widht=8)
    assert "width" in str(err.value)
    with pytest.raises(ConfigError, match="has no option 'width'"):
        create_model("drsn_cw_paper", width=8)  # the paper's configuration is fixed
    with pytest.raises(ConfigError, match="has no option 'unit'"):
        create_model("drsn_cw_paper", unit="cs")  # the name pins the unit


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("drsn_cw_s", {"width": 0}, "width"),
        ("drsn_cw_s", {"width": "8"}, "width"),
        ("drsn_cw_s", {"depth": 1.5}, "depth"),
        ("drsn_cw_paper", {"input_length": -5}, "input_length"),
        ("drsn_cw_paper", {"num_classes": 1}, "num_classes"),
        ("drsn_cw_mnist", {"image_size": [28]}, "image_size"),
        ("drsn_cw_s", {"input_length": 0}, "input_length"),
        ("wdcnn", {"input_length": 256}, "input_length"),
    ],
)
def test_bad_option_values_raise_config_error(name: str, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model(name, **overrides)  # type: ignore[arg-type]
