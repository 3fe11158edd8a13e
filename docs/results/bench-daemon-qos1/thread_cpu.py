"""CPU per daemon thread (us per classified window) in the fast phase, null backend.

``python thread_cpu.py batch|window|off`` from a tree's root (``PYTHONPATH=<tree>``);
``SYNC=full|normal`` sets mqtt.outbox.synchronous. Reads ``/proc/self/task/<tid>/stat`` (user +
system ticks) of every thread 3 s and 9 s into the phase (2 s warm-up, 8 s recorded), named
through threading's native ids; pinned to CPU 1 like ``bench daemon --pin-cpu 1``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from runtime.bench.broker import bench_broker
from runtime.bench.null_backend import healthy_only
from runtime.bench.runs import run_daemon_phase
from runtime.bench.workload import Workload, daemon_config, make_recordings

MODEL = Path("drsn_edge/assets/drsn_cw_sim.onnx").resolve()
TICK = os.sysconf("SC_CLK_TCK")


def snap() -> dict[str, tuple[str, float]]:
    """Thread id -> (name, CPU seconds so far)."""
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            name = names.get(tid) or Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        out[tid] = (name, (int(stat[11]) + int(stat[12])) / TICK)
    return out


def main() -> None:
    pred = sys.argv[1] if len(sys.argv) > 1 else "batch"
    os.sched_setaffinity(0, {1})
    work = Workload(MODEL, 64, 12000.0, 1024, 32, 5.0, 1, None if pred == "off" else 1,
                    os.environ.get("SYNC", "full"), predictions="batch" if pred == "off" else pred,
                    backend="null", novelty=False)  # type: ignore[arg-type]
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, bench_broker() as broker:
        rec = healthy_only(make_recordings(Path(tmp) / "rec", 12000.0, 5.0))
        cfg = daemon_config(work, rec, "fast", broker.host, broker.port, Path(tmp) / "outbox.sqlite3")

        def sampler() -> None:
            time.sleep(3.0)
            res["a"], res["t0"] = snap(), time.perf_counter()
            time.sleep(6.0)
            res["b"], res["t1"] = snap(), time.perf_counter()

        th = threading.Thread(target=sampler)
        th.start()
        r = run_daemon_phase(cfg, "fast", 2.0, 8.0, null=True)
        th.join()
    windows = r.windows_per_s * (res["t1"] - res["t0"])
    rows = []
    for tid, (name, c1) in res["b"].items():
        used = c1 - res["a"].get(tid, (name, 0.0))[1]
        if used > 0:
            rows.append((used, name))
    print(f"{r.windows_per_s:.0f} windows/s")
    for used, name in sorted(rows, reverse=True):
        print(f"{name:36s} {1e6 * used / windows:7.1f} us/window")
    print(f"{'total':36s} {1e6 * sum(u for u, _ in rows) / windows:7.1f} us/window")


if __name__ == "__main__":
    main()
