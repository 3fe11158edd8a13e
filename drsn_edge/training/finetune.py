"""Start training from a parent checkpoint: a model for a new machine from one that knows bearings.

A packaged or earlier checkpoint already knows what bearing faults look like; a new machine
differs in speed, bearing geometry and structural resonances. Measured on a second rig, a few
seconds of labelled signal per class were enough to fine-tune such a checkpoint to 97 %, where
training from scratch reached 87 %. This module loads the parent (a ``.pt`` path or a packaged
model name), refuses data it cannot be fine-tuned on (another window, channel count or sample
rate), and builds the child network: every backbone weight from the parent, and a classifier
whose rows are the parent's for the classes both share and freshly initialised for new ones.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from drsn_edge.assets import ASSETS
from drsn_edge.training.checkpoint import Checkpoint, load_checkpoint
from runtime.errors import ConfigError, ModelFileError

log = logging.getLogger(__name__)

FreezeMode = Literal["none", "backbone"]
FREEZE_MODES: tuple[str, ...] = ("none", "backbone")


@dataclass(frozen=True)
class Recipe:
    """What ``drsn-edge train --init`` does unless told otherwise (its ``--help`` states these).

    The values were chosen on development draws of the simulated second machine (seeds 100-103
    of ``study generalization --parts fewshot``), never on the seeds the study reports.
    """

    #: SGD rate of the new classifier (the backbone learns at ``lr * backbone_lr_scale``)
    lr: float
    epochs: int
    #: training hop = window // hop_divisor when ``--hop`` is not given: a few seconds of signal
    #: give more (overlapping, time-shifted) windows
    hop_divisor: int
    label_smoothing: float = 0.0
    backbone_lr_scale: float = 1.0
    #: re-estimate BatchNorm statistics on the new machine's training windows before the first step
    adabn_start: bool = False
    #: noise added to training windows (``KINDS:LOW..HIGH`` dB, see :mod:`.augment`), or None
    augment_noise: str | None = None

    def train_config(self) -> dict[str, Any]:
        """The :class:`~drsn_edge.training.trainer.TrainConfig` fields this recipe sets besides lr/epochs."""
        return {
            "label_smoothing": self.label_smoothing,
            "backbone_lr_scale": self.backbone_lr_scale,
            "adabn_start": self.adabn_start,
            "augment_noise": self.augment_noise,
        }

    def hop(self, window: int) -> int:
        return max(1, int(window) // self.hop_divisor)


#: full fine-tune: half the scratch rate. Chosen on development draws of the simulated second
#: machine (3 s per class, seeds 100-107, docs/generalization.md): lr 0.05 scored 94.9 % on the
#: bearings' later signal against 92.2 % for the earlier 0.01 (30 epochs), as did 0.1 but with
#: less on other bearings; denser windows, label smoothing, AdaBN first, a slower backbone and
#: noise did not help there
FINETUNE = Recipe(lr=0.05, epochs=20, hop_divisor=4)
#: a frozen backbone leaves only the linear classifier to learn: the scratch rate is safe there
HEAD = Recipe(lr=0.1, epochs=20, hop_divisor=4)
FINETUNE_LR = FINETUNE.lr
HEAD_LR = HEAD.lr
FINETUNE_EPOCHS = FINETUNE.epochs


def recipe_for(freeze_mode: str) -> Recipe:
    return HEAD if freeze_mode == "backbone" else FINETUNE


@dataclass
class Parent:
    """A checkpoint to start from, and how to cite it in the child's metadata."""

    ckpt: Checkpoint
    path: Path
    name: str
    file_sha256: str

    def citation(self) -> dict[str, Any]:
        meta = self.ckpt.metadata
        data = meta.training.get("data") or {}
        return {
            "name": self.name,
            "model": meta.model.name,
            "version": meta.model.version,
            "file_sha256": self.file_sha256,
            "weights_sha256": meta.weights_sha256,
            "classes": list(meta.classes),
            "trained_on": {k: data[k] for k in ("source", "recordings", "select") if k in data},
        }


