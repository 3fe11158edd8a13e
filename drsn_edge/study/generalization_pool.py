"""Run independent study points, serially or in spawned worker processes, with one progress bar.

Rows come back to the parent, which alone writes them (so a rows file is never written by two
processes). A point that fails is logged with its key and the traceback's last line and the
others go on; the failures are raised together at the end, so nothing fails silently.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from runtime.errors import DataError, DrsnEdgeError

log = logging.getLogger(__name__)


class StudyRunsError(DrsnEdgeError):
    """Some points of a study failed; the others were written."""


def run_pool(
    fn: Callable[..., dict[str, Any]],
    jobs: Sequence[tuple[Any, ...]],
    keys: Sequence[str],
    on_row: Callable[[dict[str, Any]], None],
    workers: int,
    progress: bool,
    desc: str,
) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc=desc, unit="run", dynamic_ncols=True, disable=not progress)
    failed: list[str] = []

    def done(key: str, row: dict[str, Any] | None, exc: BaseException | None) -> None:
        if exc is not None:
            log.error("%s failed: %s: %s", key, type(exc).__name__, exc)
            failed.append(f"{key}: {type(exc).__name__}: {exc}")
        elif row is not None:
            on_row(row)
        bar.update(1)
        bar.set_postfix(last=key, failed=len(failed))

    try:
        if workers <= 1:
            for job, key in zip(jobs, keys, strict=True):
                try:
                    done(key, fn(*job), None)
                except Exception as exc:  # reported, and raised together below
                    done(key, None, exc)
        else:
            # spawn, not fork: a forked child inherits torch's thread pools mid-state and can hang
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
                futures: dict[Future[dict[str, Any]], str] = {
                    pool.submit(fn, *job): key for job, key in zip(jobs, keys, strict=True)
                }
                for fut in as_completed(futures):
                    error = fut.exception()
                    done(futures[fut], None if error else fut.result(), error)
    finally:
        bar.close()
    if failed:
        raise StudyRunsError(
            f"{len(failed)} of {len(jobs)} runs failed (the others are saved; run the "
            "same command again to retry them): " + "; ".join(failed[:5])
        )


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``rows.jsonl``, one per key (the last written wins).

    A last line cut short (a run killed while writing, or read while another process appends) is
    skipped with a warning, since its run is simply run again; a damaged line elsewhere is an error.
    """
    if not path.exists():
        return []
    lines = [x for x in path.read_text().splitlines() if x.strip()]
    rows: dict[str, dict[str, Any]] = {}
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except ValueError as exc:
            if i == len(lines) - 1:
                log.warning("%s: last line is incomplete and is ignored (its run will be repeated)", path)
                break
            raise DataError(
                f"{path} line {i + 1} is not JSON ({exc}); delete that line and run again"
            ) from exc
        if not isinstance(row, dict) or "key" not in row:
            raise DataError(f"{path} line {i + 1} is not a study row; delete that line and run again")
        rows[row["key"]] = row
    return list(rows.values())
