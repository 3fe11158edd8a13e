"""Where the inference thread's CPU goes per batch, by function, without a profiler.

cProfile slows Python about twofold and distorts the split between numpy and Python; here only
a handful of the inference thread's functions are wrapped, each call timed with the thread's CPU
clock, around one ``python -m runtime.bench.anatomy`` run (all its options pass through). Nested
functions count in their callers too (``_process`` holds ``_deliver``, which holds ``on_batch``).
Prints microseconds per call and per classified window and writes them as JSON.

From the repository root: ``PYTHONPATH=. python docs/results/bench-daemon-infer/parts.py OUT.json
--mode fast --backend null --prediction-qos off --seconds 4 --warmup 1 --pin-cpu 1``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import runpy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime import batching, results, results_output, results_router, results_table, state_array
from runtime.mqtt import publisher

#: (class, method) timed, in nesting order
TIMED: list[tuple[type, str]] = [
    (batching.MicroBatcher, "_next_batch"),
    (batching.MicroBatcher, "_process"),
    (batching.MicroBatcher, "_deliver"),
    (results_router.ResultRouter, "on_batch"),
    (results_table.SensorTable, "rows_of"),
    (results_router.ResultRouter, "_step_rounds"),
    (state_array.StateArray, "advance_steady"),
    (state_array.StateArray, "advance_quiet_grid"),
    (results_output.ResultOutput, "publish_results"),
    (results.ResultPayloads, "prediction_batch_json"),
    (publisher.MqttPublisher, "publish_batch"),
]
spent: collections.Counter[str] = collections.Counter()
calls: collections.Counter[str] = collections.Counter()


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.thread_time_ns() - t0
            calls[name] += 1
    return wrapper


def main() -> None:
    out = Path(sys.argv[1])
    for cls, name in TIMED:
        setattr(cls, name, _timed(name, getattr(cls, name)))
    windows = collections.Counter[str]()
    deliver = batching.MicroBatcher._deliver

    def counting(self: batching.MicroBatcher, batch: batching.BatchResult) -> None:
        windows["n"] += batch.size
        deliver(self, batch)

    batching.MicroBatcher._deliver = counting  # type: ignore[method-assign]
    sys.argv = ["runtime.bench.anatomy", *sys.argv[2:]]
    with contextlib.suppress(SystemExit):  # the module ends with sys.exit(main())
        runpy.run_module("runtime.bench.anatomy", run_name="__main__")
    n = max(windows["n"], 1)
    rows = {name: {"calls": calls[name], "us_per_call": round(spent[name] / 1e3 / max(calls[name], 1), 1),
                   "us_per_window": round(spent[name] / 1e3 / n, 2)} for _, name in TIMED if calls[name]}
    print(f"\n| function | calls | us per call | us per window ({n} windows, warm-up included) |")
    print("|---|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['calls']} | {row['us_per_call']} | {row['us_per_window']} |")
    out.write_text(json.dumps({"argv": sys.argv[1:], "windows": n, "functions": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
