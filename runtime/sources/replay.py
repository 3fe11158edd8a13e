"""Replay recorded vibration files as if sensors were streaming them.

Replay is how a model is checked against real recordings on the device (the daemon, windowing
and fault-state logic see exactly what they would see live) and how demos run without hardware.
Files are read when the source is created, so a missing file, a wrong .mat key or an unknown
rate fails before the daemon starts, and :attr:`ReplaySource.sensors` knows every rate.

Each entry is one sensor. At the end of a file the source either starts over (``loop``; the
stream stays continuous in ``seq`` and the seam is an ordinary sample boundary) or ends that
sensor; when every sensor has ended, :attr:`~runtime.sources.base.Source.finished` is set.

Recordings of one length and rate are stacked as the rows of one array (a bank), so the sensors
that the scheduler moves in lockstep (:mod:`runtime.sources.pacing`) are read as one 2-D slice, a
view, which the windowing copies in one go; a bank checks once that its samples are finite, so
the windowing need not check every block of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from runtime.config_base import StrictModel
from runtime.errors import ConfigError
from runtime.signals.readers import read_signal
from runtime.sources.base import Source
from runtime.sources.config import SourceConfigBase
from runtime.sources.fields import PACING_DESCRIPTION, Pacing, SensorId, require_unique
from runtime.sources.pacing import ChunkStream, RowsReader, run_paced

log = logging.getLogger(__name__)


class ReplayFile(StrictModel):
    """One recording played as one sensor."""

    id: SensorId = Field(..., description="Sensor id the recording is played as.")
    path: Path = Field(..., description="A .wav, .npy, .csv or .mat file.")
    key: str | None = Field(None, description=".mat files: the variable to play (CWRU: e.g. X097_DE_time).")
    column: str | int | None = Field(None, description=".csv files: column name or 0-based index.")
    channel: int | None = Field(None, ge=0, description="Multi-channel files: the 0-based channel to play.")
    sample_rate: float | None = Field(None, gt=0, description="Rate of files that declare none (.npy, .csv, "
                                      "CWRU .mat); must agree with the rate a file does declare.")


class ReplaySourceConfig(SourceConfigBase):
    """Play recordings in real time (optionally faster) or as fast as possible."""

    type: Literal["replay"] = Field("replay", description="Selects the file replay source.")
    files: list[ReplayFile] = Field(..., min_length=1, description="One entry per sensor.")
    chunk: int = Field(1024, gt=0, description="Samples per emitted chunk.")
    pacing: Pacing = Field("realtime", description=PACING_DESCRIPTION)
    speed: float = Field(1.0, gt=0, description="realtime pacing only: playback speed (2.0 = twice as fast).")
    loop: bool = Field(True, description="Start over at the end of a file; false ends that sensor there.")

    @model_validator(mode="after")
    def _unique(self) -> ReplaySourceConfig:
        require_unique(f.id for f in self.files)
        return self

    def sensor_ids(self) -> list[str]:
        return [str(entry.id) for entry in self.files]

    def paths(self) -> list[Path]:
        return [entry.path for entry in self.files]

    def resolve_paths(self, fix: Callable[[Path], Path]) -> None:
        for entry in self.files:
            entry.path = fix(entry.path)


class _Recording:
    """One loaded file, read in order (and around again when looping): a row of its bank."""

    def __init__(self, sensor_id: str, bank: _Bank, row: int, sample_rate: float, loop: bool) -> None:
        self.sensor_id = sensor_id
        self.sample_rate = sample_rate
        self.bank, self.row = bank, row
        self._samples: np.ndarray = bank.samples[row]
        self._loop = loop
        self.pos = 0

    def read(self, n: int) -> np.ndarray | None:
        """Next ``n`` samples; a looping read wraps around the end within one chunk."""
        total = self._samples.size
        if not self._loop:
            out = self._samples[self.pos : self.pos + n]
            self.pos += out.size
            return out if out.size else None
        start = self.pos
        self.pos = (start + n) % total
        if start + n <= total:  # the usual case: one slice (a view; the windower copies what it keeps)
            return self._samples[start : start + n]
        return self._samples[(start + np.arange(n)) % total]


class _Bank:
    """Recordings of one length and rate stacked as the rows of one array, so that sensors replayed in
    lockstep are read as one 2-D slice (a view) instead of one slice per sensor."""

    def __init__(self, samples: np.ndarray, loop: bool) -> None:
        self.samples = samples  # (recordings, samples) float32
        self.loop = loop
        #: no NaN or inf anywhere (checked once here, so the windowing need not check every chunk)
        self.finite = bool(np.isfinite(samples).all())


class _BankReader:
    """Reads rows of one bank, all at one position, together (a cohort of :func:`run_paced`)."""

    def __init__(self, recordings: list[_Recording], rows: slice | np.ndarray) -> None:
        self.recordings, self.rows = recordings, rows
        self.first, self.bank = recordings[0], recordings[0].bank
        self.finite = self.bank.finite

    def read(self, n: int) -> np.ndarray | None:
        """The rows' next ``n`` samples as a ``(rows, n)`` array; None where a read would come out short."""
        samples = self.bank.samples
        total = samples.shape[1]
        start = self.first.pos
        if start + n <= total:
            out = samples[self.rows, start:start + n]
        elif self.bank.loop and n <= total:  # around the end: a copy, once per pass through the file
            out = samples[self.rows][:, (start + np.arange(n)) % total]
        else:  # the end of a file played once: the stream-by-stream reads say how it ends
            return None
        end = (start + n) % total if self.bank.loop else start + n
        for rec in self.recordings:
            rec.pos = end
        return out


