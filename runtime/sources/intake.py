"""Check received frames against the configured sensors, shared by the MQTT and UDP sources.

A network source cannot trust its senders: a frame may be corrupt, name a sensor nobody
configured, or carry samples at a rate the model was not trained for. Each such frame is
rejected with a :class:`~runtime.errors.PayloadError` handed to ``on_error`` (blamed on the
sensor when one can be identified), and the source keeps serving every other sensor.

A sender's ``t0`` is checked against the local clock: one further off than ``max_clock_skew_s``
(a gateway without NTP, a clock step, ``t0=1e300``) is replaced by the arrival time and reported
as a :class:`ClockSkewError`, while the samples themselves are kept. Sender time only labels
windows and events; durations run on the local monotonic clock (:mod:`runtime.fault_state`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Literal

from runtime.errors import DataError, PayloadError
from runtime.sources.base import SOURCE_WIDE, SampleChunk
from runtime.sources.frames import (
    MAX_SAMPLES,
    Frame,
    clip_repr,
    decode_frame,
    decode_json_frame,
    decode_payload,
)

log = logging.getLogger(__name__)

PayloadFormat = Literal["auto", "binary", "json"]
PAYLOAD_DESCRIPTION = "auto: binary or JSON told apart by the first bytes; binary only; json only."
SKEW_DESCRIPTION = (
    "Largest difference in seconds between a frame's t0 (end of its samples) and this device's clock; "
    "a frame further off keeps its samples but is stamped with its arrival time, and the rejection is "
    "counted (drsn_edge_timestamps_rejected_total). null trusts every t0."
)
DEFAULT_MAX_CLOCK_SKEW_S = 60.0
_RATE_RTOL = 1e-6


class ClockSkewError(DataError):
    """A frame's t0 is too far from the local clock; its samples were kept with the arrival time."""


class FrameIntake:
    """Decode a payload, match it to a sensor, and emit a chunk or report why not."""

    def __init__(
        self,
        sensors: Mapping[str, float],
        *,
        payload_format: PayloadFormat,
        emit: Callable[[SampleChunk], None],
        report: Callable[[str, Exception], None],
        max_samples: int = MAX_SAMPLES,
        max_clock_skew_s: float | None = DEFAULT_MAX_CLOCK_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sensors = dict(sensors)
        self.payload_format = payload_format
        self._emit = emit
        self._report = report
        self._max_samples = max_samples
        self._max_skew = max_clock_skew_s
        self._clock = clock

    def handle(self, data: bytes | bytearray, *, origin: str, sensor_id: str | None = None) -> bool:
        """Emit the payload's chunk and return True, or report a PayloadError and return False.

        ``sensor_id`` is known from the channel (an MQTT topic); without it (UDP) the frame must
        name its sensor. ``origin`` (topic, sender address) goes into every error message.
        """
        chunk = self.chunk_of(data, origin=origin, sensor_id=sensor_id)
        if chunk is None:
            return False
        self._emit(chunk)
        return True

    def chunk_of(self, data: bytes | bytearray, *, origin: str,
                 sensor_id: str | None = None) -> SampleChunk | None:
        """The payload's chunk, or None after reporting a PayloadError (see :meth:`handle`)."""
        blame = sensor_id or SOURCE_WIDE
        try:
            frame = self._decode(data)
            blame = self._resolve(frame, sensor_id)
            return self._chunk(blame, frame)
        except PayloadError as exc:
            self._report(blame, PayloadError(f"{origin}: {exc}"))
            return None

    def _decode(self, data: bytes | bytearray) -> Frame:
        if self.payload_format == "binary":
            return decode_frame(data, max_samples=self._max_samples)
        if self.payload_format == "json":
            return decode_json_frame(data, max_samples=self._max_samples)
        return decode_payload(data, max_samples=self._max_samples)

    def _resolve(self, frame: Frame, channel_sensor: str | None) -> str:
        """The configured sensor this frame belongs to, or a PayloadError."""
        if channel_sensor is not None:
            if frame.sensor_id is not None and frame.sensor_id != channel_sensor:
                raise PayloadError(
                    f"frame names sensor {clip_repr(frame.sensor_id)} but arrived on the channel of sensor "
                    f"{channel_sensor!r}; fix the sender's sensor id or the topic mapping in the config"
                )
            return channel_sensor
        if frame.sensor_id is None:
            raise PayloadError("frame carries no sensor id; set it in every frame sent to this source")
        if frame.sensor_id not in self.sensors:
            raise PayloadError(
                f"unknown sensor id {clip_repr(frame.sensor_id)}; configured sensors are "
                f"{sorted(self.sensors)}. "
                "Add it to the source's sensors or fix the sender"
            )
        return frame.sensor_id

    def _chunk(self, sensor_id: str, frame: Frame) -> SampleChunk:
        rate = self.sensors[sensor_id]
        if frame.sample_rate is not None and abs(frame.sample_rate - rate) > _RATE_RTOL * rate:
            raise PayloadError(
                f"sensor {sensor_id!r}: frame rate {frame.sample_rate:g} Hz differs from the configured "
                f"{rate:g} Hz; fix the sender or the sensor's sample_rate in the config"
            )
        n = frame.samples.size
        now = self._clock()
        t0 = frame.t0
        if t0 is not None and self._max_skew is not None:
            off = t0 + (n - 1) / rate - now
            if not abs(off) <= self._max_skew:
                self._report(sensor_id, ClockSkewError(
                    f"sensor {sensor_id!r}: frame t0={t0:.6g} puts its last sample {off:+.3g} s from this "
                    f"device's clock (limit +/-{self._max_skew:g} s); its samples are kept and stamped with "
                    "the arrival time. Synchronise the sender's clock (NTP) or raise max_clock_skew_s"))
                t0 = None
        if t0 is None:
            t0 = now - n / rate
        return SampleChunk(sensor_id, frame.samples, rate, frame.seq, t0)
