"""Benchmarks of the device side that produce their own figures (never a timed unit test).

:mod:`runtime.bench.daemon_bench` measures the whole daemon path against the bare backend;
the command line is ``drsn-edge bench daemon``.
"""

from __future__ import annotations

from runtime.bench.daemon_bench import DaemonBenchOptions, DaemonBenchRun, run_daemon_bench
from runtime.bench.workload import Workload

__all__ = ["DaemonBenchOptions", "DaemonBenchRun", "Workload", "run_daemon_bench"]
