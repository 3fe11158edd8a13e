"""Read a recorded signal from .mat, .wav, .npy or .csv into a float32 array.

Every reader returns ``(samples, sample_rate)`` where ``samples`` is float32, 1-D for one
channel or ``(channels, n)`` for several, and ``sample_rate`` is the rate the *file* declares
(``None`` when it declares none). The rule for rates is the same for every format: a rate stored
with the file (the WAV header, a ``<name>.json`` sidecar, a scalar ``fs``/``sample_rate``
variable in a .mat file) wins; the ``sample_rate`` argument only fills in for files that carry
none. Readers never guess a channel: a .mat variable or a CSV column is chosen by name unless
the file holds exactly one candidate.

Unusable files (empty, NaN/inf, non-numeric text, missing key) raise :class:`DataError` naming
the file and what to do about it, so a training run over thousands of files points straight at
the bad one.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import DataError

log = logging.getLogger(__name__)

#: Scalar .mat variables that may hold the sampling rate, in the order they are looked for.
MAT_RATE_KEYS = ("fs", "Fs", "FS", "sample_rate", "sampling_rate", "sr")


def read_signal(
    path: str | Path,
    *,
    key: str | None = None,
    column: str | int | None = None,
    sample_rate: float | None = None,
) -> tuple[np.ndarray, float | None]:
    """Read any supported file by its suffix; see the module docstring for the rate rule.

    ``key`` selects a .mat variable, ``column`` a CSV column (name or 0-based index);
    ``sample_rate`` is the rate to assume for files that declare none.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _READERS:
        raise DataError(
            f"{p}: unsupported file type {suffix!r}; convert it to one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not p.is_file():
        raise DataError(f"{p}: file not found; check the path")
    if suffix == ".mat":
        samples, rate = read_mat(p, key=key)
    elif suffix == ".csv":
        samples, rate = read_csv(p, column=column)
    else:
        samples, rate = _READERS[suffix](p)
    if rate is None:
        rate = _sidecar_rate(p)
    if rate is None:
        rate = sample_rate
    elif sample_rate is not None and abs(rate - sample_rate) > 1e-6 * rate:
        log.debug("%s declares %g Hz; the assumed %g Hz is not used", p, rate, sample_rate)
    return samples, (None if rate is None else float(rate))


def read_mat(path: str | Path, *, key: str | None = None) -> tuple[np.ndarray, float | None]:
    """Read one variable of a MATLAB (v4-v7.2) file as a signal.

    With ``key=None`` the file must hold exactly one numeric array; with several (CWRU files hold
    drive-end, fan-end and base channels) the caller must name the one it wants.
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    p = Path(path)
    try:
        content = loadmat(p, squeeze_me=False)
    except (MatReadError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DataError(
            f"{p}: not a readable MATLAB file ({exc}); save it with MATLAB's -v7 option or convert it to .npy"
        ) from exc
    arrays = {k: v for k, v in content.items() if not k.startswith("__") and isinstance(v, np.ndarray)}
    signals = {k: v for k, v in arrays.items() if v.size > 1 and np.issubdtype(v.dtype, np.number)}
    if key is None:
        if len(signals) != 1:
            raise DataError(
                f"{p}: holds {len(signals)} signal variables {sorted(signals)}; name the channel with key=..."
            )
        key = next(iter(signals))
    if key not in arrays:
        raise DataError(
            f"{p}: no variable {key!r}; the file holds {sorted(arrays)}. Pass one of those as the key "
            "(for CWRU files, the de_key column of MANIFEST.csv)"
        )
    samples = _as_signal(arrays[key], p, f"variable {key!r}")
    return samples, _mat_rate(arrays)


def read_wav(path: str | Path) -> tuple[np.ndarray, float | None]:
    """Read a WAV file; integer PCM is scaled to [-1, 1] so gains do not depend on bit depth."""
    from scipy.io import wavfile

    p = Path(path)
    try:
        rate, data = wavfile.read(p)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{p}: not a readable WAV file ({exc}); re-export it as PCM or float WAV") from exc
    data = _scale_pcm(np.asarray(data))
    if data.ndim == 2:
        data = data.T  # wavfile gives (n, channels); signals are (channels, n)
    return _as_signal(data, p, "audio data"), float(rate)


def read_npy(path: str | Path) -> tuple[np.ndarray, float | None]:
    """Read a NumPy array: 1-D, or ``(channels, n)``; the rate comes from a sidecar or the caller."""
    p = Path(path)
    try:
        data = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{p}: not a readable .npy file ({exc}); save it with numpy.save") from exc
    return _as_signal(data, p, "array"), None


def read_csv(path: str | Path, *, column: str | int | None = None) -> tuple[np.ndarray, float | None]:
    """Read one numeric column of a CSV file (comma, semicolon, tab or space separated).

    A first row with any non-numeric field is taken as a header, so ``column`` may be a name.
    """
    p = Path(path)
    text = _read_text(p)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{p}: the file is empty; record some samples or remove the file")
    delimiter = _delimiter(lines[0])
    first = _split(lines[0], delimiter)
    header = None if all(_is_number(f) for f in first) else first
    body = lines[1:] if header else lines
    if not body:
        raise DataError(f"{p}: has a header but no rows; record some samples or remove the file")
    index = _column_index(p, column, header, len(first))
    values = _parse_column(p, body, delimiter, index, skipped=1 if header else 0)
    return _as_signal(values, p, f"column {column if column is not None else index}"), None


def _read_text(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: is not a UTF-8 text file ({exc}); export the CSV as UTF-8 text") from exc


def _delimiter(line: str) -> str | None:
    for d in (",", ";", "\t"):
        if d in line:
            return d
    return None  # any run of whitespace


def _split(line: str, delimiter: str | None) -> list[str]:
    return [f.strip().strip('"') for f in (line.split(delimiter) if delimiter else line.split())]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column_index(p: Path, column: str | int | None, header: list[str] | None, width: int) -> int:
    if column is None:
        if width != 1:
            names = header if header else [str(i) for i in range(width)]
            raise DataError(f"{p}: has {width} columns {names}; choose one with column=<name or index>")
        return 0
    if isinstance(column, int):
        if not 0 <= column < width:
            raise DataError(f"{p}: column index {column} is out of range (the file has {width} columns)")
        return column
    if header is None or column not in header:
        found = header if header else "no header row"
        raise DataError(
            f"{p}: no column named {column!r} ({found}); pass an existing name or a 0-based index"
        )
    return header.index(column)


def _parse_column(p: Path, rows: list[str], delimiter: str | None, index: int, skipped: int) -> np.ndarray:
    """Parse one column with numpy's C parser; on failure find the offending line for the message."""
    try:
        return np.loadtxt(io.StringIO("\n".join(rows)), delimiter=delimiter, usecols=index, ndmin=1,
                          dtype=np.float64, quotechar='"')
    except ValueError:
        pass
    for i, line in enumerate(rows):
        fields = _split(line, delimiter)
        if index >= len(fields) or not _is_number(fields[index]):
            raise DataError(
                f"{p}: line {i + 1 + skipped} has no number in column {index} ({line.strip()!r}); "
                "remove non-numeric rows or fix the separator"
            )
    raise DataError(f"{p}: could not be parsed as numeric CSV; check the separator and quoting")


def _scale_pcm(data: np.ndarray) -> np.ndarray:
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    return data.astype(np.float32)


def _as_signal(data: Any, p: Path, what: str) -> np.ndarray:
    """Coerce to float32 ``(n,)`` or ``(channels, n)`` and refuse empty or non-finite data."""
    arr = np.asarray(data)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise DataError(
            f"{p}: {what} is not real numeric data (dtype {arr.dtype}); store the samples as numbers"
        )
    arr = np.squeeze(arr) if arr.ndim > 1 and 1 in arr.shape else arr
    if arr.ndim == 0 or arr.size == 0:
        raise DataError(f"{p}: {what} is empty; record some samples or remove the file")
    if arr.ndim > 2:
        raise DataError(f"{p}: {what} has shape {arr.shape}; store one signal as (n,) or (channels, n)")
    if arr.ndim == 2 and arr.shape[0] > arr.shape[1]:
        raise DataError(
            f"{p}: {what} has shape {arr.shape}, more channels than samples; store it as (channels, n) "
            "(transpose it)"
        )
    out = np.ascontiguousarray(arr, dtype=np.float32)
    check_finite(out, f"{p}: {what}")
    return out


def check_finite(samples: np.ndarray, what: str) -> None:
    """Raise :class:`DataError` if ``samples`` holds NaN or inf (a dropped sensor, a bad export)."""
    bad = ~np.isfinite(samples)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(-1))[0])
        raise DataError(
            f"{what} holds {int(bad.sum())} NaN/inf samples (first at flat index {first}); "
            "cut or interpolate the gap before using the recording"
        )


def _mat_rate(arrays: dict[str, np.ndarray]) -> float | None:
    for name in MAT_RATE_KEYS:
        v = arrays.get(name)
        if v is not None and v.size == 1 and np.issubdtype(v.dtype, np.number) and float(v.item()) > 0:
            return float(v.item())
    return None


def _sidecar_rate(p: Path) -> float | None:
    """The rate in ``<name>.json`` (or ``<name>.<ext>.json``) beside a file, if there is one."""
    for side in (p.with_suffix(".json"), p.with_name(p.name + ".json")):
        if not side.is_file():
            continue
        try:
            doc = json.loads(side.read_text(encoding="utf-8"))
            rate = float(doc["sample_rate"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{side}: sidecar must be a JSON object like {{\"sample_rate\": 12000}} ({exc}); "
                "fix or remove it"
            ) from exc
        if rate <= 0:
            raise DataError(f"{side}: sample_rate must be positive, got {rate}")
        return rate
    return None


_READERS: dict[str, Callable[[Path], tuple[np.ndarray, float | None]]] = {
    ".mat": read_mat,
    ".wav": read_wav,
    ".npy": read_npy,
    ".csv": read_csv,
}

#: File suffixes :func:`read_signal` understands.
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_READERS)
