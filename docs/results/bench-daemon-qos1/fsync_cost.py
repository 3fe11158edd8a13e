"""Thread CPU and wall time of one outbox put (3 KB) with synchronous=full against normal,
acknowledged rows deleted every 8 puts: ``taskset -c 1 python fsync_cost.py`` from the repository."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from runtime.mqtt.outbox import NewMessage, Outbox

PAYLOAD = b"x" * 3000

if __name__ == "__main__":
    for sync in ("full", "normal"):
        with tempfile.TemporaryDirectory() as d:
            ob = Outbox(Path(d) / "o.sqlite3", synchronous=sync)  # type: ignore[arg-type]
            n = 400
            t0, c0 = time.perf_counter(), time.thread_time()
            for i in range(n):
                row = ob.put_many([NewMessage("a/b/predictions", PAYLOAD)])[0] or 0
                if i % 8 == 7:
                    ob.ack_many(range(row - 7, row + 1))
            t1, c1 = time.perf_counter(), time.thread_time()
            print(f"{sync}: wall {1e6 * (t1 - t0) / n:.0f} us per put, thread CPU "
                  f"{1e6 * (c1 - c0) / n:.0f} us per put")
            ob.close()
