"""The training loop: deterministic on CPU, checkpoint selection on validation, never on test.

Two optimisers are offered. The paper's SGD (momentum 0.9, lr 0.1 -> 0.01 -> 0.001 at 40% and 80%
of the epochs, L2 1e-4) is the default because it measures best on real bearing data under noise;
AdamW with a cosine schedule is there for users' own data, and plain Adam at a constant rate with
a coupled L2 penalty for reproducing the Keras reference programs. The first epochs at lr 0.1 swing
wildly, which is why the best checkpoint is chosen on a validation split carved from the training
span.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from drsn_edge import __version__
from drsn_edge.models import create_model
from drsn_edge.training.augment import NoiseAugment
from drsn_edge.training.checkpoint import Checkpoint, save_checkpoint
from drsn_edge.training.datasource import DataSpec
from runtime.artifact import ModelInfo, ModelMetadata, Normalization, SignalSpec, TensorSpec
from runtime.errors import ConfigError

log = logging.getLogger(__name__)

GOLDEN_COUNT = 64


@dataclass
class TrainConfig:
    """Hyper-parameters of one run (stored in the checkpoint)."""

    model: str = "drsn_cw_paper"
    epochs: int = 30
    batch_size: int = 64
    optimizer: Literal["sgd", "adamw", "adam"] = "sgd"
    lr: float | None = None
    weight_decay: float = 1e-4
    milestones: tuple[float, float] = (0.4, 0.8)
    seed: int = 0
    threads: int | None = None
    model_overrides: dict[str, Any] = field(default_factory=dict)
    model_version: str = "1"
    progress: bool = True
    #: ``KINDS:LOW..HIGH`` noise added to training windows each epoch (see :mod:`.augment`)
    augment_noise: str | None = None
    #: share of training windows that get noise when ``augment_noise`` is set
    augment_prob: float = 0.5
    #: with a parent checkpoint: "backbone" trains only the classifier (see :mod:`.finetune`)
    freeze: str = "none"
    #: the parent checkpoint and the adaptation, recorded as ``training.parent`` in the metadata
    parent: dict[str, Any] | None = None
    #: cross-entropy label smoothing: a few seconds per class are fitted perfectly within epochs,
    #: and smoothing keeps the logits from growing on what is only that one stretch of signal
    label_smoothing: float = 0.0
    #: with a parent: the backbone learns at this fraction of ``lr`` (the new classifier at ``lr``)
    backbone_lr_scale: float = 1.0
    #: with a parent: re-estimate BatchNorm statistics on the training windows (AdaBN) first
    adabn_start: bool = False

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.1 if self.optimizer == "sgd" else 1e-3)


@dataclass
class TrainResult:
    best_path: Path
    last_path: Path
    history: list[dict[str, float]]
    best_epoch: int
    best_val_acc: float
    seconds: float
    model: nn.Module


def seed_everything(seed: int) -> None:
    """Same seed, same result on CPU: seeds torch and numpy and asks torch for deterministic kernels."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    torch.use_deterministic_algorithms(True, warn_only=True)


