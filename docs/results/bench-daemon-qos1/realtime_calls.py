"""Wall and thread CPU of the outbox commit, the worker's wake and the whole publish_batch per
batch, inside the real-time anatomy run: ``python realtime_calls.py --mode realtime --backend
null --prediction-qos 1 --predictions batch --pin-cpu 1`` from the repository (the arguments are
``python -m runtime.bench.anatomy``'s). Wall far above CPU means the thread waited for the CPU.
"""

from __future__ import annotations

import collections
import sys
import time
from collections.abc import Callable
from typing import Any

import runtime.bench.anatomy as anatomy
import runtime.mqtt.outbox as outbox
import runtime.mqtt.publisher as publisher

walls: collections.defaultdict[str, list[float]] = collections.defaultdict(list)
cpus: collections.defaultdict[str, list[float]] = collections.defaultdict(list)


def wrap(owner: Any, name: str, label: str) -> None:
    f: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return f(*args, **kwargs)
        finally:
            walls[label].append(time.perf_counter() - t0)
            cpus[label].append(time.thread_time() - c0)

    setattr(owner, name, timed)


def report() -> None:
    for label, values in walls.items():
        w, c, n = sorted(values), sorted(cpus[label]), len(values)

        def ms(v: list[float], q: float) -> float:
            return 1e3 * v[int(q * (len(v) - 1))]

        print(f"{label:18s} n={n} wall p50 {ms(w, 0.5):.3f} p99 {ms(w, 0.99):.3f} max {1e3 * w[-1]:.2f} ms"
              f" | CPU p50 {ms(c, 0.5):.3f} p99 {ms(c, 0.99):.3f} ms")


if __name__ == "__main__":  # the UDP feeder is a child process: wrap in this one only
    wrap(outbox.Outbox, "put_many", "put_many")
    wrap(publisher.MqttPublisher, "_accepted", "_accepted (wake)")
    wrap(publisher.MqttPublisher, "publish_batch", "publish_batch")
    try:
        anatomy.main(sys.argv[1:])
    finally:
        report()
