"""The fine-tuning recipe: discriminative rates, label smoothing, AdaBN before the first step, its
defaults in `train --help`, and the few-shot study measuring exactly those defaults."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from drsn_edge.cli import main
from drsn_edge.study import generalization_fewshot as fs
from drsn_edge.training.adabn import adapt_batchnorm, batchnorm_layers
from drsn_edge.training.checkpoint import load_checkpoint
from drsn_edge.training.datasource import DataSpec
from drsn_edge.training.finetune import (
    FINETUNE,
    HEAD,
    child_from_parent,
    finetune_defaults,
    load_parent,
)
from drsn_edge.training.pipeline import prepare
from drsn_edge.training.trainer import TrainConfig, make_optimizer, train
from runtime.errors import ConfigError
from tests.support.tiny_training import TINY_TRAIN_ARGS

SPEC = DataSpec(
    source="synthetic", window=1024, hop=512, synthetic_per_class=1, synthetic_seconds=2.0, seed=5
)


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parent")
    assert main(["train", *TINY_TRAIN_ARGS, "--epochs", "1", "--out", str(out)]) == 0
    return out / "best.pt"


def test_backbone_learns_at_a_fraction_of_the_classifier_rate(parent: Path) -> None:
    init = child_from_parent(load_parent(str(parent)), ["normal", "ball", "crack"])
    cfg = TrainConfig(epochs=4, lr=0.05, backbone_lr_scale=0.1, progress=False)
    opt, _ = make_optimizer(init.model, cfg, 1, init.head)
    rates = sorted(g["lr"] for g in opt.param_groups)
    assert rates == pytest.approx([0.005, 0.05])
    head_group = next(g for g in opt.param_groups if g["lr"] == pytest.approx(0.05))
    head_params = {id(p) for p in init.model.get_submodule(init.head).parameters()}
    assert {id(p) for p in head_group["params"]} == head_params
    every = sum(len(g["params"]) for g in opt.param_groups)
    assert every == len(list(init.model.parameters()))
    with pytest.raises(ConfigError, match="backbone learning-rate scale"):
        make_optimizer(init.model, TrainConfig(backbone_lr_scale=0.0), 1, init.head)


def test_adabn_start_sets_the_new_machines_statistics_before_training(parent: Path, tmp_path: Path) -> None:
    """With a frozen backbone the statistics stay as set before the first step: AdaBN's on the windows."""
    p = load_parent(str(parent))
    data, norm = prepare(DataSpec.from_dict({**SPEC.to_dict(), "seed": 11}))
    expected = copy.deepcopy(child_from_parent(p, list(data.classes)).model)
    adapt_batchnorm(expected, data.train.x)
    results = {}
    for adabn in (False, True):
        init = child_from_parent(p, list(data.classes))
        cfg = TrainConfig(
            model=p.ckpt.model_name,
            epochs=1,
            batch_size=32,
            lr=0.1,
            freeze="backbone",
            progress=False,
            threads=1,
            adabn_start=adabn,
        )
        train(data, SPEC, cfg, tmp_path / str(adabn), norm=norm, init=init)
        results[adabn] = batchnorm_layers(init.model)[0].running_mean.clone()
    target = batchnorm_layers(expected)[0].running_mean
    original = p.ckpt.state_dict[f"{_first_bn(p.ckpt.state_dict)}.running_mean"]
    assert torch.allclose(results[True], target, atol=1e-5)
    assert torch.equal(results[False], original)
    assert not torch.allclose(results[True], original)


def _first_bn(state: dict[str, torch.Tensor]) -> str:
    return next(k for k in state if k.endswith("running_mean")).rsplit(".", 1)[0]


def test_label_smoothing_is_used_and_refused_out_of_range(tmp_path: Path) -> None:
    data, norm = prepare(SPEC)
    losses = {}
    for ls in (0.0, 0.3):
        cfg = TrainConfig(
            epochs=1, batch_size=32, lr=0.01, seed=2, progress=False, threads=1, label_smoothing=ls
        )
        losses[ls] = train(data, SPEC, cfg, tmp_path / str(ls), norm=norm).history[0]["train_loss"]
    # a smoothed target cannot be met exactly: with the same seed and batches the loss is higher
    assert losses[0.3] > losses[0.0]
    with pytest.raises(ConfigError, match="label smoothing"):
        bad = TrainConfig(epochs=1, label_smoothing=1.0, progress=False)
        train(data, SPEC, bad, tmp_path / "bad", norm=norm)


