"""Thread CPU of the MQTT worker's parts per message (fast phase, null backend, QoS 1 per batch),
each call wrapped with ``time.thread_time``: ``python worker_calls.py`` from the repository. The
wrappers cost a few microseconds per call; read a breakdown, not totals.
"""

from __future__ import annotations

import collections
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

import runtime.mqtt.link as link
import runtime.mqtt.publisher_acks as acks
import runtime.mqtt.publisher_worker as worker
import runtime.mqtt.waker as waker
from runtime.bench.broker import bench_broker
from runtime.bench.null_backend import healthy_only
from runtime.bench.runs import run_daemon_phase
from runtime.bench.workload import Workload, daemon_config, make_recordings

spent: collections.defaultdict[str, float] = collections.defaultdict(float)
calls: collections.Counter[str] = collections.Counter()


def wrap(owner: Any, name: str, label: str) -> None:
    f: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        c0 = time.thread_time()
        try:
            return f(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - c0
            calls[label] += 1

    setattr(owner, name, timed)


def main() -> None:
    wrap(worker.Worker, "_step", "worker step (all)")
    wrap(link.Link, "pump", "pump: select, read, keepalive")
    wrap(paho.Client, "loop_read", "  paho loop_read (PUBACKs)")
    wrap(link.Link, "fill_window", "fill_window: rows -> paho")
    wrap(paho.Client, "publish", "  paho publish")
    wrap(acks.AckLedger, "drain", "drain: PUBACKs, hooks, deletes")
    wrap(acks.AckLedger, "delete", "  outbox deletes")
    wrap(waker.Waker, "clear", "wake flag clear")
    os.sched_setaffinity(0, {1})
    model = Path("drsn_edge/assets/drsn_cw_sim.onnx").resolve()
    work = Workload(model, 64, 12000.0, 1024, 32, 5.0, 1, 1, "full", predictions="batch", backend="null")
    with tempfile.TemporaryDirectory() as tmp, bench_broker() as broker:
        rec = healthy_only(make_recordings(Path(tmp) / "rec", 12000.0, 5.0))
        cfg = daemon_config(work, rec, "fast", broker.host, broker.port, Path(tmp) / "outbox.sqlite3")
        result = run_daemon_phase(cfg, "fast", 0.0, 8.0, null=True)
    messages = max(calls["  paho publish"], 1)
    print(f"{result.windows_per_s:.0f} windows/s, {messages} messages")
    for label, s in spent.items():
        print(f"{label:34s} {1e6 * s / messages:7.1f} us per message ({calls[label] / messages:.2f} calls)")


if __name__ == "__main__":
    main()
