"""The wire format of raw vibration samples sent to the daemon over MQTT or UDP.

A sensor gateway (an ESP32, a PLC bridge, a DAQ script) sends one *frame* per chunk of samples,
either in the compact binary form below or as JSON for gateways that cannot pack bytes.

Binary frame, version 1, all fields little-endian, 40-byte header::

    offset size type     field
    0      4    bytes    magic         b"DRSV"
    4      1    uint8    version       1
    5      1    uint8    dtype         1 = int16, 2 = float32
    6      1    uint8    flags         bit 0: a sensor id follows the header; other bits must be 0
    7      1    uint8    id_len        bytes of the UTF-8 sensor id (0 when flag bit 0 is clear)
    8      8    float64  sample_rate   samples per second, > 0
    16     8    uint64   seq           per-sensor chunk counter, +1 per frame; a jump means lost frames
    24     8    float64  t0            Unix time (s) of the first sample; 0 = unknown, the receiver
                                       stamps the arrival time instead
    32     4    float32  scale         int16 only: physical value = raw * scale (e.g. g per count)
    36     4    uint32   count         number of samples that follow
    40     id_len       sensor id     UTF-8, present when flag bit 0 is set
    ...    count * 2|4  samples       int16 or float32

The frame length must be exactly header + id_len + count * itemsize: a short frame is truncated,
a long one is corrupt, and neither is guessed at. Samples must be finite.

JSON frame (UTF-8 object)::

    {"seq": 17, "rate": 12000.0, "t0": 1718000000.25, "samples": [0.01, -0.02, ...],
     "sensor_id": "pump-1"}

``seq`` and ``samples`` are required; ``rate``, ``t0`` and ``sensor_id`` are optional.

The codec here is pure (bytes in, :class:`Frame` out); what a frame must match for a configured
sensor (its rate, its id) is checked by :mod:`runtime.sources.intake`.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from runtime.errors import PayloadError

MAGIC = b"DRSV"
VERSION = 1
HEADER = struct.Struct("<4sBBBBdQdfI")
FLAG_SENSOR_ID = 0x01
DTYPE_CODES: dict[int, np.dtype[Any]] = {1: np.dtype("<i2"), 2: np.dtype("<f4")}
_DTYPE_NAMES = {"int16": 1, "float32": 2}
#: the largest frame a gateway may send; far above one UDP datagram, far below a memory problem
MAX_SAMPLES = 1 << 20
_UINT64_MAX = (1 << 64) - 1

FrameDtype = Literal["int16", "float32"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded chunk as the sender described it (not yet checked against any config)."""

    samples: np.ndarray
    seq: int
    sample_rate: float | None
    t0: float | None
    sensor_id: str | None


def encode_frame(
    samples: Sequence[float] | np.ndarray,
    *,
    sample_rate: float,
    seq: int,
    t0: float = 0.0,
    sensor_id: str | None = None,
    dtype: FrameDtype = "float32",
    scale: float | None = None,
) -> bytes:
    """Pack samples into a binary frame (the inverse of :func:`decode_frame`).

    For ``dtype="int16"`` float samples are quantised as ``round(x / scale)``; without a
    ``scale`` the largest magnitude maps to full scale. Samples that are already ``int16`` are
    sent as raw counts with ``scale`` (default 1.0), as an ADC would produce them.
    """
    x = np.asarray(samples)
    if x.ndim != 1 or x.size == 0:
        raise PayloadError(f"a frame holds a non-empty 1-D array of samples, got shape {x.shape}")
    if not 0 <= seq <= _UINT64_MAX:
        raise PayloadError(f"seq {seq} does not fit the frame's uint64 counter; restart counting at 0")
    code = _DTYPE_NAMES.get(dtype)
    if code is None:
        raise PayloadError(f"unknown frame dtype {dtype!r}; use 'int16' or 'float32'")
    body, scale_out = _pack_samples(x, dtype, scale)
    sid = b"" if sensor_id is None else sensor_id.encode("utf-8")
    if len(sid) > 255:
        raise PayloadError(f"sensor id {sensor_id!r} is {len(sid)} bytes in UTF-8; the frame allows 255")
    flags = FLAG_SENSOR_ID if sid else 0
    head = HEADER.pack(MAGIC, VERSION, code, flags, len(sid), float(sample_rate), seq, float(t0),
                       scale_out, x.size)
    return head + sid + body


