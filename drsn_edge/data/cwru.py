"""The Case Western Reserve University bearing data set, from its original MATLAB files.

Files are described by ``MANIFEST.csv`` when the folder has one (columns ``file, rate_hz,
load_hp, fault, diameter_in, or_position, file_number, rpm, de_key``, optionally ``fe_key``,
``ba_key``, ``n_samples``), otherwise by their names (``105_IR007_0hp.mat`` in a ``12k_*``
folder, or the common mirror names ``12k_Drive_End_IR007_0_105.mat`` / ``normal_0_97.mat``).

Two properties of the real data shape this module: the normal baseline was recorded at 48 kHz
while most fault files are 12 kHz, so every recording is resampled to one target rate; and the
variable names inside some files do not match their file numbers, so the channel is read by the
manifest's key (or, without a manifest, by the documented ``X<number>_DE_time`` name, verified
to exist), never by "the first key that looks right".
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from drsn_edge.data.recordings import Recording, matches, order_classes
from runtime.errors import DataError
from runtime.signals.readers import read_mat
from runtime.signals.resample import resample as resample_signal

log = logging.getLogger(__name__)

LabelScheme = Literal["10class", "4class"]
FAULTS: tuple[str, ...] = ("normal", "ball", "inner", "outer")
_FAULT_NAMES = {"normal": "normal", "healthy": "normal", "ball": "ball", "b": "ball", "inner": "inner",
                "ir": "inner", "inner_race": "inner", "outer": "outer", "or": "outer", "outer_race": "outer"}
_PREFIX = {"ball": "B", "inner": "IR", "outer": "OR"}
#: The CWRU baseline (normal) files were recorded at 48 kHz; the only rate their names imply.
NORMAL_BASELINE_RATE = 48000.0


@dataclass(frozen=True)
class CwruFile:
    """What is known about one CWRU file before reading its samples."""

    path: Path
    rate_hz: float
    fault: str
    diameter_in: float = 0.0
    or_position: str = ""
    load_hp: int | None = None
    file_number: int | None = None
    rpm: float | None = None
    key: str | None = None
    n_samples: int | None = None

    def label(self, scheme: LabelScheme) -> str:
        """``normal``, ``B007``, ``IR014``, ``OR021@6`` (10-class) or the fault (4-class)."""
        if scheme == "4class" or self.fault == "normal":
            return self.fault
        size = f"{round(self.diameter_in * 1000):03d}"
        position = f"@{self.or_position.lstrip('@')}" if self.fault == "outer" and self.or_position else ""
        return f"{_PREFIX[self.fault]}{size}{position}"

    def meta(self) -> dict[str, Any]:
        return {"dataset": "cwru", "source": str(self.path), "fault": self.fault, "size": self.diameter_in,
                "diameter_in": self.diameter_in, "or_position": self.or_position, "load_hp": self.load_hp,
                "file_number": self.file_number, "rpm": self.rpm, "rate_hz": self.rate_hz, "key": self.key}


def load_cwru(
    root: str | Path | None,
    *,
    sample_rate: float | None = 12000,
    select: Mapping[str, Any] | None = None,
    labels: LabelScheme = "10class",
    channel: str = "DE",
    resample: bool = True,
) -> list[Recording]:
    """Read the CWRU files under ``root`` as labelled recordings at ``sample_rate`` Hz.

    ``select`` filters by metadata before any file is read (``{"load_hp": [0, 1]}``,
    ``{"fault": "inner"}``, ``{"label": "OR007@6"}``). With ``resample=False`` a file at another
    rate raises :class:`DataError`; ``sample_rate=None`` keeps every file's own rate.
    """
    if labels not in ("10class", "4class"):
        raise DataError(f"unknown CWRU label scheme {labels!r}; use '10class' or '4class'")
    files = discover(root, channel=channel)
    chosen = [f for f in files if matches(_fields(f, labels, sample_rate), select or {})]
    if select:
        _check_criteria(select, files, labels, sample_rate)
    if not chosen:
        raise DataError(f"no CWRU file under {root} matches {dict(select or {})}; loosen the selection")
    out = [_read(f, labels, sample_rate, resample, select) for f in chosen]
    order = {c: i for i, c in enumerate(order_classes(r.label for r in out))}
    out.sort(key=lambda r: (order[r.label], r.meta["load_hp"] or 0, r.meta["file_number"] or 0))
    log.info("CWRU: %d recordings, %d classes, at %s Hz", len(out), len(order), sample_rate or "native")
    return out


def discover(root: str | Path | None, *, channel: str = "DE") -> list[CwruFile]:
    """Describe every file from ``MANIFEST.csv`` if present, else from the file names."""
    if root is None:
        raise DataError("no CWRU folder given; pass the folder holding the .mat files (--data DIR)")
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"CWRU folder {base} does not exist; check --data")
    manifest = base / "MANIFEST.csv"
    if manifest.is_file():
        return read_manifest(manifest, channel=channel)
    files = sorted(base.rglob("*.mat"))
    if not files:
        raise DataError(f"no .mat files under {base}; point --data at the CWRU download")
    return [parse_filename(p, channel=channel) for p in files]


def read_manifest(path: Path, *, channel: str = "DE") -> list[CwruFile]:
    """Parse MANIFEST.csv; the channel's key comes from the ``<channel>_key`` column."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    key_col = f"{channel.lower()}_key"
    required = {"file", "rate_hz", "fault", key_col}
    have = set(rows[0]) if rows else set()
    if not rows or not required <= have:
        raise DataError(f"{path}: needs columns {sorted(required)}, has {sorted(have)}; fix the manifest")
    return [_manifest_row(path, i, row, key_col) for i, row in enumerate(rows, start=2)]


