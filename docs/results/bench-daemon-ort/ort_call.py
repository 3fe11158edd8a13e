"""The ONNX Runtime call alone under the conditions the daemon gives it, interleaved.

Each variant runs the model at batch 32 on one core for ``--seconds`` and reports the CPU
microseconds per window of the call itself; the variants rotate for ``--rounds`` rounds so drift
of the shared machine weighs on all alike. Variants:

- ``bare_batch``: the batch ``bench daemon``'s bare phase reuses every call (the first 32
  windows of the first recording, the healthy machine);
- ``fixed``: one batch of 32 windows drawn from all recordings, reused every call;
- ``fresh``: every call on a new array gathered from 2,000 replayed windows of all conditions
  (what the batcher hands the backend);
- ``fresh_polluted``: as fresh, plus 1 MiB of other memory written between calls (the source
  thread cutting and normalising the next windows on the same core);
- ``fixed_daz``, ``fresh_daz``: ``session.set_denormal_as_zero`` = 1;
- ``fixed_nospin``: ``session.intra_op.allow_spinning`` = 0;
- ``fixed_bound``: io_binding with a preallocated output (run_with_iobinding).

``python docs/results/bench-daemon-ort/ort_call.py --rounds 5 --seconds 1.5 --pin-cpu 1``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[3]
sys.path.append(str(ROOT))  # a tree on PYTHONPATH (an A/B copy) comes first

from runtime.backends import open_model  # noqa: E402
from runtime.bench.runs import sample_windows  # noqa: E402
from runtime.bench.workload import make_recordings  # noqa: E402

MODEL = ROOT / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"


def session(**config: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    for key, value in config.items():
        opts.add_session_config_entry(key, value)
    return ort.InferenceSession(str(MODEL), sess_options=opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--pin-cpu", type=int)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "ort_call.json")
    args = ap.parse_args()
    if args.pin_cpu is not None:
        os.sched_setaffinity(0, {args.pin_cpu})
    meta = open_model(MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        recs = make_recordings(Path(tmp), 12000.0, 10.0)
        pool = sample_windows(meta, recs, 2000)
    rng = np.random.default_rng(0)
    # sample_windows takes windows in recording order; shuffle so a fresh batch mixes conditions
    bare = np.ascontiguousarray(pool[:32])  # bench daemon's bare batch: the first recording's first windows
    pool = pool[rng.permutation(len(pool))]
    fixed = np.ascontiguousarray(pool[:32])
    inp = meta.input.name
    outs = [o.name for o in session().get_outputs()]
    plain, daz, nospin = session(), session(**{"session.set_denormal_as_zero": "1"}), \
        session(**{"session.intra_op.allow_spinning": "0"})
    junk = np.zeros(1 << 18, dtype=np.float32)  # 1 MiB

    def fixed_call(s: ort.InferenceSession, x: np.ndarray = fixed):
        return lambda i: s.run(outs, {inp: x})

    def fresh_call(s: ort.InferenceSession, pollute: bool = False):
        def call(i: int):
            x = pool[(np.arange(32) * 61 + i * 32) % len(pool)]
            if pollute:
                junk[:] = i
            return s.run(outs, {inp: x})
        return call

    binding = plain.io_binding()
    out_arrays = [np.empty((32, w), np.float32) for w in (o.shape[-1] for o in plain.get_outputs())]
    binding.bind_cpu_input(inp, fixed)
    for name, arr in zip(outs, out_arrays, strict=True):
        binding.bind_output(name, "cpu", element_type=np.float32, shape=arr.shape, buffer_ptr=arr.ctypes.data)

    variants = {
        "bare_batch": fixed_call(plain, bare), "bare_batch_daz": fixed_call(daz, bare),
        "fixed": fixed_call(plain), "fresh": fresh_call(plain), "fresh_polluted": fresh_call(plain, True),
        "fixed_daz": fixed_call(daz), "fresh_daz": fresh_call(daz), "fixed_nospin": fixed_call(nospin),
        "fixed_bound": lambda i: plain.run_with_iobinding(binding),
    }
    for f in variants.values():
        for i in range(5):
            f(i)
    us: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            f, calls, call_cpu = variants[name], 0, 0.0
            end = time.perf_counter() + args.seconds
            while time.perf_counter() < end:
                if name.startswith("fresh"):  # time the run only, not the gather / pollution
                    x_cpu = time.thread_time()
                    f(calls)
                    call_cpu += time.thread_time() - x_cpu
                else:
                    c0 = time.thread_time()
                    f(calls)
                    call_cpu += time.thread_time() - c0
                calls += 1
            us[name].append(call_cpu / (calls * 32) * 1e6)
    load = os.getloadavg()[0]
    # the machine's speed swings by a fifth within seconds: each variant is also read against the
    # reference variant of the same round (its neighbours in time), as a ratio
    ref = us["bare_batch"]
    print(f"load {load:.2f}; CPU us per window of the call, {args.rounds} rounds of {args.seconds:g} s per "
          "variant: median (min-max), and the median of each round's ratio to bare_batch")
    table = ["| variant | us per window, median | min-max | / bare_batch, median of rounds |",
             "|---|---:|---:|---:|"]
    for name, v in us.items():
        ratio = statistics.median(a / b for a, b in zip(v, ref, strict=True))
        print(f"  {name:15s} {statistics.median(v):7.1f}  ({min(v):.1f}-{max(v):.1f})  {ratio:6.3f}")
        table.append(f"| {name} | {statistics.median(v):.1f} | {min(v):.1f}-{max(v):.1f} | {ratio:.3f} |")
    args.out.write_text(json.dumps({"load": load, "rounds": args.rounds, "seconds": args.seconds,
                                    "us_per_window": us}, indent=1))
    args.out.with_suffix(".md").write_text(f"load {load:.2f}, {args.rounds} rounds of {args.seconds:g} s\n\n"
                                           + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