@dataclass
class ChildInit:
    """The child network before training, and what was carried over from the parent."""

    model: nn.Module
    model_kwargs: dict[str, Any]
    head: str
    reused: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "reused_classes": self.reused,
            "new_classes": self.new,
            "dropped_classes": self.dropped,
        }


def packaged_names() -> list[str]:
    """Packaged checkpoints (``drsn_edge/assets/<name>.pt``) by name."""
    return sorted(p.stem for p in ASSETS.glob("*.pt"))


def resolve_parent(ref: str) -> Path:
    """A path to a checkpoint, or the packaged checkpoint of that name."""
    path = Path(ref)
    if path.is_file():
        return path
    packaged = ASSETS / f"{ref}.pt"
    if packaged.is_file():
        return packaged
    names = ", ".join(packaged_names()) or "none"
    raise ConfigError(
        f"--init {ref!r} is neither a checkpoint file nor a packaged model (packaged: {names}); "
        "`drsn-edge models` lists them"
    )


def load_parent(ref: str) -> Parent:
    """Load the parent checkpoint; an ONNX file or any other file gives a clear error."""
    path = resolve_parent(ref)
    if path.suffix.lower() in (".onnx", ".engine"):
        raise ModelFileError(
            f"{path} is an exported model without trainable weights; pass its .pt checkpoint "
            "(packaged models ship one beside the ONNX, see `drsn-edge models`)"
        )
    ckpt = load_checkpoint(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Parent(ckpt, path, path.stem if path.parent == ASSETS else str(path), digest)


def check_compatible(parent: Parent, *, window: int, sample_rate: float | None, channels: int | None) -> None:
    """Refuse data whose windows the parent's first layers were not trained on."""
    signal = parent.ckpt.metadata.signal
    if signal is None:
        raise ConfigError(f"{parent.path} is an image model; --init needs a 1-D signal checkpoint")
    if int(window) != int(signal.window):
        raise ConfigError(
            f"{parent.path} takes {signal.window}-sample windows, the data gives {window}; "
            f"drop --window or pass --window {signal.window}"
        )
    if channels is not None and int(channels) != int(signal.channels):
        raise ConfigError(
            f"{parent.path} takes {signal.channels} channel(s), the data has {channels}; "
            "select the same sensors the parent was trained on"
        )
    if sample_rate is not None and abs(float(sample_rate) - float(signal.sample_rate)) > 1e-6:
        raise ConfigError(
            f"{parent.path} expects {signal.sample_rate:g} Hz, the data is at {sample_rate:g} Hz; "
            f"pass --sample-rate {signal.sample_rate:g} to resample it (or drop --sample-rate)"
        )


def classifier_name(model: nn.Module) -> str:
    """Name of the final ``Linear`` (the one that yields the logits)."""
    num_classes = int(getattr(model, "num_classes", -1))
    names: list[str] = [
        n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == num_classes
    ]
    if not names:
        raise ConfigError(f"{type(model).__name__} has no final Linear layer with {num_classes} outputs")
    return names[-1]


def child_from_parent(parent: Parent, classes: list[str]) -> ChildInit:
    """The parent's network for ``classes``: backbone copied, classifier rows reused by class name."""
    ckpt = parent.ckpt
    kwargs = {**ckpt.model_kwargs, "num_classes": len(classes)}
    from drsn_edge.models import create_model

    model = create_model(ckpt.model_name, **kwargs)
    head = classifier_name(model)
    own = model.state_dict()
    backbone = {k: v for k, v in ckpt.state_dict.items() if not k.startswith(head + ".")}
    missing = [k for k in own if not k.startswith(head + ".") and k not in backbone]
    if missing:
        raise ModelFileError(
            f"{parent.path}: backbone weights missing for {missing[:3]}; the file is damaged"
        )
    model.load_state_dict({**own, **backbone})
    old = list(ckpt.metadata.classes)
    init = ChildInit(model, kwargs, head)
    layer = model.get_submodule(head)
    assert isinstance(layer, nn.Linear)
    with torch.no_grad():
        for row, name in enumerate(classes):
            if name in old:
                layer.weight[row] = ckpt.state_dict[f"{head}.weight"][old.index(name)]
                if layer.bias is not None:
                    layer.bias[row] = ckpt.state_dict[f"{head}.bias"][old.index(name)]
                init.reused.append(name)
            else:
                init.new.append(name)
    init.dropped = [c for c in old if c not in classes]
    if init.new or init.dropped:
        log.warning(
            "classes differ from the parent's: new head %s with %d rows (reused %s; new %s; "
            "parent classes not in the data %s)",
            head,
            len(classes),
            init.reused or "none",
            init.new or "none",
            init.dropped or "none",
        )
    else:
        log.info("same classes as the parent: the whole network, head included, starts from %s", parent.name)
    return init


def freeze(model: nn.Module, head: str, mode: str) -> None:
    """``backbone``: only the classifier learns (BatchNorm statistics frozen too); ``none``: everything."""
    if mode not in FREEZE_MODES:
        raise ConfigError(f"--freeze {mode!r} is unknown; use one of {', '.join(FREEZE_MODES)}")
    for name, p in model.named_parameters():
        p.requires_grad = mode == "none" or name.startswith(head + ".")


def hold_frozen_batchnorm(model: nn.Module, head: str, mode: str) -> None:
    """In ``backbone`` mode keep every module but the head in eval mode while training (fixed statistics)."""
    if mode != "backbone":
        return
    for name, m in model.named_modules():
        if name and not (name == head or name.startswith(head + ".")):
            m.eval()


def finetune_defaults(
    lr: float | None, epochs: int | None, optimizer: str, freeze_mode: str = "none"
) -> dict[str, Any]:
    """Learning rate, epochs and the rest of the :class:`Recipe` for fine-tuning, unless given.

    A full fine-tune takes half the scratch rate (measured best on the few-shot study's development
    draws: a parent from other machines must move its first layers to the new resonance); a frozen
    backbone leaves one linear layer to learn, which takes the scratch rate safely.
    """
    recipe = recipe_for(freeze_mode)
    if freeze_mode == "backbone":
        default_lr = recipe.lr if optimizer == "sgd" else 1e-3
    else:
        default_lr = recipe.lr if optimizer == "sgd" else 1e-4
    return {
        "lr": lr if lr is not None else default_lr,
        "epochs": epochs if epochs is not None else recipe.epochs,
        **recipe.train_config(),
    }


def prepare_for_parent(
    parent: Parent, spec: Any, freeze_mode: str
) -> tuple[Any, Any, ChildInit, dict[str, Any]]:
    """Data prepared the parent's way, the child network, and the ``training.parent`` record.

    The data is resampled to the parent's rate unless another rate was asked for (then refused);
    a window other than the parent's is refused, as is a parent normalised another way.
    """
    from drsn_edge.training.pipeline import prepare

    signal = parent.ckpt.metadata.signal
    if signal is None:
        raise ConfigError(f"{parent.path} is an image model; --init needs a 1-D signal checkpoint")
    if spec.sample_rate is None:
        spec.sample_rate = float(signal.sample_rate)
        log.info("data resampled to the parent's %g Hz", signal.sample_rate)
    check_compatible(parent, window=spec.window, sample_rate=spec.sample_rate, channels=None)
    if parent.ckpt.metadata.normalization.kind != "zscore":
        raise ConfigError(
            f"{parent.path} normalises windows with {parent.ckpt.metadata.normalization.kind!r}; "
            "fine-tuning supports z-scored (per-window) models only"
        )
    data, norm = prepare(spec)
    check_compatible(
        parent, window=int(data.window), sample_rate=data.sample_rate, channels=int(data.train.x.shape[1])
    )
    init = child_from_parent(parent, list(data.classes))
    record = {
        **parent.citation(),
        "method": "fine-tune",
        "freeze": freeze_mode,
        "adapted_on": {
            "source": spec.source,
            "path": spec.path,
            "select": spec.select,
            "train_windows": len(data.train.y),
            "classes": list(data.classes),
        },
        **init.summary(),
    }
    return data, norm, init, record