def _manifest_row(path: Path, line: int, row: dict[str, str], key_col: str) -> CwruFile:
    def num(name: str) -> float | None:
        text = (row.get(name) or "").strip()
        try:
            return float(text) if text else None
        except ValueError as exc:
            raise DataError(
                f"{path}:{line}: column {name} = {text!r} is not a number; fix the manifest"
            ) from exc

    fault = _FAULT_NAMES.get((row.get("fault") or "").strip().lower())
    if fault is None:
        raise DataError(f"{path}:{line}: unknown fault {row.get('fault')!r}; use one of {', '.join(FAULTS)}")
    key = (row.get(key_col) or "").strip()
    if not key:
        raise DataError(f"{path}:{line}: no {key_col} for {row['file']}; fill in the channel's variable name")
    rate = num("rate_hz")
    if not rate or rate <= 0:
        raise DataError(f"{path}:{line}: rate_hz must be a positive number; fill it in")
    load, number, n = num("load_hp"), num("file_number"), num("n_samples")
    return CwruFile(
        path=path.parent / row["file"], rate_hz=rate, fault=fault, diameter_in=num("diameter_in") or 0.0,
        or_position=(row.get("or_position") or "").strip(), load_hp=None if load is None else int(load),
        file_number=None if number is None else int(number), rpm=num("rpm"), key=key,
        n_samples=None if n is None else int(n),
    )


_FAULT_TOKEN = r"(?P<fault>normal|(?:IR|B|OR)\d{3}(?:@\d{1,2})?)"
_NAME_PATTERNS = (
    re.compile(rf"^(?P<num>\d+)_{_FAULT_TOKEN}_(?P<load>\d)hp$", re.IGNORECASE),  # 105_IR007_0hp
    re.compile(rf"^(?P<rate>12|48)k_(?:Drive|Fan)_End_{_FAULT_TOKEN}_(?P<load>\d)_(?P<num>\d+)$",
               re.IGNORECASE),  # 12k_Drive_End_IR007_0_105
    re.compile(r"^(?P<fault>normal)_(?P<load>\d)_(?P<num>\d+)$", re.IGNORECASE),  # normal_0_97
)
_TOKEN = re.compile(r"^(?P<kind>IR|B|OR)(?P<size>\d{3})(?:@(?P<pos>\d{1,2}))?$", re.IGNORECASE)
_RATE_DIR = re.compile(r"(?<!\d)(12|48)k", re.IGNORECASE)


