"""`drsn-edge train --init`: start from a parent, a new head when classes differ, bad input refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from drsn_edge.cli import main
from drsn_edge.training.checkpoint import load_checkpoint
from drsn_edge.training.finetune import child_from_parent, classifier_name, finetune_defaults, load_parent
from tests.support.tiny_training import TINY_TRAIN_ARGS

TINY = TINY_TRAIN_ARGS


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parent")
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out / "best.pt"


def _backbone(sd: dict[str, torch.Tensor], head: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in sd.items() if not k.startswith(head + ".")}


def test_new_head_reuses_rows_of_shared_classes(parent: Path) -> None:
    p = load_parent(str(parent))
    old = p.ckpt.metadata.classes
    init = child_from_parent(p, ["normal", "ball", "crack"])
    head = classifier_name(init.model)
    assert init.reused == ["normal", "ball"] and init.new == ["crack"]
    assert sorted(init.dropped) == sorted(c for c in old if c not in ("normal", "ball"))
    sd = init.model.state_dict()
    for k, v in _backbone(p.ckpt.state_dict, head).items():
        assert torch.equal(sd[k], v), k
    w_old = p.ckpt.state_dict[f"{head}.weight"]
    assert torch.equal(sd[f"{head}.weight"][0], w_old[old.index("normal")])
    assert torch.equal(sd[f"{head}.weight"][1], w_old[old.index("ball")])
    assert sd[f"{head}.weight"].shape[0] == 3
    assert not any(torch.equal(sd[f"{head}.weight"][2], row) for row in w_old)


def test_finetune_records_the_parent_and_frozen_backbone_stays(parent: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "child"
    code = main(
        [
            "train",
            *TINY,
            "--init",
            str(parent),
            "--freeze",
            "backbone",
            "--epochs",
            "2",
            "--data-seed",
            "7",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    capsys.readouterr()
    child = load_checkpoint(out / "best.pt")
    rec = child.metadata.training["parent"]
    assert rec["file_sha256"] == hashlib.sha256(parent.read_bytes()).hexdigest()
    assert rec["freeze"] == "backbone" and rec["method"] == "fine-tune"
    assert rec["adapted_on"]["source"] == "synthetic" and rec["adapted_on"]["train_windows"] > 0
    assert child.metadata.training["train_config"]["lr"] == 0.1  # the frozen-backbone default
    head = classifier_name(child.build_model())
    p = load_checkpoint(parent)
    # a frozen backbone: weights and BatchNorm statistics are the parent's; the head learnt
    for k, v in _backbone(p.state_dict, head).items():
        assert torch.equal(child.state_dict[k], v), k
    assert not torch.equal(child.state_dict[f"{head}.weight"], p.state_dict[f"{head}.weight"])


def test_full_finetune_defaults_and_changes_the_backbone(parent: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "child"
    assert (
        main(["train", *TINY, "--init", str(parent), "--epochs", "2", "--data-seed", "7", "--out", str(out)])
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= summary["test_acc"] <= 1.0
    child = load_checkpoint(out / "best.pt")
    cfg = child.metadata.training["train_config"]
    assert cfg["lr"] == 0.05 and cfg["freeze"] == "none"
    assert finetune_defaults(None, None, "sgd")["lr"] == 0.05
    assert finetune_defaults(None, None, "sgd", "backbone")["lr"] == 0.1
    assert {k: finetune_defaults(0.5, 3, "sgd")[k] for k in ("lr", "epochs")} == {"lr": 0.5, "epochs": 3}
    p = load_checkpoint(parent)
    head = classifier_name(child.build_model())
    changed = [k for k, v in _backbone(p.state_dict, head).items() if not torch.equal(child.state_dict[k], v)]
    assert changed


def test_bad_parents_are_refused_with_a_reason(parent: Path, tmp_path: Path, capsys) -> None:
    junk = tmp_path / "notes.pt"
    junk.write_text("not a checkpoint")
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x01")
    cases = [
        (["--init", str(junk)], "not a readable drsn-edge checkpoint"),
        (["--init", str(onnx)], "pass its .pt checkpoint"),
        (["--init", "no_such_model"], "neither a checkpoint file nor a packaged model"),
        (["--init", str(parent), "--window", "512"], "takes 1024-sample windows"),
        (["--init", str(parent), "--sample-rate", "24000"], "expects 12000 Hz"),
        (["--freeze", "backbone"], "--freeze needs --init"),
    ]
    for extra, message in cases:
        argv = ["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "x"), *extra]  # last flag wins
        assert main(argv) == 2, extra
        assert message in capsys.readouterr().err, extra


def test_packaged_names_resolve_to_shipped_checkpoints() -> None:
    from drsn_edge.training.finetune import packaged_names

    names = packaged_names()
    assert "drsn_cw_cwru0hp" in names
    p = load_parent("drsn_cw_cwru0hp")
    assert p.name == "drsn_cw_cwru0hp" and p.ckpt.metadata.signal is not None
    assert p.ckpt.metadata.signal.window == 2048 and np.isclose(p.ckpt.metadata.signal.sample_rate, 12000)
