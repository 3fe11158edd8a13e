"""The source thread's path alone, without the rest of the daemon: a replay of 64 sensors paced
``fast`` -> the chunk router -> the packaged model's window group (window 2048, hop 512, zscore)
-> a stand-in batcher that counts the windows and drops them. Prints the process CPU per window
(median of ``--repeats`` runs) and writes it to ``--out`` (JSON). Run from a tree's root with that
tree first on ``PYTHONPATH``; under ``valgrind --tool=cachegrind`` two run lengths give the
instructions per window (``ir.sh``), a figure other load on the machine does not move.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from runtime.backends import open_model
from runtime.chunk_router import ChunkRouter
from runtime.metrics import Metrics
from runtime.sources.replay import ReplaySource, ReplaySourceConfig
from runtime.window_group import WindowGroup
from runtime.windowing import SensorWindower

MODEL = Path("drsn_edge/assets/drsn_cw_sim.onnx")


class DiscardingBatcher:
    """Stands in for the micro-batcher: counts the windows, drops them, stops the source at ``limit``."""

    max_queue = 10**9
    queue_depth = 0

    def __init__(self, stop: threading.Event, limit: int) -> None:
        self.windows, self.stop, self.limit = 0, stop, limit

    def submit_blocks(self, blocks: list[Any]) -> None:
        self.windows += sum(b.size for b in blocks)
        if self.windows >= self.limit:
            self.stop.set()


def run(recording: Path, windows: int, sensors: int, chunk: int) -> float:
    """CPU seconds per window of one run."""
    files = [{"id": f"s{i:03d}", "path": str(recording), "sample_rate": 12000.0} for i in range(sensors)]
    cfg = ReplaySourceConfig.model_validate({"type": "replay", "chunk": chunk, "pacing": "fast", "loop": True,
                                             "files": files})
    source = ReplaySource(cfg)
    meta = open_model(MODEL)
    assert meta.signal is not None
    spec = meta.signal
    group = WindowGroup(spec.window, spec.hop, spec.channels, spec.sample_rate, meta.normalization, True,
                        time.monotonic, time.time, rows_raw=True)  # as the daemon's (runtime.pipeline)
    batcher = DiscardingBatcher(source._stopping, windows)
    model = SimpleNamespace(batcher=batcher)
    pipelines: dict[str, Any] = {
        sid: SimpleNamespace(sensor_id=sid, model=model,
                             windower=SensorWindower(sid, 12000.0, meta, group=group))
        for sid in source.sensors}
    router = ChunkRouter(Metrics(), pipelines, {}, threading.Event())
    source._block_fn, source._error_fn = router.block_handler(source), lambda sid, exc: None
    t = time.process_time()
    source._run()  # on this thread: the source's loop until the stand-in has its windows
    return (time.process_time() - t) / batcher.windows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--windows", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sensors", type=int, default=64)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "noise.npy"
        np.save(recording, np.random.default_rng(0).standard_normal(120_000).astype(np.float32))
        runs = [1e6 * run(recording, args.windows, args.sensors, args.chunk) for _ in range(args.repeats)]
    median = statistics.median(runs)
    print(f"source path: {median:.2f} us CPU per window (median of {len(runs)}: "
          f"{', '.join(f'{r:.2f}' for r in runs)}), {args.sensors} sensors, chunks of {args.chunk}")
    if args.out is not None:
        args.out.write_text(json.dumps({"us_per_window": runs, "median": median, "windows": args.windows,
                                        "sensors": args.sensors, "chunk": args.chunk}))


if __name__ == "__main__":
    main()
