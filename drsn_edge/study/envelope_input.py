"""One recording ready for envelope analysis: samples, sample rate and shaft speed, from any file.

Speed and rate come from the most specific source that has them: the command line, then the file
itself (a CWRU .mat holds its speed as ``X105RPM``; WAV headers and sidecars hold the rate), then
a ``MANIFEST.csv`` of a CWRU folder above the file (which also names the channel's key). What is
still missing is an error that says which option to give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drsn_edge.data.cwru import CwruFile, read_manifest
from runtime.errors import ConfigError, DataError
from runtime.signals.readers import read_signal

_RPM_KEY = re.compile(r"^(?:X\d+)?_?RPM$", re.IGNORECASE)


@dataclass(frozen=True)
class DiagnosisInput:
    """Samples of one channel with what envelope analysis needs to know about them."""

    samples: np.ndarray
    sample_rate: float
    rpm: float
    source: str
    key: str | None = None


def manifest_entry(path: Path) -> CwruFile | None:
    """The CWRU manifest row of ``path`` if a folder above it has a ``MANIFEST.csv`` listing it."""
    resolved = path.resolve()
    for folder in resolved.parents:
        manifest = folder / "MANIFEST.csv"
        if manifest.is_file():
            try:
                rows = read_manifest(manifest)
            except DataError:
                return None
            return next((row for row in rows if row.path.resolve() == resolved), None)
    return None


def mat_rpm(path: Path) -> float | None:
    """The speed a MATLAB file stores beside its signals (CWRU: ``X105RPM``), if any."""
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except Exception:
        return None
    for name, value in content.items():
        if _RPM_KEY.match(name) and isinstance(value, np.ndarray) and value.size == 1:
            return float(value.ravel()[0])
    return None


def load_for_diagnosis(
    path: str | Path,
    *,
    key: str | None = None,
    column: str | int | None = None,
    sample_rate: float | None = None,
    rpm: float | None = None,
    start_s: float = 0.0,
    seconds: float | None = None,
) -> DiagnosisInput:
    """Read ``path`` and resolve its key, rate and speed (see the module docstring)."""
    p = Path(path)
    entry = manifest_entry(p) if p.suffix.lower() == ".mat" and p.is_file() else None
    if entry is not None:
        key = key or entry.key
        sample_rate = sample_rate or entry.rate_hz
    samples, rate = read_signal(p, key=key, column=column, sample_rate=sample_rate)
    if rate is None:
        raise ConfigError(f"{p} does not say its sample rate; give it with --rate HZ")
    if samples.ndim != 1:
        raise DataError(
            f"{p} holds {samples.shape[0]} channels; choose one (--key for .mat, --column for .csv)"
        )
    if rpm is None and p.suffix.lower() == ".mat":
        rpm = mat_rpm(p)
    if rpm is None and entry is not None:
        rpm = entry.rpm
    if rpm is None:
        raise ConfigError(f"{p} does not say its shaft speed; give it with --rpm (e.g. --rpm 1797)")
    first = round(start_s * rate)
    last = samples.size if seconds is None else first + round(seconds * rate)
    if first < 0 or first >= samples.size:
        raise ConfigError(
            f"--start {start_s} s lies outside the recording ({samples.size / rate:.2f} s long)"
        )
    return DiagnosisInput(samples[first:last], float(rate), float(rpm), str(p), key)
