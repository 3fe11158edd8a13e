"""The outbox under storage faults: failed commits, a really full filesystem, corrupt files.

A full disk is produced for real on a small tmpfs when this process may mount one (root in CI);
the fault injection hook of the outbox covers the same path everywhere else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.mqtt.outbox import NewMessage, Outbox


def disk_full(op: str) -> None:
    """Fault injection: the outbox's commit fails exactly as SQLite reports a full disk."""
    raise sqlite3.OperationalError("database or disk is full")


def test_a_failed_commit_leaves_file_and_counters_as_they_were(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_messages=3)
    ob.put_many([NewMessage("t", b"%d" % i) for i in range(3)], meta={"seq/s": "3"})
    ob.fault_injection = disk_full
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        ob.put_many([NewMessage("t", b"x"), NewMessage("t", b"y")], meta={"seq/s": "5"})  # would drop 2
    assert ob.depth == 3 and ob.dropped.full == 0 and ob.get_meta("seq/s") == "3"
    with pytest.raises(sqlite3.OperationalError):
        ob.ack_many([1])
    assert ob.depth == 3
    ob.fault_injection = None
    ob.put("t", b"z")
    assert [m.payload for m in ob.pending()] == [b"1", b"2", b"z"] and ob.dropped.full == 1
    ob.close()


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "1m") -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the fault injection tests cover this path")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Write zeros until the filesystem refuses."""
    with open(path, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)


def test_a_really_full_filesystem_fails_the_write_and_recovers(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "mnt") as mnt:
        ob = Outbox(mnt / "o.db", synchronous="normal")
        ob.put("t", b"before")
        fill(mnt / "filler")
        with pytest.raises(sqlite3.OperationalError):
            for i in range(2000):  # the WAL may still have room for a few pages
                ob.put("t", b"x" * 4000 + b"%d" % i)
        failed_at = ob.depth
        assert failed_at == len(ob.pending(10_000))  # the counter matches the file after the failure
        (mnt / "filler").unlink()
        ob.put("t", b"after")
        assert ob.depth == failed_at + 1
        assert ob.pending(1)[0].payload == b"before"
        ob.close()


def test_a_corrupt_page_moves_the_file_aside_and_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as ob:
        ob.put_many([NewMessage("t", b"x" * 300) for _ in range(200)])
    data = bytearray(path.read_bytes())
    data[5 * 4096:6 * 4096] = b"\xff" * 4096  # one page in the middle; the header stays intact
    path.write_bytes(bytes(data))
    caplog.set_level(logging.ERROR)
    ob = Outbox(path)
    try:
        moved = ob.moved_aside
        assert moved is not None and moved.moved_to.name.startswith("o.db.corrupt-")
        assert moved.moved_to.read_bytes() == bytes(data)  # kept as it was, for recovery by hand
        assert ob.depth == 0 and ob.put("t", b"new") == 1
        assert "is corrupt" in caplog.text and "NOT delivered" in caplog.text
    finally:
        ob.close()
    with Outbox(path) as again:  # the fresh file is sound: no second move
        assert again.moved_aside is None and again.depth == 1


def test_a_zeroed_header_counts_as_a_damaged_outbox(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as ob:
        ob.put("t", b"x")
    data = bytearray(path.read_bytes())
    data[:100] = bytes(100)
    path.write_bytes(bytes(data))
    with Outbox(path) as ob:
        assert ob.moved_aside is not None and ob.depth == 0


def test_depth_shows_committed_rows_only_while_a_write_is_under_way(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_messages=10)
    ob.put_many([NewMessage("t", b"a")], meta={})
    seen: list[int] = []

    def full_disk_reading_depth(op: str) -> None:  # another thread's metrics read, mid-transaction
        seen.append(ob.depth)
        disk_full(op)

    ob.fault_injection = full_disk_reading_depth
    with pytest.raises(sqlite3.OperationalError):
        ob.put_many([NewMessage("t", b"b"), NewMessage("t", b"c")], meta={})
    assert seen == [1] and ob.depth == len(ob) == 1
    ob.fault_injection = None
    ob.put_many([NewMessage("t", b"b")], meta={})
    assert ob.depth == 2
