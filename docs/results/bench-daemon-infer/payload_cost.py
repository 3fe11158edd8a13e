"""The QoS 1 batch payload's cost on the inference thread: the model built and encoded
(``encode_payload(ResultPayloads.prediction_batch(...))``, what the daemon did before) against the
bytes written directly (``ResultPayloads.prediction_batch_json``), on the daemon's usual batch
(32 windows of 16 sensors, 4 classes), alternating the two in rounds so that load drifting during
the run weighs on both alike. Prints and writes (``--out``, JSON) the median microseconds per
batch of each, every round beside it, and checks that both give the same bytes.

From the repository root: ``PYTHONPATH=. python docs/results/bench-daemon-infer/payload_cost.py --out
docs/results/bench-daemon-infer/payload_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from runtime.mqtt.payload import encode_payload
from runtime.results import ResultPayloads

CLASSES = ["normal", "ball", "inner_race", "outer_race"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--calls", type=int, default=1000, help="payloads per round and side")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    rng = np.random.default_rng(15)
    probs = rng.dirichlet(np.ones(len(CLASSES)), 32).astype(np.float32)
    sensors = [f"sensor{i // 2:02d}" for i in range(32)]
    windows = list(range(1000, 1032))
    ts = (1.7e9 + np.arange(32) * 0.0427).tolist()
    results = ResultPayloads("edge-1")
    args_ = ("drsn_cw_sim", CLASSES, sensors, windows, ts, probs)

    def model() -> bytes:
        return encode_payload(results.prediction_batch(*args_), "prediction batch")

    def direct() -> bytes:
        return results.prediction_batch_json(*args_)

    a, b = model(), direct()
    same = a[: a.rindex(b',"ts":')] == b[: b.rindex(b',"ts":')]
    runs: dict[str, list[float]] = {"model (pydantic build + encode)": [], "direct bytes": []}
    for _ in range(args.rounds):
        for name, fn in zip(runs, (model, direct), strict=True):
            t0 = time.thread_time()
            for _ in range(args.calls):
                fn()
            runs[name].append((time.thread_time() - t0) / args.calls * 1e6)
    out = {"rounds": args.rounds, "calls_per_round": args.calls, "payload_bytes": len(b), "same_bytes": same,
           "load_average": os.getloadavg(), "us_per_batch": runs,
           "median_us_per_batch": {k: statistics.median(v) for k, v in runs.items()}}
    print(f"same bytes: {same} ({len(b)} bytes), load {os.getloadavg()[0]:.2f}")
    for name, values in runs.items():
        print(f"{name}: median {statistics.median(values):.1f} us per batch of 32 "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