def parse_filename(path: Path, *, channel: str = "DE") -> CwruFile:
    """Describe a CWRU file from its name and folder; the channel key follows CWRU's naming."""
    m = next((m for pat in _NAME_PATTERNS if (m := pat.match(path.stem))), None)
    if m is None:
        raise DataError(
            f"{path}: cannot tell the fault, load and file number from this name; add a MANIFEST.csv "
            "(columns file, rate_hz, load_hp, fault, diameter_in, or_position, file_number, rpm, de_key)"
        )
    number = int(m.group("num"))
    token = m.group("fault")
    fault, size, position = "normal", 0.0, ""
    t = _TOKEN.match(token)
    if t:
        fault = {"B": "ball", "IR": "inner", "OR": "outer"}[t.group("kind").upper()]
        size, position = int(t.group("size")) / 1000, (f"@{t.group('pos')}" if t.group("pos") else "")
    return CwruFile(path=path, rate_hz=_rate_from_path(path, m.groupdict().get("rate"), fault), fault=fault,
                    diameter_in=size, or_position=position, load_hp=int(m.group("load")), file_number=number,
                    key=f"X{number:03d}_{channel.upper()}_time")


def _rate_from_path(path: Path, rate_group: str | None, fault: str) -> float:
    if rate_group:
        return float(rate_group) * 1000
    for part in reversed(path.parent.parts):
        hit = _RATE_DIR.search(part)
        if hit:
            return float(hit.group(1)) * 1000
    if fault == "normal":
        log.info("%s: no rate in its name or folder; using the CWRU baseline rate of 48 kHz", path)
        return NORMAL_BASELINE_RATE
    raise DataError(
        f"{path}: no sample rate in its name or folder (12k_... or 48k_...); put it in a 12k_DE or 48k_DE "
        "folder or add a MANIFEST.csv with rate_hz"
    )


def _fields(f: CwruFile, labels: LabelScheme, sample_rate: float | None) -> dict[str, Any]:
    return {**f.meta(), "label": f.label(labels), "sample_rate": sample_rate or f.rate_hz}


def _check_criteria(select: Mapping[str, Any], files: list[CwruFile], labels: LabelScheme,
                    sample_rate: float | None) -> None:
    known = set(_fields(files[0], labels, sample_rate)) if files else set()
    unknown = sorted(set(select) - known)
    if unknown:
        raise DataError(f"cannot select CWRU files by {unknown}; use one of {sorted(known)}")


def _read(f: CwruFile, labels: LabelScheme, sample_rate: float | None, resample: bool,
          select: Mapping[str, Any] | None) -> Recording:
    signal, _ = read_mat(f.path, key=f.key)
    if signal.ndim != 1:
        raise DataError(f"{f.path}: variable {f.key} has shape {signal.shape}; expected one channel")
    if f.n_samples is not None and f.n_samples != signal.shape[-1]:
        log.warning("%s: %d samples, the manifest says %d; is it the right file?",
                    f.path, len(signal), f.n_samples)
    rate = f.rate_hz
    if sample_rate is not None and rate != sample_rate:
        if not resample:
            raise DataError(
                f"{f.path} was recorded at {rate:g} Hz, not {sample_rate:g} Hz; enable resampling or select "
                f"files at that rate (select rate_hz={sample_rate:g})"
            )
        signal = resample_signal(signal, rate, sample_rate)
        rate = sample_rate
    meta = {**f.meta(), "original_rate": f.rate_hz}
    if select:
        meta["selection"] = dict(select)
    return Recording(signal, float(rate), f.label(labels), meta)
