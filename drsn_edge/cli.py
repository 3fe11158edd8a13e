"""The ``drsn-edge`` command line.

Each sub-command lives in its own module under :mod:`drsn_edge.commands` with two functions,
``add_arguments(parser)`` and ``run(args) -> int``. The table below is explicit (no discovery by
import side effects), and command modules import heavy packages (torch, onnx) inside ``run``
so that device-side commands such as ``drsn-edge run`` start without torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from drsn_edge import __version__
from runtime.errors import DrsnEdgeError

#: command name -> (module under drsn_edge.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train a model on CWRU, a folder of recordings, the simulator or MNIST"),
    "evaluate": ("evaluate", "accuracy, macro-F1, per-class report and confusion matrix of a checkpoint"),
    "sweep": ("sweep", "train and test several models across noise types and SNRs"),
    "export": ("export", "checkpoint -> ONNX (with parity gate) and ONNX -> FP16 ONNX"),
    "build-engine": ("build_engine", "build (or reuse) a TensorRT engine from an ONNX file, on the device"),
    "run": ("run", "run the monitoring daemon from a config file"),
    "validate-config": ("validate_config", "check a daemon config file without starting anything"),
    "demo": ("demo", "a one-minute live demo: simulated machines, the daemon and an MQTT broker"),
    "bench": ("bench", "benchmark backends, or the whole daemon path (`bench daemon`)"),
    "study": ("study", "reproducible noise-robustness study on CWRU (DRSN vs baselines)"),
    "diagnose": ("diagnose", "envelope analysis of a recording at its bearing's fault frequencies "
                 "(table + PNG)"),
    "adapt": ("adapt", "AdaBN: re-estimate a checkpoint's BatchNorm statistics on a new machine (no labels)"),
    "models": ("models", "the packaged models: classes, rate, window, training data and measured figures"),
    "calibrate": ("calibrate", "fit a checkpoint's novelty statistics (class means, covariance, thresholds)"),
    "baseline": ("baseline", "learn a machine's own healthy baseline from recordings with an ONNX model"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drsn-edge",
        description="Deep Residual Shrinkage Networks for machine condition monitoring: train on "
        "vibration data, export to ONNX/FP16/TensorRT, and run the MQTT monitoring daemon on the edge.",
    )
    parser.add_argument("--version", action="version", version=f"drsn-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"drsn_edge.commands.{module_name}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except DrsnEdgeError as exc:
        print(f"drsn-edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
