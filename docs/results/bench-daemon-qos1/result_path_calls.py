"""Thread CPU inside the result path's calls per inference batch (fast phase, null backend, QoS 1
per batch), each call wrapped with ``time.thread_time``; run from a tree's root with
``PYTHONPATH=<tree>``. The wrappers add a few microseconds per call: read the figures as a
breakdown, not as totals.
"""

from __future__ import annotations

import collections
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import runtime.mqtt.outbox as outbox
import runtime.mqtt.publisher as publisher
import runtime.results as results
import runtime.results_router as router
from runtime.bench.broker import bench_broker
from runtime.bench.null_backend import healthy_only
from runtime.bench.runs import run_daemon_phase
from runtime.bench.workload import Workload, daemon_config, make_recordings

spent: collections.defaultdict[str, float] = collections.defaultdict(float)
calls: collections.Counter[str] = collections.Counter()


def wrap(owner: Any, name: str, label: str) -> None:
    f: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return f(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - t0
            calls[label] += 1

    setattr(owner, name, timed)


def main() -> None:
    wrap(router.ResultRouter, "on_batch", "on_batch")
    wrap(router.ResultRouter, "_publish_results", "publish_results")
    wrap(publisher.MqttPublisher, "publish_batch", "publish_batch")
    wrap(publisher.MqttPublisher, "_accepted", "_accepted")
    wrap(outbox.Outbox, "put_many", "put_many")
    wrap(results.ResultPayloads, "prediction_batch", "prediction_batch")
    wrap(router, "encode_payload", "encode_payload")
    os.sched_setaffinity(0, {1})
    model = Path("drsn_edge/assets/drsn_cw_sim.onnx").resolve()
    work = Workload(model, 64, 12000.0, 1024, 32, 5.0, 1, 1, "full", predictions="batch", backend="null")
    with tempfile.TemporaryDirectory() as tmp, bench_broker() as broker:
        rec = healthy_only(make_recordings(Path(tmp) / "rec", 12000.0, 5.0))
        cfg = daemon_config(work, rec, "fast", broker.host, broker.port, Path(tmp) / "outbox.sqlite3")
        run_daemon_phase(cfg, "fast", 0.0, 8.0, null=True)
    batches = max(calls["on_batch"], 1)
    for label, s in spent.items():
        print(f"{label:18s} {1e6 * s / max(calls[label], 1):7.1f} us/call  {calls[label]:6d} calls  "
              f"{1e6 * s / batches:7.1f} us/batch")


if __name__ == "__main__":
    main()
