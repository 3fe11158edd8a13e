"""`drsn-edge sweep`: models x noise types x SNRs x seeds -> CSV, Markdown and a PNG of accuracy vs SNR."""

from __future__ import annotations

import argparse

from drsn_edge.commands._data_args import (
    add_data_arguments,
    add_optimizer_arguments,
    add_workers_argument,
    optimizer_settings,
    spec_from_args,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    g = p.add_argument_group("sweep")
    g.add_argument("--models", default="drsn_cw_paper,resnet_paper", help="comma-separated model names")
    g.add_argument("--noise-types", default="gaussian,laplacian,pink", help="comma-separated noise kinds")
    g.add_argument("--snrs", default="-8,-4,0,4", help="comma-separated SNRs in dB")
    g.add_argument("--seeds", default="0", help="comma-separated seeds")
    g.add_argument("--epochs", type=int, default=30)
    add_optimizer_arguments(g)
    add_workers_argument(g)
    g.add_argument("--out", "-o", default="runs/sweep", help="output directory (resumes from earlier rows)")


def run(args: argparse.Namespace) -> int:
    from drsn_edge.training.sweep import grid, run_sweep
    from drsn_edge.training.trainer import TrainConfig

    spec = spec_from_args(args)
    cfg = TrainConfig(
        epochs=args.epochs,
        **optimizer_settings(args),
    )
    points = grid(
        _split(args.models),
        _split(args.noise_types),
        [float(s) for s in _split(args.snrs)],
        [int(s) for s in _split(args.seeds)],
    )
    _agg, paths = run_sweep(points, spec, cfg, args.out, workers=args.workers)
    print(paths["md"].read_text())
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return 0


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]