def param_groups(model: nn.Module, cfg: TrainConfig, head: str | None) -> list[dict[str, Any]]:
    """Trainable parameters; with a parent's ``head`` and ``backbone_lr_scale`` < 1, two rates.

    A frozen backbone is left out. Discriminative rates let the new classifier move fast while
    the features the parent learnt on far more data are only nudged.
    """
    lr = cfg.learning_rate
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if head is None or cfg.backbone_lr_scale == 1.0:
        return [{"params": [p for _, p in named], "lr": lr}]
    if not 0.0 < cfg.backbone_lr_scale <= 1.0:
        raise ConfigError(f"backbone learning-rate scale must be in (0, 1], got {cfg.backbone_lr_scale}")
    is_head = [n == head or n.startswith(head + ".") for n, _ in named]
    head_params = [p for (_, p), h in zip(named, is_head, strict=True) if h]
    backbone_params = [p for (_, p), h in zip(named, is_head, strict=True) if not h]
    groups = [
        {"params": head_params, "lr": lr},
        {"params": backbone_params, "lr": lr * cfg.backbone_lr_scale},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(
    model: nn.Module, cfg: TrainConfig, steps_per_epoch: int, head: str | None = None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    lr = cfg.learning_rate
    params = param_groups(model, cfg, head)
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay
        )
        miles = sorted({max(1, round(m * cfg.epochs)) for m in cfg.milestones})
        sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=miles, gamma=0.1
        )
    elif cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    elif cfg.optimizer == "adam":
        # the Keras reference: Adam at a constant rate, weight decay added to the gradient (an L2 penalty)
        opt = torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _epoch: 1.0)
    else:
        raise ConfigError(
            f"unknown optimizer {cfg.optimizer!r}; use 'sgd' (the paper's), 'adamw' or 'adam'"
        )
    return opt, sched


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits for an array of normalised windows, in eval mode, batch by batch."""
    model.eval()
    out = [
        model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).numpy()
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _epoch(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    opt: torch.optim.Optimizer,
    bs: int,
    gen: torch.Generator,
    frozen_head: str | None = None,
    label_smoothing: float = 0.0,
) -> tuple[float, float]:
    model.train()
    if frozen_head is not None:
        from drsn_edge.training.finetune import hold_frozen_batchnorm

        hold_frozen_batchnorm(model, frozen_head, "backbone")
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    order = torch.randperm(len(x), generator=gen).numpy()
    total, correct, loss_sum = 0, 0, 0.0
    for i in range(0, len(order), bs):
        idx = order[i : i + bs]
        if len(idx) < 2:  # BatchNorm cannot train on a single sample
            continue
        xb, yb = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
        opt.zero_grad(set_to_none=True)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(idx)
        correct += int((logits.argmax(1) == yb).sum())
        total += len(idx)
    return loss_sum / max(total, 1), correct / max(total, 1)


def _score(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    logits = predict_logits(model, x)
    loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)))
    return loss, float((logits.argmax(1) == y).mean())


def build_metadata(
    model: nn.Module,
    cfg: TrainConfig,
    spec: DataSpec,
    data: Any,
    norm: Normalization,
    model_kwargs: dict[str, Any],
    metrics: dict[str, Any],
) -> ModelMetadata:
    """The artifact document the device will read; filled here, completed by the export step."""
    layout = getattr(model, "layout", "NCW")
    input_shape = [-1, *[int(d) for d in getattr(model, "input_shape", ())]]
    signal = None
    if layout == "NCW":
        signal = SignalSpec(
            sample_rate=float(data.sample_rate),
            window=int(data.window),
            hop=int(data.hop),
            channels=int(input_shape[1]),
        )
    train_config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    parent = train_config.pop("parent", None)
    return ModelMetadata(
        model=ModelInfo(
            name=cfg.model,
            version=cfg.model_version,
            config=model_kwargs,
            num_parameters=sum(p.numel() for p in model.parameters()),
        ),
        classes=list(data.classes),
        healthy_class=data.healthy_class,
        signal=signal,
        input=TensorSpec(name="input", layout=layout, shape=input_shape),
        normalization=norm,
        training={
            "data": data.summary,
            "data_spec": spec.to_dict(),
            "train_config": train_config,
            **({"parent": parent} if parent else {}),
            "metrics": metrics,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "drsn_edge_version": __version__,
            "torch_version": torch.__version__,
        },
    )


def shape_overrides(model_name: str, data: Any) -> dict[str, Any]:
    """Tell a 1-D model the window length when the data's window differs from its default input."""
    from drsn_edge.models import model_info

    info = model_info(model_name)
    if info.get("dims") == 1 and int(info["input_shape"][-1]) != int(data.window):
        return {"input_length": int(data.window)}
    return {}


