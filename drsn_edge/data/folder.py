"""Recordings from a folder tree whose sub-folder names are the class labels.

    root/
      normal/   pump1.wav  pump2.npy  pump2.json  ...
      outer/    run7.csv   ...

Any file :func:`runtime.signals.readers.read_signal` understands is a recording; other files
(README, sidecar JSON) are ignored. Deeper folders belong to their top-level class folder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from drsn_edge.data.recordings import Recording
from runtime.errors import DataError
from runtime.signals.readers import SUPPORTED_SUFFIXES, read_signal
from runtime.signals.resample import resample

log = logging.getLogger(__name__)


def load_folder(
    root: str | Path,
    sample_rate: float | None = None,
    classes: Sequence[str] | None = None,
    *,
    key: str | None = None,
    column: str | int | None = None,
) -> list[Recording]:
    """Load every signal file under ``root/<class>/``.

    ``sample_rate``: the rate every recording ends up at. Files that declare their own rate
    (WAV, sidecar JSON) are resampled to it; files that declare none are taken to be at it.
    Without it, each file must declare its rate. ``classes`` restricts the accepted folder names;
    a signal file outside them raises :class:`DataError`, as does a signal file directly in ``root``.
    ``key`` / ``column`` choose the .mat variable / CSV column when files hold several.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"data folder {base} does not exist; pass a folder with one sub-folder per class")
    files = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(base).parts))
    if not files:
        raise DataError(
            f"no signal files ({', '.join(SUPPORTED_SUFFIXES)}) under {base}; "
            f"put recordings in {base}/<class>/"
        )
    known = set(classes) if classes is not None else None
    out = [_load_one(base, p, known, sample_rate, key, column) for p in files]
    log.info("loaded %d recordings from %s (%s)", len(out), base, ", ".join(sorted({r.label for r in out})))
    return out


def _load_one(
    base: Path,
    path: Path,
    known: set[str] | None,
    sample_rate: float | None,
    key: str | None,
    column: str | int | None,
) -> Recording:
    rel = path.relative_to(base)
    if len(rel.parts) < 2:
        raise DataError(f"{path} is not inside a class folder; move it to {base}/<class>/{path.name}")
    label = rel.parts[0]
    if known is not None and label not in known:
        raise DataError(
            f"{path} is in folder {label!r}, which is not a known class {sorted(known)}; "
            "move or remove it, or add the class"
        )
    signal, rate = read_signal(path, key=key, column=column, sample_rate=sample_rate)
    if rate is None:
        raise DataError(
            f"{path} does not declare its sample rate; pass sample_rate=... (--sample-rate) or add "
            f"{path.with_suffix('.json').name} with {{\"sample_rate\": <Hz>}}"
        )
    meta = {"dataset": "folder", "source": str(path), "original_rate": rate}
    if sample_rate is not None and rate != sample_rate:
        signal = resample(signal, rate, sample_rate)
        rate = sample_rate
    return Recording(signal, float(rate), label, meta)