def test_defaults_follow_the_recipe_and_help_states_them(capsys) -> None:
    d = finetune_defaults(None, None, "sgd")
    assert d["lr"] == FINETUNE.lr and d["epochs"] == FINETUNE.epochs
    assert d["label_smoothing"] == FINETUNE.label_smoothing
    assert d["backbone_lr_scale"] == FINETUNE.backbone_lr_scale and d["adabn_start"] == FINETUNE.adabn_start
    assert finetune_defaults(None, None, "sgd", "backbone")["lr"] == HEAD.lr
    assert finetune_defaults(0.5, 3, "sgd")["lr"] == 0.5 and finetune_defaults(0.5, 3, "sgd")["epochs"] == 3
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"--epochs {FINETUNE.epochs} and --lr {FINETUNE.lr:g}" in text
    assert f"--hop window/{FINETUNE.hop_divisor}" in text
    assert f"--freeze backbone --lr {HEAD.lr:g}" in text


def test_init_takes_the_recipe_hop_and_rates_unless_given(parent: Path, tmp_path: Path, capsys) -> None:
    tiny = list(TINY_TRAIN_ARGS)
    hop_at = tiny.index("--hop")
    del tiny[hop_at : hop_at + 2]  # the recipe's hop, not the tiny one
    out = tmp_path / "child"
    argv = ["train", *tiny, "--init", str(parent), "--epochs", "1", "--data-seed", "3", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    child = load_checkpoint(out / "best.pt")
    assert child.metadata.signal is not None and child.metadata.signal.hop == FINETUNE.hop(1024)
    cfg = child.metadata.training["train_config"]
    assert cfg["backbone_lr_scale"] == FINETUNE.backbone_lr_scale
    assert cfg["label_smoothing"] == FINETUNE.label_smoothing
    out2 = tmp_path / "child2"
    extra = ["--hop", "256", "--label-smoothing", "0.2", "--backbone-lr-scale", "0.5", "--no-adabn-start"]
    assert main([*argv[:-1], str(out2), *extra]) == 0
    capsys.readouterr()
    child2 = load_checkpoint(out2 / "best.pt")
    cfg2 = child2.metadata.training["train_config"]
    assert child2.metadata.signal is not None and child2.metadata.signal.hop == 256
    assert (cfg2["label_smoothing"], cfg2["backbone_lr_scale"], cfg2["adabn_start"]) == (0.2, 0.5, False)
    scratch = ["train", *TINY_TRAIN_ARGS, "--epochs", "1", "--adabn-start", "--out", str(tmp_path / "x")]
    assert main(scratch) == 2
    assert "need --init" in capsys.readouterr().err


def test_study_recipe_overrides_are_parsed_and_change_the_windows() -> None:
    assert fs.parse_recipe("lr=0.03; hop_divisor=16") == (("hop_divisor", 16.0), ("lr", 0.03))
    for bad in ("momentum=0.5", "lr", "lr=fast"):
        with pytest.raises(ConfigError, match="fewshot-recipe"):
            fs.parse_recipe(bad)
    with pytest.raises(ConfigError, match=r"KINDS:LOW\.\.HIGH"):
        fs.parse_recipe("augment_noise=loud")
    default = fs.FewShotSettings("drsn_cw_sim")
    dense = fs.FewShotSettings(
        "drsn_cw_sim", recipe=fs.parse_recipe("hop_divisor=16;epochs=7;augment_noise=gaussian,pink:5..20")
    )
    assert default.hop == FINETUNE.hop(fs.WINDOW) and dense.hop == fs.WINDOW // 16
    assert dense.finetune_recipe().epochs == 7 and dense.finetune_recipe("backbone") == HEAD
    assert dense.finetune_recipe().augment_noise == "gaussian,pink:5..20"
    off = fs.FewShotSettings("drsn_cw_sim", recipe=fs.parse_recipe("augment_noise=off"))
    assert off.finetune_recipe().augment_noise is None
    point = fs.FewShotPoint("finetune", 1.0, 0)
    sparse_data, _ = fs.split_data(point, fs.SecondMachine(), 512)
    dense_data, _ = fs.split_data(point, fs.SecondMachine(), dense.hop)
    per_class = 1 + (12000 - fs.WINDOW) // dense.hop
    assert len(dense_data.train.y) == 4 * per_class > len(sparse_data.train.y)
    # the test spans do not depend on the training hop
    assert np.array_equal(dense_data.test.start, sparse_data.test.start)
