"""Sensors on the network for the real-time phase: a separate process sends UDP frames on schedule.

Sensors in one replay source are released in lockstep: every sensor's chunk falls due at the
same instant, so 64 sensors arrive as one burst and the last window of a burst waits for every
batch before it. Real sensors are not phase-locked. This feeder sends each sensor's frames
(:func:`runtime.sources.frames.encode_frame`) at its own phase, spread evenly over one chunk
period (or all at once with ``stagger=False``), from another process so the sending costs the
daemon neither GIL nor scheduling. Each frame leaves when its last sample "was measured"; the
daemon stamps its arrival, which is where the latency clock starts.
"""

from __future__ import annotations

import contextlib
import heapq
import multiprocessing
import os
import socket
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

import numpy as np

from runtime.bench.workload import sensor_id
from runtime.sources.frames import encode_frame

_LEAD_S = 0.2
#: how long the benchmark waits for the spawned feeder to be ready (imports on a busy machine)
_START_TIMEOUT_S = 60.0


def send_frames(address: tuple[str, int], recordings: list[str], sensors: int, rate: float, chunk: int,
                seconds: float, stagger: bool, cpus: set[int] | None = None,
                ready: Event | None = None) -> None:
    """Process body: send ``sensors`` streams of ``chunk``-sample frames in real time for ``seconds``.

    ``cpus``: run on these CPUs, not on the one the benchmark pinned the daemon to (a child
    inherits its parent's affinity, and the sensors are not part of the daemon's budget).
    ``ready`` is set once the recordings are loaded, just before the first frame is scheduled.
    """
    if cpus:
        os.sched_setaffinity(0, cpus)
    signals = [np.load(p).astype(np.float32) for p in recordings]
    period = chunk / rate
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mono0, wall0 = time.monotonic() + _LEAD_S, time.time() + _LEAD_S
    end = mono0 + seconds
    offsets = [(i / sensors * period) if stagger else 0.0 for i in range(sensors)]
    due = [(mono0 + offsets[i] + period, i) for i in range(sensors)]  # when each first chunk is complete
    heapq.heapify(due)
    seq = [0] * sensors
    if ready is not None:
        ready.set()
    try:
        while due:
            t, i = heapq.heappop(due)
            if t > end:
                continue
            delay = t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            x = signals[i % len(signals)]
            start = (seq[i] * chunk) % (x.size - chunk)
            frame = encode_frame(x[start : start + chunk], sample_rate=rate, seq=seq[i],
                                 t0=wall0 + (t - period - mono0), sensor_id=sensor_id(i))
            sock.sendto(frame, address)
            seq[i] += 1
            heapq.heappush(due, (t + period, i))
    finally:
        sock.close()


@contextlib.contextmanager
def udp_feeder(address: tuple[str, int], recordings: list[Path], sensors: int, rate: float, chunk: int,
               seconds: float, stagger: bool = True, cpus: set[int] | None = None) -> Iterator[None]:
    """Run :func:`send_frames` in a spawned process for the duration of the ``with`` block.

    The block is entered only once the process sends: a spawned interpreter re-imports numpy
    and the benchmark package, which takes seconds on a busy machine, and a phase that started
    its clock before would measure a daemon with no sensors (0 windows/s).
    """
    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    ready = ctx.Event()
    proc = ctx.Process(target=send_frames, name="bench-udp-feeder", daemon=True,
                       args=(address, [str(p) for p in recordings], sensors, rate, chunk, seconds, stagger,
                             cpus, ready))
    proc.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not ready.wait(0.1):
            if not proc.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the UDP sensor feeder did not start within {_START_TIMEOUT_S:.0f} s "
                    f"(exit code {proc.exitcode}); see its error above, or run the benchmark on a less "
                    "busy machine")
        yield
    finally:  # the measurement is over: stop sending at once
        proc.terminate()
        proc.join(5)