def _pack_samples(x: np.ndarray, dtype: FrameDtype, scale: float | None) -> tuple[bytes, float]:
    """Return (sample bytes, scale field) for the frame's dtype."""
    if dtype == "float32":
        return np.ascontiguousarray(x, dtype="<f4").tobytes(), 1.0
    if x.dtype == np.int16:
        return np.ascontiguousarray(x, dtype="<i2").tobytes(), float(1.0 if scale is None else scale)
    xf = np.asarray(x, dtype=np.float64)
    if scale is None:
        peak = float(np.max(np.abs(xf))) if np.all(np.isfinite(xf)) else 0.0
        scale = peak / 32767.0 if peak > 0 else 1.0
    q = np.clip(np.rint(xf / scale), -32768, 32767).astype("<i2")
    return q.tobytes(), float(scale)


def decode_frame(data: bytes | bytearray | memoryview, *, max_samples: int = MAX_SAMPLES) -> Frame:
    """Parse and validate a binary frame; raise :class:`PayloadError` naming what is wrong."""
    buf = bytes(data)
    if len(buf) < HEADER.size:
        raise PayloadError(
            f"binary frame truncated: {len(buf)} bytes, the header alone is {HEADER.size}; "
            "send whole frames (one frame per MQTT message or UDP datagram)"
        )
    magic, version, code, flags, id_len, rate, seq, t0, scale, count = HEADER.unpack_from(buf)
    _check_header(magic, version, code, flags, id_len, count, max_samples)
    dt = DTYPE_CODES[code]
    expected = HEADER.size + id_len + count * dt.itemsize
    if len(buf) != expected:
        what = "truncated" if len(buf) < expected else "has trailing bytes"
        raise PayloadError(
            f"binary frame {what}: {len(buf)} bytes, but its header declares {count} {dt.name} samples "
            f"and a {id_len}-byte sensor id ({expected} bytes); fix the sender's count or length"
        )
    sensor_id = _decode_id(buf[HEADER.size : HEADER.size + id_len]) if id_len else None
    _check_number("sample_rate", rate, positive=True)
    _check_number("t0", t0, positive=False)
    raw = np.frombuffer(buf, dtype=dt, count=count, offset=HEADER.size + id_len)
    samples = _to_float32(raw, dt, scale)
    return Frame(samples, int(seq), float(rate), float(t0) if t0 > 0 else None, sensor_id)


def _check_header(magic: bytes, version: int, code: int, flags: int, id_len: int, count: int,
                  max_samples: int) -> None:
    """Reject a header this reader cannot interpret, before touching the body."""
    if magic != MAGIC:
        raise PayloadError(
            f"not a drsn-edge frame: magic {magic!r}, expected {MAGIC!r}; check that the sender uses "
            "runtime.sources.frames.encode_frame's layout (or send the JSON form)"
        )
    if version != VERSION:
        raise PayloadError(f"frame version {version} is not supported (this reader knows {VERSION}); "
                           "upgrade drsn-edge or downgrade the sender")
    if code not in DTYPE_CODES:
        raise PayloadError(f"unknown sample dtype code {code}; use 1 (int16) or 2 (float32)")
    if flags & ~FLAG_SENSOR_ID:
        raise PayloadError(f"unknown frame flags 0x{flags:02x}; only bit 0 (sensor id) is defined in "
                           f"v{VERSION}")
    if bool(flags & FLAG_SENSOR_ID) != (id_len > 0):
        raise PayloadError(f"frame flags 0x{flags:02x} disagree with its sensor-id length {id_len}; "
                           "set bit 0 exactly when a sensor id follows the header")
    if count == 0:
        raise PayloadError("frame carries no samples; send at least one sample per frame")
    if count > max_samples:
        raise PayloadError(f"frame declares {count} samples, above the limit of {max_samples}; "
                           "split it into smaller frames")


def _decode_id(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"frame sensor id {raw!r} is not valid UTF-8; send the id as UTF-8 text") from exc


def _check_number(name: str, value: float, *, positive: bool) -> None:
    if not math.isfinite(value) or (value <= 0 if positive else value < 0):
        bound = "positive" if positive else "non-negative (0 = unknown)"
        raise PayloadError(f"frame field {name}={value} must be finite and {bound}; fix the sender")


def _to_float32(raw: np.ndarray, dt: np.dtype[Any], scale: float) -> np.ndarray:
    """Convert wire samples to physical float32 values and reject NaN/inf."""
    if dt.kind == "i":
        _check_number("scale", scale, positive=True)
        samples: np.ndarray = raw.astype(np.float32) * np.float32(scale)
    else:
        samples = raw.astype(np.float32)
    if not np.isfinite(samples).all():  # the method: np.all's Python wrapper costs twice the check
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise PayloadError(f"frame has {bad} NaN/inf samples of {samples.size}; the sender must send "
                           "finite values (drop or repair the chunk at the source)")
    return samples


