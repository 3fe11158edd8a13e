"""Arguments and entry of `drsn-edge study envelope` (see :mod:`drsn_edge.study.envelope`)."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = (
    "Envelope analysis on CWRU 0-3 HP: per-record verdicts and diagnosability grades; DRSN (the packaged "
    "0 HP model), envelope and combined on the held-out 0 HP span and the 1-3 HP load shift, clean and with "
    "Gaussian, Laplacian or pink noise (the combination rule is chosen on noise seed 0 and the clean pass, "
    "reported on the other seeds); the simulator with other bearings and speeds. Tables and figures in --out."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", required=True, metavar="DIR", help="CWRU folder with MANIFEST.csv (../shared/data/cwru)"
    )
    p.add_argument(
        "--model",
        default=str(Path(__file__).resolve().parents[1] / "assets" / "drsn_cw_cwru0hp.onnx"),
        help="DRSN ONNX model trained on 0 HP (default: the packaged drsn_cw_cwru0hp.onnx)",
    )
    p.add_argument("--snrs", default="10,4,0,-4", help="comma-separated SNRs in dB for the noisy grid")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated noise seeds")
    p.add_argument("--noise-types", default="gaussian,laplacian,pink", help="comma-separated noise kinds")
    p.add_argument("--out", "-o", default="docs/results/diagnostics", help="tables and figures")


def run(args: argparse.Namespace) -> int:
    from drsn_edge.commands.study import command_line
    from drsn_edge.study.envelope import EnvelopeStudy, run_envelope_study

    if args.study == "envelope-cost":
        return run_cost(args)

    study = EnvelopeStudy(
        data_dir=Path(args.data),
        model=Path(args.model),
        out_dir=Path(args.out),
        snrs=tuple(float(s) for s in args.snrs.split(",") if s.strip()),
        seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()),
        noise_kinds=tuple(k.strip() for k in args.noise_types.split(",") if k.strip()),
        command=command_line(args).replace(f" --model {args.model}", ""),
    )
    paths = run_envelope_study(study)
    print(paths["summary_md"].read_text())
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return 0


COST_DESCRIPTION = (
    "CPU cost of the daemon's envelope diagnostics beside the model's inference, per sensor, for several "
    "ring lengths and analysis intervals (table, CSV and PNG in --out)."
)


def add_cost_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=str(Path(__file__).resolve().parents[1] / "assets" / "drsn_cw_cwru0hp.onnx"),
        help="the model whose inference is the reference (default: the packaged CWRU model)",
    )
    p.add_argument("--repeats", type=int, default=20, help="timed repeats per figure (median)")
    p.add_argument(
        "--daemon-sensors",
        type=int,
        default=8,
        help="sensors in the whole-daemon comparison with and without diagnostics (0: skip it)",
    )
    p.add_argument("--out", "-o", default="docs/results/diagnostics", help="cost.md, cost.csv, cost.png")


def run_cost(args: argparse.Namespace) -> int:
    from drsn_edge.study.envelope_cost import daemon_ab, measure, write

    result = measure(Path(args.model), repeats=args.repeats)
    whole = daemon_ab(Path(args.model), sensors=args.daemon_sensors) if args.daemon_sensors > 0 else None
    paths = write(result, Path(args.out), Path(args.model), whole)
    print(paths["md"].read_text())
    print("\n".join(f"{k}: {v}" for k, v in paths.items()))
    return 0
