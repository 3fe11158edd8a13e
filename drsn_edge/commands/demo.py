"""`drsn-edge demo`: a one-minute live demo of the whole device side, with nothing to install.

An in-process MQTT broker (or ``--broker host:port``), four simulated machines (one healthy,
three developing bearing faults in real time), the real monitoring daemon with the packaged
simulator-trained model on ONNX Runtime, and a subscriber that shows each machine's published
state live. The exit code is 0 only if every fault was detected and no false alarm was raised,
so the demo doubles as an end-to-end smoke test. No torch is imported.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--duration",
        type=float,
        default=40.0,
        metavar="SECONDS",
        help="seconds of simulated signal, run in real time (default 40, at least 10)",
    )
    p.add_argument(
        "--broker",
        metavar="HOST:PORT",
        help="use this MQTT broker instead of the built-in one (e.g. localhost:1883)",
    )
    p.add_argument(
        "--model",
        type=Path,
        help="a drsn-edge ONNX model with classes normal/inner_race/outer_race/ball "
        "(default: the packaged simulator-trained DRSN-CW)",
    )
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    view = p.add_mutually_exclusive_group()
    view.add_argument(
        "--live",
        dest="live",
        action="store_true",
        default=None,
        help="always draw the live table (default: only when stdout is a terminal)",
    )
    view.add_argument(
        "--plain",
        dest="live",
        action="store_false",
        help="print one line per event instead of the live table",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the summary as JSON")
    p.add_argument(
        "--svg", type=Path, metavar="PATH", help="also save the final table and the summary as an SVG picture"
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the daemon config the demo runs (YAML for `drsn-edge run`) and exit",
    )


def run(args: argparse.Namespace) -> int:
    from drsn_edge.demo.session import DemoOptions, config_yaml, run_demo

    opts = DemoOptions(
        duration_s=args.duration,
        broker=args.broker,
        model=args.model,
        seed=args.seed,
        live=args.live,
        threads=args.threads,
        json_path=args.json,
        svg_path=args.svg,
    )
    if args.print_config:
        print(config_yaml(opts), end="")
        return 0
    result = run_demo(opts)
    if result.interrupted:
        return 130
    return 0 if result.passed else 1