def encode_json_frame(
    samples: Sequence[float] | np.ndarray,
    *,
    seq: int,
    sample_rate: float | None = None,
    t0: float | None = None,
    sensor_id: str | None = None,
) -> bytes:
    """Serialise a chunk in the JSON form (for gateways and tests)."""
    doc: dict[str, Any] = {"seq": int(seq), "samples": [float(v) for v in np.asarray(samples).ravel()]}
    if sample_rate is not None:
        doc["rate"] = float(sample_rate)
    if t0 is not None:
        doc["t0"] = float(t0)
    if sensor_id is not None:
        doc["sensor_id"] = sensor_id
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def decode_json_frame(data: bytes | bytearray | memoryview | str, *, max_samples: int = MAX_SAMPLES) -> Frame:
    """Parse and validate a JSON frame; raise :class:`PayloadError` naming what is wrong."""
    try:
        doc = json.loads(bytes(data) if not isinstance(data, str) else data)
    except RecursionError as exc:  # deeply nested arrays: one 2 KB datagram must not end the source
        raise PayloadError(
            "JSON frame is nested too deeply to parse; a frame is one flat object with a list of numbers"
        ) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integers of thousands of digits
        raise PayloadError(
            f"JSON frame is not valid JSON ({clip_repr(exc)}); send a UTF-8 JSON object"
        ) from exc
    if not isinstance(doc, dict):
        raise PayloadError(f"JSON frame must be an object with seq and samples, got {type(doc).__name__}")
    unknown = set(doc) - {"seq", "rate", "t0", "samples", "sensor_id"}
    if unknown:
        raise PayloadError(f"JSON frame has unknown keys {clip_repr(sorted(unknown))}; allowed: seq, rate, "
                           "t0, samples, sensor_id")
    seq = doc.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= _UINT64_MAX:
        raise PayloadError(
            f"JSON frame needs an integer seq >= 0 (a per-sensor chunk counter), got {clip_repr(seq)}"
        )
    rate = _json_number(doc, "rate", positive=True)
    t0 = _json_number(doc, "t0", positive=False)
    sensor_id = doc.get("sensor_id")
    if sensor_id is not None and not isinstance(sensor_id, str):
        raise PayloadError(f"JSON frame sensor_id must be a string, got {clip_repr(sensor_id)}")
    return Frame(_json_samples(doc.get("samples"), max_samples), seq, rate, t0 or None, sensor_id)


def _json_number(doc: dict[str, Any], key: str, *, positive: bool) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(f"JSON frame field {key} must be a number, got {clip_repr(value)}")
    number = _as_float(value, key)
    _check_number(key, number, positive=positive)
    return number


def _as_float(value: int | float, what: str) -> float:
    """``float(value)``, with integers beyond the float range rejected instead of overflowing."""
    try:
        return float(value)
    except OverflowError as exc:
        raise PayloadError(f"JSON frame field {what} is an integer too large for a float; fix the sender") \
            from exc


def clip_repr(value: object, limit: int = 120) -> str:
    """``repr`` cut to ``limit`` characters: an error message must not carry a 10 MB payload."""
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _json_samples(values: Any, max_samples: int) -> np.ndarray:
    if not isinstance(values, list) or not values:
        raise PayloadError("JSON frame needs a non-empty list 'samples' of numbers")
    if len(values) > max_samples:
        raise PayloadError(f"JSON frame holds {len(values)} samples, above the limit of {max_samples}; "
                           "split it into smaller frames")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise PayloadError("JSON frame 'samples' must contain only numbers (no strings, nulls or lists)")
    try:
        with np.errstate(over="ignore"):  # values beyond float32 become inf and are rejected below
            x = np.asarray(values, dtype=np.float64).astype(np.float32)
    except OverflowError as exc:  # a Python integer beyond the float64 range
        raise PayloadError("JSON frame 'samples' holds an integer too large for a float; send finite "
                           "physical values") from exc
    return _to_float32(x, np.dtype("<f4"), 1.0)


def decode_payload(data: bytes | bytearray | memoryview, *, max_samples: int = MAX_SAMPLES) -> Frame:
    """Decode either form, told apart by the first bytes (binary magic, or a JSON object)."""
    head = bytes(data[:4])
    if head == MAGIC:
        return decode_frame(data, max_samples=max_samples)
    if bytes(data).lstrip()[:1] == b"{":
        return decode_json_frame(data, max_samples=max_samples)
    raise PayloadError(
        f"payload is neither a binary frame (magic {MAGIC!r}) nor a JSON object (starts with {head!r}); "
        "see runtime/sources/frames.py for both formats"
    )
