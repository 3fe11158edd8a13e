"""Cut one sensor's sample stream into the model's normalised windows.

A :class:`SensorWindower` takes chunks of any size as they arrive (an MQTT message, a UDP
datagram, a block from a sound card) and returns every window that became complete. The window
length, default hop, channel count, rate and normalisation all come from the model's metadata, so
the device cannot cut windows differently from training.

This is the daemon's hot path (dozens of sensors at ~12 kHz), so every chunk is handled with a
few numpy operations: samples are appended to a linear buffer, all complete windows are taken as
one strided view and normalised in one call, and the unused tail is moved to the front. A linear
buffer (rather than a wrap-around ring) keeps every window contiguous, so no window is ever
stitched from two pieces. A sensor's buffer is one row of its model's
:class:`~runtime.window_group.WindowGroup`, which windows a block of many sensors' chunks in one
set of numpy operations (the daemon's path) and returns :class:`WindowBlock` arrays;
:meth:`SensorWindower.push` returns :class:`Window` objects for the consumers that want one each.

A stream discontinuity (a sequence-number jump, or a chunk with NaN/inf) restarts the window:
a window never spans a gap, because the model would see a step that is not in the machine.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from runtime.artifact import ModelMetadata, SignalSpec
from runtime.errors import ConfigError
from runtime.signals.resample import StreamResampler
from runtime.window_block import Window, WindowBlock
from runtime.window_group import WindowerStats, WindowGroup

log = logging.getLogger(__name__)

__all__ = ["SensorWindower", "Window", "WindowBlock", "WindowerStats", "check_rates", "signal_spec"]

_RATE_RTOL = 1e-9


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
    """Turns one sensor's chunks into model windows (see the module docstring for the policy).

    The sensor's state is one row of a :class:`~runtime.window_group.WindowGroup`: pass the
    ``group`` its model's other sensors share (same window, hop and normalisation) and the daemon
    can window all of them at once (:meth:`WindowGroup.push_block`); without one, the windower
    has a group of its own.
    """

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
        group: WindowGroup | None = None,
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
        resampler = StreamResampler(self.sensor_rate, self.model_rate) if needs_resampling else None
        if group is None:
            group = WindowGroup(self.window, self.hop, self.channels, self.model_rate, self.normalization,
                                normalize, clock, wall_clock)
        elif (group.window, group.hop, group.channels, group.model_rate, group.normalize) != (
                self.window, self.hop, self.channels, self.model_rate, normalize):
            raise ValueError(f"sensor {sensor_id!r}: its window settings differ from the group's")
        self.group = group
        self.row = group.add_sensor(sensor_id, self.sensor_rate, resampler)
        self.stats: WindowerStats = group.stats[self.row]
        self.resampling = resampler is not None

    def push(self, samples: Any, seq: int | None = None, t0: float | None = None) -> list[Window]:
        """Add a chunk and return the windows it completed (possibly none).

        ``samples`` has shape ``(n,)`` or ``(n, channels)`` at the sensor rate; ``seq`` is the
        source's per-message sequence number (a jump is a gap); ``t0`` the wall-clock time of the
        chunk's first sample, when the sensor stamps its data. Raises :class:`DataError` for
        NaN/inf or a wrong shape, after counting the chunk and restarting the window.
        """
        block = self.push_block(samples, seq, t0)
        return [] if block is None else block.windows()

    def push_block(self, samples: Any, seq: int | None = None, t0: float | None = None) -> WindowBlock | None:
        """:meth:`push` without building a :class:`Window` per window (None: no window completed)."""
        return self.group.push_row(self.row, samples, seq, t0)

    def reset(self) -> None:
        """Forget buffered samples and the last sequence number (a source reconnected)."""
        self.group.reset(self.row)
