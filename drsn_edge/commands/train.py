"""`drsn-edge train`: train a model, pick the best epoch on validation, report on the test split.

``--init CHECKPOINT|PACKAGED_NAME`` starts from a parent's weights (fine-tuning for a new
machine); see :mod:`drsn_edge.training.finetune`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from drsn_edge.commands._data_args import (
    add_data_arguments,
    add_optimizer_arguments,
    optimizer_settings,
    spec_from_args,
)
from runtime.errors import ConfigError
from runtime.novelty.scores import DEFAULT_SCORE, NOVELTY_SCORES


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    g = p.add_argument_group("model and optimisation")
    g.add_argument("--model", default="drsn_cw_paper", help="registered model name (see --list-models)")
    g.add_argument("--list-models", action="store_true", help="print the registered model names and exit")
    g.add_argument(
        "--epochs", type=int, help="training epochs (default 30; with --init the recipe's, see --init)"
    )
    g.add_argument("--seed", type=int, default=0, help="same seed, same result on CPU")
    add_optimizer_arguments(g)
    f = p.add_argument_group("starting from a checkpoint (fine-tuning for a new machine)")
    f.add_argument(
        "--init",
        metavar="CHECKPOINT|NAME",
        help="start from this checkpoint's weights: a .pt file or a packaged model name "
        "(`drsn-edge models`). "
        "The network (--model) is the parent's; window and sample rate follow the parent (other "
        "sample rates are resampled to it, another window is refused). When the classes differ, "
        "the backbone is kept and a new classifier is built, reusing the rows of classes both share. "
        "Defaults change to the fine-tuning recipe (drsn_edge.training.finetune.FINETUNE, chosen on "
        "development draws of the few-shot study): --epochs 20 and --lr 0.05 (sgd; 1e-4 for "
        "adam/adamw), --hop window/4, --backbone-lr-scale 1, --label-smoothing 0, --no-adabn-start, "
        "no --augment-noise (`--augment-noise off` turns a recipe's off); "
        "with --freeze backbone --lr 0.1 (sgd; 1e-3 for adam/adamw)",
    )
    f.add_argument(
        "--freeze",
        choices=["none", "backbone"],
        default="none",
        help="with --init: none = every layer learns (full fine-tune, best with a few seconds per "
        "class and up); backbone = only the new classifier learns, BatchNorm statistics frozen too",
    )
    f.add_argument(
        "--label-smoothing",
        type=float,
        help="cross-entropy label smoothing in [0, 1) (default 0; with --init the recipe's, see above)",
    )
    f.add_argument(
        "--backbone-lr-scale",
        type=float,
        help="with --init: the backbone learns at this fraction of --lr, the classifier at --lr "
        "(default: the recipe's)",
    )
    f.add_argument(
        "--adabn-start",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --init: re-estimate BatchNorm statistics on the training windows before the first "
        "step (default: the recipe's)",
    )
    g.add_argument("--model-version", default="1", help="version string carried into the exported artifact")
    g.add_argument("--out", "-o", default="runs/train", help="output directory (checkpoints, report, plots)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    g.add_argument(
        "--novelty-score",
        choices=list(NOVELTY_SCORES),
        default=DEFAULT_SCORE,
        help=f"novelty score fitted at the end (default {DEFAULT_SCORE}; see `drsn-edge calibrate --score`)",
    )


def run(args: argparse.Namespace) -> int:
    from drsn_edge.models import list_models

    if args.list_models:
        print("\n".join(list_models()))
        return 0
    from drsn_edge.training.evaluate import evaluate_model, write_evaluation
    from drsn_edge.training.pipeline import prepare
    from drsn_edge.training.plots import plot_history
    from drsn_edge.training.trainer import TrainConfig, train

    spec = spec_from_args(args)
    settings = optimizer_settings(args)
    parent = None
    if args.init:
        from drsn_edge.training.finetune import (
            finetune_defaults,
            load_parent,
            prepare_for_parent,
            recipe_for,
        )

        parent = load_parent(args.init)
        if args.window is None and parent.ckpt.metadata.signal is not None:
            spec.window = parent.ckpt.metadata.signal.window
        if args.hop is None:
            spec.hop = recipe_for(args.freeze).hop(spec.window)
        settings.update(finetune_defaults(args.lr, args.epochs, settings["optimizer"], args.freeze))
        args.model = parent.ckpt.model_name
    elif args.freeze != "none":
        raise ConfigError("--freeze needs --init: a model trained from scratch has no backbone to freeze")
    elif args.backbone_lr_scale is not None or args.adabn_start:
        raise ConfigError("--backbone-lr-scale and --adabn-start need --init (a parent's backbone)")
    for flag in ("label_smoothing", "backbone_lr_scale", "adabn_start", "augment_noise"):
        if getattr(args, flag) is not None:
            settings[flag] = getattr(args, flag)
    if settings.get("augment_noise") == "off":  # turns the recipe's augmentation off
        settings["augment_noise"] = None
    cfg = TrainConfig(
        model=args.model,
        epochs=settings.pop("epochs", None) or args.epochs or 30,
        seed=args.seed,
        **settings,
        model_version=args.model_version,
        progress=not args.no_progress,
        freeze=args.freeze,
    )
    init = None
    if parent is not None:
        data, norm, init, cfg.parent = prepare_for_parent(parent, spec, cfg.freeze)
    else:
        data, norm = prepare(spec)
    out = Path(args.out)
    result = train(data, spec, cfg, out, norm=norm, init=init)
    from drsn_edge.training.checkpoint import load_checkpoint, save_checkpoint

    best = load_checkpoint(result.best_path)
    model = best.build_model()
    ev = evaluate_model(model, data.test.x, data.test.y, data.classes)
    best.metadata.training["metrics"].update(
        {
            "test_acc": ev.accuracy,
            "test_macro_f1": ev.macro_f1,
            "test_n": ev.n,
            "train_seconds": result.seconds,
        }
    )
    from drsn_edge.novelty.calibrate import calibrate_trained

    # novelty statistics ride in the checkpoint to the export
    calibrate_trained(best, model, data, args.novelty_score)
    save_checkpoint(result.best_path, best)
    write_evaluation(
        ev,
        out,
        title=f"{args.model} on {spec.source} (best epoch {result.best_epoch})",
        extra={"train_seconds": result.seconds, "best_epoch": result.best_epoch},
    )
    plot_history(result.history, out / "history.png")
    print(ev.text_report())
    print(
        json.dumps(
            {
                "best_epoch": result.best_epoch,
                "val_acc": round(result.best_val_acc, 4),
                "test_acc": round(ev.accuracy, 4),
                "test_macro_f1": round(ev.macro_f1, 4),
                "train_seconds": round(result.seconds, 1),
                "checkpoint": str(result.best_path),
            }
        )
    )
    return 0
