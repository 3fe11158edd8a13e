"""Data-source flags shared by `train`, `evaluate` and `sweep`."""

from __future__ import annotations

import argparse
from typing import Any

from drsn_edge.training.datasource import DataSpec, parse_selection
from runtime.errors import ConfigError


def add_data_arguments(p: argparse.ArgumentParser, *, for_eval: bool = False) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--source",
        choices=["cwru", "folder", "synthetic", "mnist"],
        default=None if for_eval else "synthetic",
        help="where the recordings come from (default: synthetic bearing simulator)",
    )
    g.add_argument(
        "--data", metavar="DIR", help="data directory (CWRU root with MANIFEST.csv, class folders, MNIST)"
    )
    g.add_argument(
        "--sample-rate", type=float, help="target sample rate in Hz (CWRU default 12000; resamples)"
    )
    g.add_argument("--window", type=int, help="window length in samples (default 2048)")
    g.add_argument("--hop", type=int, help="hop between training windows (default window/4)")
    g.add_argument("--test-hop", type=int, help="hop between test windows (default: same as --hop)")
    g.add_argument(
        "--split",
        choices=["time", "recording"],
        help="leakage-free split: by time inside each "
        "recording (with a gap of one window) or by whole recording",
    )
    g.add_argument("--labels", choices=["10class", "4class"], help="CWRU label scheme")
    g.add_argument(
        "--select",
        action="append",
        metavar="KEY=VALUE",
        help="keep recordings whose metadata match, e.g. load_hp=0 or fault=inner,outer (repeatable)",
    )
    g.add_argument(
        "--test-select",
        action="append",
        metavar="KEY=VALUE",
        help="take the test split from these recordings instead (train on one load, test on another)",
    )
    g.add_argument(
        "--noise", metavar="KIND:SNR", help="add noise at an SNR in dB: gaussian:-4, laplacian:0, pink:-8"
    )
    g.add_argument(
        "--noise-protocol",
        choices=["train_test", "test_only"],
        help="train_test: noisy train and test (as the paper); test_only: clean train, noisy test",
    )
    g.add_argument("--synthetic-per-class", type=int, help="synthetic source: simulated recordings per class")
    g.add_argument(
        "--synthetic-seconds", type=float, help="synthetic source: seconds per simulated recording"
    )
    g.add_argument(
        "--synthetic-severity",
        metavar="LOW,HIGH",
        help="synthetic source: range of fault severities in [0, 1] (default 0.5,1.0)",
    )
    g.add_argument("--data-seed", type=int, help="seed for noise and synthetic data (default: --seed)")


def spec_from_args(args: argparse.Namespace, base: DataSpec | None = None) -> DataSpec:
    """Build a spec from flags; flags left unset keep ``base``'s values (the checkpoint's, for evaluate)."""
    spec = DataSpec.from_dict(base.to_dict()) if base else DataSpec()
    mapping = {
        "source": "source",
        "data": "path",
        "sample_rate": "sample_rate",
        "window": "window",
        "hop": "hop",
        "test_hop": "test_hop",
        "split": "split",
        "labels": "labels",
        "noise": "noise",
        "noise_protocol": "noise_protocol",
        "synthetic_per_class": "synthetic_per_class",
        "synthetic_seconds": "synthetic_seconds",
    }
    for arg, attr in mapping.items():
        value = getattr(args, arg, None)
        if value is not None:
            setattr(spec, attr, value)
    if getattr(args, "synthetic_severity", None):
        try:
            low, high = (float(v) for v in args.synthetic_severity.split(","))
        except ValueError as exc:
            raise ConfigError(
                f"--synthetic-severity {args.synthetic_severity!r} must be LOW,HIGH, e.g. 0.2,1.0"
            ) from exc
        spec.synthetic_severity = (low, high)
    if getattr(args, "select", None):
        spec.select = parse_selection(args.select)
    if getattr(args, "test_select", None):
        spec.test_select = parse_selection(args.test_select)
    seed = getattr(args, "data_seed", None)
    if seed is None and base is None:
        seed = getattr(args, "seed", None)
    if seed is not None:
        spec.seed = seed
    if spec.source == "mnist" and args.window is None:
        spec.window = 28
    return spec


def add_optimizer_arguments(g: Any, *, threads_default: int | None = None) -> None:
    """Batch size, optimiser, learning rate, weight decay and threads, shared by train/sweep/study."""
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument(
        "--optimizer",
        choices=["sgd", "adamw", "adam"],
        default="sgd",
        help="sgd: the paper's (momentum 0.9, lr 0.1/0.01/0.001 at 40%%/80%%), which measures best "
        "under noise; adamw: cosine schedule; adam: constant rate, L2 penalty (the Keras reference)",
    )
    g.add_argument("--lr", type=float, help="initial learning rate (default 0.1 for sgd, 1e-3 for adamw)")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="L2 penalty (the paper uses 1e-4)")
    g.add_argument(
        "--threads",
        type=int,
        default=threads_default,
        help=f"torch CPU threads (default: {threads_default or 'torch chooses'})",
    )
    add_augment_arguments(g)


def add_augment_arguments(g: Any) -> None:
    """``--augment-noise`` / ``--augment-prob``: noise added to training windows (train/sweep/study)."""
    g.add_argument(
        "--augment-noise",
        metavar="KINDS:LOW..HIGH",
        help="add noise to training windows each epoch at an SNR drawn from LOW..HIGH dB, e.g. "
        "gaussian,laplacian,pink:-10..4 (for plants noisier than the recordings); `off`: none "
        "(for `train --init`, drops the fine-tuning recipe's own augmentation; not for sweep)",
    )
    g.add_argument(
        "--augment-prob",
        type=float,
        default=0.5,
        help="share of training windows that get noise with --augment-noise (default 0.5)",
    )


def add_workers_argument(g: Any) -> None:
    """``--workers``: training runs at once, each in its own process (sweep and study)."""
    g.add_argument(
        "--workers",
        type=int,
        default=1,
        help="training runs at once, each in its own process with --threads torch threads; set it to "
        "the number of CPU cores for a sweep (default 1)",
    )


def optimizer_settings(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig keyword arguments from :func:`add_optimizer_arguments`' flags."""
    return {
        "augment_noise": args.augment_noise,
        "augment_prob": args.augment_prob,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "threads": args.threads,
    }