def read_together(streams: Sequence[ChunkStream]) -> RowsReader | None:
    """A reader of recordings that are rows of one bank at one position (a replay's usual cohort)."""
    recs = [s for s in streams if isinstance(s, _Recording)]
    if not recs or len(recs) != len(streams):
        return None
    bank, pos = recs[0].bank, recs[0].pos
    if any(r.bank is not bank or r.pos != pos for r in recs):
        return None
    rows = np.array([r.row for r in recs], dtype=np.intp)
    first = int(rows[0])
    consecutive = bool((rows == np.arange(first, first + rows.size)).all())
    return _BankReader(recs, slice(first, first + rows.size) if consecutive else rows)


def _banks(loaded: list[tuple[str, np.ndarray, float]], loop: bool) -> list[_Recording]:
    """Stack the recordings of each (length, rate) into one bank; the recordings in config order."""
    groups: dict[tuple[int, float], list[int]] = {}
    for i, (_, samples, rate) in enumerate(loaded):
        groups.setdefault((samples.size, rate), []).append(i)
    out: list[_Recording | None] = [None] * len(loaded)
    for members in groups.values():
        bank = _Bank(np.stack([loaded[i][1] for i in members]).astype(np.float32, copy=False), loop)
        for row, i in enumerate(members):
            sensor_id, _, rate = loaded[i]
            out[i] = _Recording(sensor_id, bank, row, rate, loop)
    return [r for r in out if r is not None]


def load_recording(entry: ReplayFile) -> tuple[np.ndarray, float]:
    """Read one entry's 1-D float32 samples and rate; raise ConfigError/DataError naming the fix."""
    samples, rate = read_signal(entry.path, key=entry.key, column=entry.column, sample_rate=entry.sample_rate)
    if rate is None:
        raise ConfigError(
            f"replay sensor {entry.id!r}: {entry.path} declares no sample rate; set sample_rate for this "
            "file (CWRU drive-end data is 12000 or 48000)"
        )
    if entry.sample_rate is not None and abs(rate - entry.sample_rate) > 1e-6 * rate:
        raise ConfigError(
            f"replay sensor {entry.id!r}: {entry.path} declares {rate:g} Hz but the config says "
            f"{entry.sample_rate:g} Hz; remove sample_rate from this entry or resample the file"
        )
    return _pick_channel(entry, samples), rate


def _pick_channel(entry: ReplayFile, samples: np.ndarray) -> np.ndarray:
    if samples.ndim == 1:
        if entry.channel not in (None, 0):
            raise ConfigError(f"replay sensor {entry.id!r}: {entry.path} has one channel; remove channel")
        return samples
    channels = samples.shape[0]
    if entry.channel is None or entry.channel >= channels:
        raise ConfigError(
            f"replay sensor {entry.id!r}: {entry.path} has {channels} channels; "
            f"set channel to 0..{channels - 1}"
        )
    return np.ascontiguousarray(samples[entry.channel], dtype=np.float32)


class ReplaySource(Source[ReplaySourceConfig]):
    """Plays every configured file on one thread, interleaved by signal time."""

    type = "replay"
    restartable = False  # a restart would play the files again from their start

    def __init__(self, config: ReplaySourceConfig) -> None:
        super().__init__(config)
        loaded: list[tuple[str, np.ndarray, float]] = []
        for entry in config.files:
            samples, rate = load_recording(entry)
            log.info("replay sensor %s: %s, %d samples at %g Hz (%.1f s)", entry.id, entry.path,
                     samples.size, rate, samples.size / rate)
            loaded.append((entry.id, samples, rate))
        self._recordings = _banks(loaded, config.loop)

    @property
    def sensors(self) -> dict[str, float]:
        return {r.sensor_id: r.sample_rate for r in self._recordings}

    def _run(self) -> None:
        speed = self.config.speed if self.config.pacing == "realtime" else None
        ended = run_paced(self._recordings, chunk=self.config.chunk, speed=speed, stopping=self._stopping,
                          emit_block=self._emit_block, report=self._report, together=read_together)
        if ended:
            self.finished.set()
