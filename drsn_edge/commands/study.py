"""`drsn-edge study`: the reproducible studies behind docs/study.md.

``study noise``: DRSN-CW/CS against ConvNet, ResNet and WDCNN on CWRU under Gaussian, Laplacian
and pink noise, both noise protocols, FP16-ONNX accuracy of DRSN-CW and the learnt thresholds.
``--smoke`` runs in seconds (``--source synthetic``), the default grid in about an hour on two
CPU cores, ``--full`` the complete grid. It resumes where it stopped.

``study mnist``: the 2-D reference experiment, DRSN against the same network without shrinkage
on MNIST with ``x/255 + 0.5*U(0,1)`` noise.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from drsn_edge.commands._data_args import add_optimizer_arguments, add_workers_argument, optimizer_settings

NOISE_DESCRIPTION = (
    "DRSN-CW/CS against ConvNet, ResNet and WDCNN on CWRU under Gaussian, Laplacian and pink noise, "
    "noise in train and test (the paper's protocol) and clean training with noisy tests, with the "
    "FP16-ONNX accuracy of DRSN-CW and the learnt thresholds. --smoke runs in seconds (--source "
    "synthetic), the default grid in about an hour on two CPU cores, --full the complete grid. "
    "Interrupted runs resume; --report-only tabulates what is done so far."
)
#: Grid flags that, when given, replace the preset's value (name -> parser of the comma list).
_GRID_FLAGS = {
    "models": str,
    "noise_types": str,
    "snrs": float,
    "seeds": int,
    "low_snr_seeds": int,
    "protocols": str,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="study", metavar="STUDY", required=True)
    _add_noise(
        sub.add_parser(
            "noise",
            help="DRSN vs baselines under noise on CWRU (tables + plots)",
            description=NOISE_DESCRIPTION,
        )
    )
    _add_mnist(
        sub.add_parser(
            "mnist",
            help="2-D reference: DRSN vs ResNet on noisy MNIST",
            description="DRSN-CW against the same network without shrinkage on MNIST "
            "with x/255 + 0.5*U(0,1) noise (one 8-channel block, Adam-type optimiser 1e-3).",
        )
    )
    _add_generalization(sub)
    _add_novelty(sub)


def _add_novelty(sub: Any) -> None:
    from drsn_edge.study import novelty_cli

    p = sub.add_parser("novelty", help="does the model know when it does not know? (novelty scores)",
                       description=novelty_cli.DESCRIPTION)
    novelty_cli.add_arguments(p)
    _add_envelope(sub)


def _add_envelope(sub: Any) -> None:
    from drsn_edge.study import envelope_cli

    e = sub.add_parser("envelope", help="envelope analysis vs DRSN vs combined on CWRU 0-3 HP",
                       description=envelope_cli.DESCRIPTION)
    envelope_cli.add_arguments(e)
    c = sub.add_parser("envelope-cost", help="CPU cost of the daemon's envelope diagnostics beside inference",
                       description=envelope_cli.COST_DESCRIPTION)
    envelope_cli.add_cost_arguments(c)


def _add_generalization(sub: Any) -> None:
    from drsn_edge.study import generalization_cli

    g = sub.add_parser(
        "generalization",
        help="leave-one-load-out on CWRU and a few-shot second machine (fine-tuning, AdaBN)",
        description=generalization_cli.DESCRIPTION,
    )
    generalization_cli.add_arguments(g)


def _add_noise(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    d.add_argument(
        "--source",
        choices=["cwru", "synthetic", "folder"],
        default="cwru",
        help="cwru (needs --data), or the bearing simulator for a smoke run",
    )
    d.add_argument("--data", metavar="DIR", help="CWRU folder with MANIFEST.csv (e.g. ../shared/data/cwru)")
    d.add_argument(
        "--select",
        action="append",
        metavar="KEY=VALUE",
        help="recordings to use (default for CWRU: load_hp=0, the 10-class 0 HP set)",
    )
    d.add_argument("--window", type=int, help="window length (default 2048; 1024 with --smoke)")
    d.add_argument("--hop", type=int, help="training hop (default window/4)")
    d.add_argument(
        "--test-hop", type=int, help="validation/test hop (default window/8: overlapping test windows)"
    )
    g = p.add_argument_group("grid (a preset, then any of these flags replaces its value)")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="seconds: 2 models, 1 noise, 2 SNRs, 1 epoch")
    size.add_argument(
        "--full", action="store_true", help="5 models x 3 noises x 8 SNRs, 3 seeds (5 below -4 dB), 30 epochs"
    )
    g.add_argument("--models", help="comma-separated model names")
    g.add_argument("--noise-types", help="comma-separated: gaussian,laplacian,pink")
    g.add_argument("--snrs", help="comma-separated SNRs in dB")
    g.add_argument("--seeds", help="comma-separated seeds used at every SNR")
    g.add_argument("--low-snr-seeds", help="comma-separated seeds used below -4 dB")
    g.add_argument("--epochs", type=int, help="epochs per run")
    g.add_argument("--protocols", help="comma-separated: train_test,test_only")
    t = p.add_argument_group("training and output")
    add_optimizer_arguments(t, threads_default=1)
    add_workers_argument(t)
    t.add_argument("--no-fp16", action="store_true", help="skip the FP16-ONNX export and scoring of DRSN-CW")
    t.add_argument("--no-thresholds", action="store_true", help="skip the threshold statistics")
    t.add_argument("--out", "-o", default="docs/results", help="tables and figures")
    t.add_argument("--work", default="runs/study/noise", help="checkpoints and per-run rows (resumable)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: tabulate the runs already in the work directory (partial grids too)",
    )
    t.add_argument(
        "--rescore-fp16",
        action="store_true",
        help="train nothing: repeat the FP16 export and scoring of runs whose FP16 step failed "
        "(after a gate or converter change), then tabulate",
    )


def _add_mnist(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", metavar="DIR", required=True, help="folder with t10k-images/labels-idx*-ubyte.gz"
    )
    p.add_argument("--models", default="drsn_cw_mnist,resnet_mnist", help="comma-separated 2-D model names")
    p.add_argument("--seeds", default="0,1,2,3,4", help="training seeds (the split and the noise stay fixed)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--weight-decay",
        type=float,
        default=2e-4,
        help="adam: L2 penalty on the gradient (2e-4 is Keras' l2(1e-4)); adamw: decoupled decay",
    )
    p.add_argument(
        "--optimizer",
        choices=["adam", "adamw"],
        default="adam",
        help="adam: the reference's (constant rate); adamw: decoupled decay with a cosine schedule",
    )
    p.add_argument("--split-seed", type=int, default=0, help="seed of the stratified split and of the noise")
    p.add_argument("--n-train", type=int, default=8000, help="training images (validation is 10%% of them)")
    p.add_argument("--n-test", type=int, default=2000, help="test images")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", "-o", default="docs/results")
    p.add_argument("--work", default="runs/study/mnist")
    p.add_argument("--stem", default="mnist", help="name of the output files (<stem>.csv/.md/.png)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    if args.study == "novelty":
        from drsn_edge.study import novelty_cli

        return novelty_cli.run(args)
    if args.study == "generalization":
        from drsn_edge.study import generalization_cli

        return generalization_cli.run(args)
    if args.study in ("envelope", "envelope-cost"):
        from drsn_edge.study import envelope_cli

        return envelope_cli.run(args)
    return _run_noise(args) if args.study == "noise" else _run_mnist(args)


def _run_noise(args: argparse.Namespace) -> int:
    from drsn_edge.study.noise import NoiseStudy, rescore_fp16_failures, run_noise_study
    from drsn_edge.study.report_page import write_report
    from drsn_edge.training.trainer import TrainConfig

    grid = _grid(args)
    study = NoiseStudy(
        grid=grid,
        data=_data_spec(args),
        out_dir=Path(args.out),
        work_root=Path(args.work),
        train=TrainConfig(**optimizer_settings(args)),
        fp16_models=() if args.no_fp16 else ("drsn_cw_paper",),
        thresholds=not args.no_thresholds,
        progress=not args.no_progress,
        command=command_line(args),
        train_missing=not (args.report_only or args.rescore_fp16),
        workers=args.workers,
    )
    print(f"noise study, {grid.name} grid: {grid.runs()} training runs; work directory {study.work_dir}")
    if args.rescore_fp16:
        fixed, failing = rescore_fp16_failures(study)
        print(f"FP16 re-scored: {fixed} run(s) now pass their gates, {failing} still fail")
    results, wall = run_noise_study(study)
    paths = write_report(results, study, wall)
    print(paths["summary_md"].read_text())
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return 0


def _grid(args: argparse.Namespace) -> Any:
    from drsn_edge.study.grids import preset

    base = preset("smoke" if args.smoke else "full" if args.full else "default")
    changes: dict[str, Any] = {"epochs": args.epochs}
    for flag, conv in _GRID_FLAGS.items():
        text = getattr(args, flag)
        if text is not None:
            changes["kinds" if flag == "noise_types" else flag] = [conv(t) for t in _split(text)]
    return base.with_overrides(**changes)


def _data_spec(args: argparse.Namespace) -> Any:
    from drsn_edge.study.noise import study_data_spec
    from drsn_edge.training.datasource import parse_selection

    return study_data_spec(
        args.source,
        args.data,
        window=args.window or (1024 if args.smoke else 2048),
        hop=args.hop,
        test_hop=args.test_hop,
        select=parse_selection(args.select) if args.select else None,
        small=args.smoke,
    )


def _run_mnist(args: argparse.Namespace) -> int:
    from drsn_edge.study.mnist import MnistStudy, run_mnist_study

    study = MnistStudy(
        data_dir=Path(args.data),
        out_dir=Path(args.out),
        work_dir=Path(args.work),
        models=tuple(_split(args.models)),
        seeds=tuple(int(s) for s in _split(args.seeds)),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        split_seed=args.split_seed,
        n_train=args.n_train,
        n_test=args.n_test,
        threads=args.threads,
        progress=not args.no_progress,
        command=command_line(args),
        stem=args.stem,
    )
    paths = run_mnist_study(study)
    print(paths["md"].read_text())
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, every flag spelled out (defaults included)."""
    words = ["drsn-edge", "study", args.study]
    skip = {"study", "command", "verbose", "_run", "no_progress", "report_only", "rescore_fp16"}
    for key, value in vars(args).items():
        if key in skip or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, list):
            words += [w for v in value for w in (flag, str(v))]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]
