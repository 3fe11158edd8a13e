"""Cut one sensor's sample stream into the model's normalised windows.

A :class:`SensorWindower` takes chunks of any size as they arrive (an MQTT message, a UDP
datagram, a block from a sound card) and returns every window that became complete. The window
length, default hop, channel count, rate and normalisation all come from the model's metadata, so
the device cannot cut windows differently from training.

This is the daemon's hot path (dozens of sensors at ~12 kHz), so every chunk is handled with a
few numpy operations: samples are appended to a linear buffer, all complete windows are taken as
one strided view and normalised in one call, and the unused tail is moved to the front. A linear
buffer (rather than a wrap-around ring) keeps every window contiguous, so no window is ever
stitched from two pieces.

A stream discontinuity (a sequence-number jump, or a chunk with NaN/inf) restarts the window:
a window never spans a gap, because the model would see a step that is not in the machine.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.artifact import ModelMetadata, SignalSpec
from runtime.errors import ConfigError, DataError
from runtime.signals.normalize import normalize_windows
from runtime.signals.resample import StreamResampler

log = logging.getLogger(__name__)

_RATE_RTOL = 1e-9


@dataclass(frozen=True, slots=True)
class Window:
    """One normalised model input and where it came from.

    ``t_mono`` is the monotonic time at which the window's last sample was received (the daemon
    measures end-to-end latency from it); ``t_wall`` is the wall-clock time of that sample, from
    the sensor's own timestamp when the source provides one.
    """

    sensor_id: str
    index: int
    data: np.ndarray
    seq: int | None
    t_mono: float
    t_wall: float
    #: False: ``data`` holds the raw samples and the batcher normalises the whole batch at once
    normalized: bool = True


@dataclass
class WindowerStats:
    """Running counts for one sensor, read by the daemon's metrics."""

    samples: int = 0
    windows: int = 0
    gaps: int = 0
    dropped_samples: int = 0
    bad_chunks: int = 0
    restarts: int = 0


def signal_spec(metadata: ModelMetadata) -> SignalSpec:
    """The model's 1-D signal spec, or a ConfigError for models that do not take sample windows."""
    if metadata.signal is None or metadata.input.layout != "NCW":
        raise ConfigError(
            f"model {metadata.model.name} takes {metadata.input.layout} images, not vibration windows; "
            "the daemon needs a 1-D signal model (exported with a signal spec)"
        )
    return metadata.signal


def check_rates(sensor_id: str, sensor_rate: float, model_rate: float) -> bool:
    """Validate a sensor's rate against the model's; return True when resampling is needed.

    Only downsampling is allowed: upsampling invents no information and the model would see a
    spectrum with an empty top band it was never trained on.
    """
    if not (math.isfinite(sensor_rate) and sensor_rate > 0):
        raise ConfigError(f"sensor {sensor_id!r}: sample rate {sensor_rate} must be a positive number of Hz")
    if math.isclose(sensor_rate, model_rate, rel_tol=_RATE_RTOL):
        return False
    if sensor_rate < model_rate:
        raise ConfigError(
            f"sensor {sensor_id!r} samples at {sensor_rate:g} Hz but the model needs {model_rate:g} Hz; "
            f"configure the sensor at {model_rate:g} Hz or more, or use a model trained at "
            f"<= {sensor_rate:g} Hz"
        )
    return True


