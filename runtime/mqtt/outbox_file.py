"""Opening the outbox's SQLite file, and what happens when that file is corrupt.

Policy: a file that is a SQLite database (or whose header was zeroed, as a power cut can leave
it) but fails SQLite's integrity check is *ours and broken*. It is renamed to
``<path>.corrupt-<UTC time>`` (with its ``-wal``/``-shm`` files), kept for inspection, and a fresh
outbox is started; the caller reports the loss loudly. Refusing to start instead would turn one
bad page into a crash loop under ``Restart=always`` and stop every alert, not just the stored ones.
A file that is not SQLite at all is more likely a wrong ``mqtt.outbox.path`` than a damaged
outbox, so it is refused with a :class:`~runtime.errors.ConfigError` and left untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from runtime.errors import ConfigError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT    NOT NULL,
    payload BLOB    NOT NULL,
    qos     INTEGER NOT NULL,
    retain  INTEGER NOT NULL,
    created REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class CorruptOutboxError(Exception):
    """The outbox file is a damaged SQLite database (internal: :func:`open_or_replace` handles it)."""


@dataclass(frozen=True)
class MovedAside:
    """A corrupt outbox that was renamed so that a fresh one could start."""

    path: Path
    moved_to: Path
    reason: str


def open_or_replace(path: Path, synchronous: str) -> tuple[sqlite3.Connection, MovedAside | None]:
    """Open the outbox at ``path``; a corrupt one is moved aside and a fresh one opened instead."""
    try:
        return open_database(path, synchronous), None
    except CorruptOutboxError as exc:
        moved = move_aside(path, str(exc))
    log.error(
        "outbox %s is corrupt (%s): moved it to %s and started an empty outbox. Events that were "
        "waiting in it are NOT delivered; inspect the moved file with sqlite3 to recover them",
        path, moved.reason, moved.moved_to,
    )
    return open_database(path, synchronous), moved


def open_database(path: Path, synchronous: str) -> sqlite3.Connection:
    """Open (creating if needed) and verify the outbox database; raise CorruptOutboxError if damaged."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=0.5, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"cannot open the outbox {path} ({exc}); point mqtt.outbox.path at a writable file"
        ) from exc
    try:
        _prepare(db, path, synchronous)
    except sqlite3.OperationalError as exc:
        db.close()
        if "locked" in str(exc):
            raise ConfigError(
                f"outbox {path} is in use by another process; give each daemon its own mqtt.outbox.path"
            ) from exc
        if "malformed" in str(exc) or "corrupt" in str(exc):
            raise CorruptOutboxError(str(exc)) from exc
        raise ConfigError(
            f"cannot use the outbox {path} ({exc}); check the path and its permissions"
        ) from exc
    except sqlite3.DatabaseError as exc:
        db.close()
        if _looks_like_ours(path):
            raise CorruptOutboxError(str(exc)) from exc
        raise ConfigError(
            f"outbox {path} is not a drsn-edge outbox ({exc}); move the file aside or choose another "
            "mqtt.outbox.path"
        ) from exc
    except (ConfigError, CorruptOutboxError):
        db.close()
        raise
    return db


def lock_outbox(path: Path) -> IO[bytes]:
    """Hold ``<path>.lock`` exclusively for this process, so that a second daemon pointed at the same
    outbox fails at start instead of double-publishing; the lock ends with the process (or
    :func:`unlock_outbox`).

    A lock file rather than SQLite's ``locking_mode=EXCLUSIVE``: the outbox's WAL is checkpointed
    by a second connection of the same process (:mod:`runtime.mqtt.outbox_checkpoint`), which an
    exclusive database lock would refuse.
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock_path, "ab")  # noqa: SIM115 - held open for the outbox's lifetime
    except OSError as exc:
        raise ConfigError(
            f"cannot open the outbox lock file {lock_path} ({exc}); point mqtt.outbox.path at a writable "
            "directory"
        ) from exc
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        f.close()
        raise ConfigError(
            f"outbox {path} is in use by another process; give each daemon its own mqtt.outbox.path"
        ) from exc
    return f


def unlock_outbox(lock: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    lock.close()


def _prepare(db: sqlite3.Connection, path: Path, synchronous: str) -> None:
    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise ConfigError(
            f"the filesystem of {path} does not support SQLite WAL (journal mode {mode}); "
            "put mqtt.outbox.path on a local disk"
        )
    db.execute(f"PRAGMA synchronous={synchronous.upper()}")
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"outbox {path} was written by a newer drsn-edge (schema v{version}); upgrade drsn-edge "
            "or point mqtt.outbox.path at a new file"
        )
    # quick_check reads every page once: milliseconds for a normal outbox, and the only way to
    # find a damaged page before a read in the middle of serving trips over it
    problems = [str(r[0]) for r in db.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        raise CorruptOutboxError("integrity check: " + "; ".join(problems))
    db.executescript(SCHEMA)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    db.execute("SELECT COUNT(*) FROM messages").fetchone()
    db.execute("SELECT COUNT(*) FROM meta").fetchone()


def _looks_like_ours(path: Path) -> bool:
    """A SQLite file, or one whose header was zeroed: damaged storage rather than a wrong path."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError:
        return False
    return head == _SQLITE_MAGIC or (len(head) == len(_SQLITE_MAGIC) and not any(head))


def move_aside(path: Path, reason: str) -> MovedAside:
    """Rename the file and its WAL/SHM companions to ``<name>.corrupt-<UTC time>[-wal|-shm]``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        path.rename(target)
        for suffix in ("-wal", "-shm"):
            companion = Path(f"{path}{suffix}")
            if companion.exists():
                companion.rename(Path(f"{target}{suffix}"))
    except OSError as exc:
        raise ConfigError(
            f"outbox {path} is corrupt ({reason}) and could not be moved aside ({exc}); move or delete "
            "it by hand, or point mqtt.outbox.path elsewhere"
        ) from exc
    return MovedAside(path, target, reason)
