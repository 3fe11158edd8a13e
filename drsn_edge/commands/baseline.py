"""`drsn-edge baseline MODEL RECORDING...`: learn a machine's own healthy normal from recordings.

Writes ``<state-dir>/baselines/<sensor>.json`` (atomically), tied to the model's weights; the
daemon scores that sensor's windows against it. Learn across the machine's operating range
(loads, speeds): what the baseline has not seen, it flags.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX model exported with a features output")
    p.add_argument("recordings", nargs="+", metavar="RECORDING", help=".mat, .wav, .npy or .csv files")
    p.add_argument("--sensor", required=True, help="the sensor id the baseline belongs to (as in the config)")
    p.add_argument("--state-dir", default="state", help="the daemon's state directory (default ./state)")
    p.add_argument("--hop", type=int, help="samples between windows (default: the model's)")
    p.add_argument("--key", help=".mat variable (default: the only signal in the file)")
    p.add_argument("--rate", type=float, help="sample rate in Hz for files that do not state one")


def run(args: argparse.Namespace) -> int:
    from drsn_edge.novelty.learn import learn_baseline

    learned = learn_baseline(
        args.model,
        args.recordings,
        state_dir=args.state_dir,
        sensor=args.sensor,
        hop=args.hop,
        key=args.key,
        rate=args.rate,
    )
    b = learned.baseline
    print(
        f"baseline for {args.sensor}: {learned.windows} windows from {learned.files} file(s), "
        f"fitted on {b.n}, thresholds from {b.n_holdout} held back: p99 {b.thresholds['p99']:.3f}, "
        f"p99.9 {b.thresholds['p99.9']:.3f}; wrote {learned.path}"
    )
    print(json.dumps({"path": str(learned.path), "windows": learned.windows, "thresholds": b.thresholds}))
    return 0