class SensorWindower:
    """Turns one sensor's chunks into model windows (see the module docstring for the policy)."""

    def __init__(
        self,
        sensor_id: str,
        sensor_rate: float,
        metadata: ModelMetadata,
        hop: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        normalize: bool = True,
    ) -> None:
        """``normalize=False`` leaves the windows raw (``Window.normalized`` False) for a batcher that
        normalises each batch in one call (the daemon: one operation for all sensors of a batch)."""
        spec = signal_spec(metadata)
        self.sensor_id = sensor_id
        self.sensor_rate = float(sensor_rate)
        self.model_rate = float(spec.sample_rate)
        self.window = spec.window
        self.channels = spec.channels
        self.hop = spec.hop if hop is None else int(hop)
        if self.hop <= 0:
            raise ConfigError(f"sensor {sensor_id!r}: hop {hop} must be a positive number of samples")
        self.normalization = metadata.normalization
        self.normalize = normalize
        needs_resampling = check_rates(sensor_id, self.sensor_rate, self.model_rate)
        # one resampler filters all channels of this sensor in one vectorised call
        self._resampler = StreamResampler(self.sensor_rate, self.model_rate) if needs_resampling else None
        self._clock, self._wall_clock = clock, wall_clock
        self._buf = np.empty((self.channels, 2 * self.window + self.hop), dtype=np.float32)
        self._len = 0  # samples held in the buffer
        self._used = 0  # leading buffer samples already part of an emitted window
        self._skip = 0  # samples still to discard when hop > window
        self._last_seq: int | None = None
        self._next_index = 0
        self.stats = WindowerStats()

    @property
    def resampling(self) -> bool:
        return self._resampler is not None

    def push(self, samples: Any, seq: int | None = None, t0: float | None = None) -> list[Window]:
        """Add a chunk and return the windows it completed (possibly none).

        ``samples`` has shape ``(n,)`` or ``(n, channels)`` at the sensor rate; ``seq`` is the
        source's per-message sequence number (a jump is a gap); ``t0`` the wall-clock time of the
        chunk's first sample, when the sensor stamps its data. Raises :class:`DataError` for
        NaN/inf or a wrong shape, after counting the chunk and restarting the window.
        """
        t_mono, t_wall_now = self._clock(), self._wall_clock()
        try:
            x = self._as_channels(samples)
        except DataError:
            self._reject(0)
            raise
        n = x.shape[1]
        if seq is not None:
            self._check_seq(int(seq), n)
        if n == 0:
            return []
        # one float64 sum is NaN/inf exactly when a sample is (it cannot overflow for float32 input)
        if not math.isfinite(float(np.add.reduce(x, axis=None, dtype=np.float64))):
            self._reject(n)
            raise DataError(
                f"sensor {self.sensor_id!r}: chunk of {n} samples contains NaN or inf; it was dropped and "
                "the window restarted. Check the sensor's wiring and its driver's overflow handling"
            )
        self.stats.samples += n
        t_end = t_wall_now if t0 is None else float(t0) + (n - 1) / self.sensor_rate
        return self._emit(self._resample(x), seq, t_mono, t_end)

    def reset(self) -> None:
        """Forget buffered samples and the last sequence number (a source reconnected)."""
        self._restart()
        self._last_seq = None

    def _as_channels(self, samples: Any) -> np.ndarray:
        """Return the chunk as float32 of shape (channels, n)."""
        try:
            a: np.ndarray = np.asarray(samples, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(f"sensor {self.sensor_id!r}: samples are not numbers ({exc})") from exc
        if a.ndim == 1 and self.channels == 1:
            return a.reshape(1, -1)
        if a.ndim == 2 and a.shape[1] == self.channels:
            by_channel: np.ndarray = a.T
            return by_channel
        raise DataError(
            f"sensor {self.sensor_id!r}: samples of shape {a.shape} do not fit the model's {self.channels} "
            f"channel(s); send shape (n,) for one channel or (n, {self.channels})"
        )

    def _reject(self, n: int) -> None:
        """Count an unusable chunk of ``n`` samples; the stream now has a hole, so restart."""
        self.stats.bad_chunks += 1
        self.stats.dropped_samples += n
        self._restart()

    def _check_seq(self, seq: int, n: int) -> None:
        last, self._last_seq = self._last_seq, seq
        if last is None or seq == last + 1:
            return
        missing = max(seq - last - 1, 0) * n  # estimate: the lost messages were the size of this one
        self.stats.gaps += 1
        self.stats.dropped_samples += missing
        log.warning(
            "sensor %s: sequence jumped from %d to %d (~%d samples lost); window restarted",
            self.sensor_id,
            last,
            seq,
            missing,
        )
        self._restart()

    def _restart(self) -> None:
        unused = max(self._len - self._used, 0)
        self.stats.dropped_samples += round(unused * self.sensor_rate / self.model_rate)
        self.stats.restarts += 1
        self._len = self._used = self._skip = 0
        if self._resampler is not None:
            self._resampler.reset()

    def _resample(self, x: np.ndarray) -> np.ndarray:
        if self._resampler is None:
            return x
        return self._resampler.process(x)

    def _append(self, y: np.ndarray) -> None:
        need = self._len + y.shape[1]
        if need > self._buf.shape[1]:
            grown = np.empty((self.channels, max(need, 2 * self._buf.shape[1])), dtype=np.float32)
            grown[:, : self._len] = self._buf[:, : self._len]
            self._buf = grown
        self._buf[:, self._len : need] = y
        self._len = need

    def _emit(self, y: np.ndarray, seq: int | None, t_mono: float, t_end: float) -> list[Window]:
        """Append model-rate samples, cut every complete window, keep the tail for the next chunk."""
        if self._skip:
            k = min(self._skip, y.shape[1])
            y, self._skip = y[:, k:], self._skip - k
        self._append(y)
        if self._len < self.window:
            return []
        count = (self._len - self.window) // self.hop + 1
        buf = self._buf
        c_stride, s_stride = buf.strides
        # (count, channels, window) view into the linear buffer without copying; the ndarray
        # constructor costs a fraction of as_strided (which builds a helper object per call)
        view = np.ndarray((count, self.channels, self.window), dtype=np.float32, buffer=buf,
                          strides=(s_stride * self.hop, c_stride, s_stride))
        if self.normalize:
            data = normalize_windows(view, self.normalization)
            if self.normalization.kind == "none":
                data = data.copy()  # normalisation "none" returns the view; the buffer is about to move
        else:
            data = view.copy()  # raw: the batcher normalises the batch (the buffer is about to move)
        # wall time of each window's last sample, counted back from the chunk's last sample
        first_end = t_end - (self._len - self.window) / self.model_rate
        step = self.hop / self.model_rate
        sid, start = self.sensor_id, self._next_index
        done = self.normalize
        windows = [Window(sid, start + i, data[i], seq, t_mono, first_end + i * step, done)
                   for i in range(count)]
        self._next_index += count
        self.stats.windows += count
        self._consume(count * self.hop)
        return windows

    def _consume(self, consumed: int) -> None:
        if consumed >= self._len:
            self._skip = consumed - self._len
            self._len = 0
            self._used = 0
            return
        rest = self._len - consumed
        self._buf[:, :rest] = self._buf[:, consumed : self._len]
        self._len = rest
        self._used = min(max(self.window - self.hop, 0), rest)