def _golden(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Up to GOLDEN_COUNT windows ordered round-robin by class, so any prefix covers every class."""
    picked = round_robin_by_class(y, GOLDEN_COUNT)
    return x[picked], y[picked]


def round_robin_by_class(y: np.ndarray, count: int) -> np.ndarray:
    """Indices spread evenly inside each class and interleaved class by class (first, second, ...)."""
    per_class = [np.flatnonzero(y == c) for c in np.unique(y)]
    quota = -(-count // max(len(per_class), 1))
    spread = [idx[np.linspace(0, len(idx) - 1, num=min(quota, len(idx))).astype(int)] for idx in per_class]
    order = [int(col[i]) for i in range(quota) for col in spread if i < len(col)]
    return np.asarray(order[:count], dtype=np.int64)


def train(
    data: Any,
    spec: DataSpec,
    cfg: TrainConfig,
    out_dir: str | Path,
    norm: Normalization | None = None,
    init: Any = None,
) -> TrainResult:
    """Train ``cfg.model`` on prepared, normalised splits; write best.pt / last.pt / history to ``out_dir``.

    ``data`` is a :class:`drsn_edge.data.splits.SplitData` whose window arrays are already
    normalised (see :func:`drsn_edge.training.pipeline.prepare`). ``init`` is a
    :class:`drsn_edge.training.finetune.ChildInit`: start from a parent's weights instead of a
    random initialisation, with ``cfg.freeze`` deciding what learns.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if init is not None:
        from drsn_edge.training.finetune import freeze

        model, model_kwargs = init.model, dict(init.model_kwargs)
        if cfg.adabn_start:
            from drsn_edge.training.adabn import adapt_batchnorm

            adapt_batchnorm(model, data.train.x)  # the new machine's statistics before any step
        freeze(model, init.head, cfg.freeze)
    else:
        model_kwargs = {
            "num_classes": len(data.classes),
            **shape_overrides(cfg.model, data),
            **cfg.model_overrides,
        }
        model = create_model(cfg.model, **model_kwargs)
    frozen_head = init.head if init is not None and cfg.freeze == "backbone" else None
    norm = norm or Normalization()
    xtr, ytr = data.train.x, data.train.y
    xva, yva = data.val.x, data.val.y
    if len(xtr) < 2 or len(xva) < 1:
        raise ConfigError(
            f"too little data: {len(xtr)} training and {len(xva)} validation windows; "
            "use longer recordings, a smaller hop, or more files"
        )
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise ConfigError(f"label smoothing must be in [0, 1), got {cfg.label_smoothing}")
    head = init.head if init is not None else None
    opt, sched = make_optimizer(model, cfg, max(1, len(xtr) // cfg.batch_size), head)
    augment = NoiseAugment.parse(cfg.augment_noise, cfg.augment_prob) if cfg.augment_noise else None
    noise_rng = np.random.default_rng([cfg.seed, 0x4E4F495345])  # its own stream: same seed, same noise
    history: list[dict[str, float]] = []
    best_acc, best_loss, best_epoch = -1.0, float("inf"), 0
    gx, gy = _golden(data.test.x if len(data.test.x) else xva, data.test.y if len(data.test.y) else yva)

    def checkpoint(path: Path, epoch: int, metrics: dict[str, Any]) -> None:
        _save(path, model, cfg, spec, data, norm, model_kwargs, gx, gy, epoch, history, metrics)

    t0 = time.perf_counter()
    bar = _progress(cfg)
    for epoch in range(1, cfg.epochs + 1):
        x_epoch = augment.apply(xtr, norm, noise_rng) if augment is not None else xtr
        tr_loss, tr_acc = _epoch(
            model, x_epoch, ytr, opt, cfg.batch_size, gen, frozen_head, cfg.label_smoothing
        )
        va_loss, va_acc = _score(model, xva, yva)
        sched.step()
        history.append(
            {
                "epoch": epoch,
                "train_loss": tr_loss,
                "train_acc": tr_acc,
                "val_loss": va_loss,
                "val_acc": va_acc,
                "lr": opt.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
            }
        )
        # accuracy first; on a tie (validation often saturates at 100%) the lower loss wins
        if va_acc > best_acc or (va_acc == best_acc and va_loss < best_loss):
            best_acc, best_loss, best_epoch = va_acc, va_loss, epoch
            checkpoint(out / "best.pt", epoch, {"val_acc": va_acc, "epoch": epoch})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                loss=f"{tr_loss:.3f}", train=f"{tr_acc:.3f}", val=f"{va_acc:.3f}", best=f"{best_acc:.3f}"
            )
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    checkpoint(out / "last.pt", cfg.epochs, {"val_acc": history[-1]["val_acc"], "epoch": cfg.epochs})
    (out / "history.json").write_text(json.dumps(history, indent=1))
    log.info(
        "trained %s for %d epochs in %.1f s; best val acc %.4f at epoch %d",
        cfg.model,
        cfg.epochs,
        seconds,
        best_acc,
        best_epoch,
    )
    return TrainResult(out / "best.pt", out / "last.pt", history, best_epoch, best_acc, seconds, model)


def _save(
    path: Path,
    model: nn.Module,
    cfg: TrainConfig,
    spec: DataSpec,
    data: Any,
    norm: Normalization,
    model_kwargs: dict[str, Any],
    gx: np.ndarray,
    gy: np.ndarray,
    epoch: int,
    history: list[dict[str, float]],
    metrics: dict[str, Any],
) -> None:
    meta = build_metadata(model, cfg, spec, data, norm, model_kwargs, metrics)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_checkpoint(path, Checkpoint(cfg.model, model_kwargs, state, meta, gx, gy, epoch, list(history)))


def _progress(cfg: TrainConfig) -> Any:
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.epochs, desc=f"train {cfg.model}", unit="epoch", dynamic_ncols=True)
