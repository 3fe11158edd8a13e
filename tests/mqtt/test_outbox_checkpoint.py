"""The outbox's WAL is checkpointed by a thread of its own once a sender runs, never by a commit,
and stays bounded under steady writes (the writer restarts it once every frame was copied)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from runtime.mqtt.outbox import NewMessage, Outbox
from runtime.mqtt.outbox_checkpoint import AUTOCHECKPOINT, RESTART_PAGES


def _autocheckpoint(ob: Outbox) -> int:
    return int(ob._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_commits_leave_checkpoints_to_the_thread_and_the_wal_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    ob = Outbox(path, synchronous="normal")
    assert _autocheckpoint(ob) == AUTOCHECKPOINT  # no sender yet: commits checkpoint as SQLite does
    ob.start_checkpoints()
    assert _autocheckpoint(ob) == 0
    payload = b"x" * 8000  # about one batch's results: two to three pages per commit
    pending: list[int] = []
    for i in range(3000):
        rows = ob.put_many([NewMessage("drsn-edge/d/predictions", payload)], durable=False)
        pending += [r for r in rows if r is not None]
        if i % 20 == 19:
            ob.ack_many(pending)
            pending = []
        time.sleep(0.0005)
    wal_bytes = Path(f"{path}-wal").stat().st_size
    page = int(ob._db.execute("PRAGMA page_size").fetchone()[0])
    written = 3000 * 2 * page  # what the WAL would hold had it never restarted (at least)
    assert wal_bytes < 5 * RESTART_PAGES * page < written, (wal_bytes, written)  # 99 MB without restarts
    assert ob._checkpointer.failures == 0
    ob.stop_checkpoints()
    assert _autocheckpoint(ob) == AUTOCHECKPOINT  # stopped: the commits checkpoint again
    assert "outbox-checkpoint" not in [t.name for t in threading.enumerate()]
    last = ob.put_many([NewMessage("drsn-edge/d/predictions", b"last")], durable=False)[0]
    ob.close()
    with Outbox(path) as again:  # what was committed and not acknowledged is there after the close
        assert [(m.id, m.payload) for m in again.pending(10)] == [(last, b"last")]
