"""The raw-sample wire format: both forms round-trip, and every malformed frame is named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtime.errors import PayloadError
from runtime.sources.frames import (
    HEADER,
    MAGIC,
    decode_frame,
    decode_json_frame,
    decode_payload,
    encode_frame,
    encode_json_frame,
)

RNG = np.random.default_rng(7)
SAMPLES = RNG.standard_normal(300).astype(np.float32)


def _frame(*, magic: bytes = MAGIC, version: int = 1, code: int = 2, flags: int = 0, sid: bytes = b"",
           rate: float = 12000.0, seq: int = 3, t0: float = 1.5, scale: float = 1.0,
           count: int | None = None, body: bytes | None = None) -> bytes:
    """A hand-packed frame, so malformed variants can be built field by field."""
    body = SAMPLES.astype("<f4").tobytes() if body is None else body
    n = SAMPLES.size if count is None else count
    return HEADER.pack(magic, version, code, flags, len(sid), rate, seq, t0, scale, n) + sid + body


def test_header_is_40_bytes_little_endian() -> None:
    raw = encode_frame([1.0], sample_rate=100.0, seq=0x0102, t0=0.0)
    assert HEADER.size == 40 and len(raw) == 44
    assert raw[:4] == MAGIC and raw[16:18] == b"\x02\x01"


def test_float32_round_trip_with_sensor_id() -> None:
    raw = encode_frame(SAMPLES, sample_rate=12000.0, seq=41, t0=1_700_000_000.25, sensor_id="pump-1")
    frame = decode_frame(raw)
    np.testing.assert_array_equal(frame.samples, SAMPLES)
    assert frame.samples.dtype == np.float32
    assert (frame.seq, frame.sample_rate, frame.sensor_id) == (41, 12000.0, "pump-1")
    assert frame.t0 == 1_700_000_000.25


def test_frame_without_id_or_clock() -> None:
    frame = decode_frame(encode_frame(SAMPLES, sample_rate=25600.0, seq=0))
    assert frame.sensor_id is None and frame.t0 is None


def test_int16_quantises_within_half_a_step() -> None:
    frame = decode_frame(encode_frame(SAMPLES, sample_rate=1000.0, seq=1, dtype="int16"))
    step = float(np.max(np.abs(SAMPLES))) / 32767
    assert np.max(np.abs(frame.samples - SAMPLES)) <= step / 2 + 1e-7


def test_int16_raw_counts_use_the_given_scale() -> None:
    counts = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    frame = decode_frame(encode_frame(counts, sample_rate=1000.0, seq=1, dtype="int16", scale=0.001))
    np.testing.assert_allclose(frame.samples, counts * 0.001, rtol=1e-6)


def test_json_round_trip_and_auto_detection() -> None:
    raw = encode_json_frame(SAMPLES[:5], seq=9, sample_rate=12000.0, t0=12.5, sensor_id="fan")
    for frame in (decode_json_frame(raw), decode_payload(b"  " + raw)):
        np.testing.assert_array_equal(frame.samples, SAMPLES[:5])
        assert (frame.seq, frame.sample_rate, frame.t0, frame.sensor_id) == (9, 12000.0, 12.5, "fan")
    assert decode_payload(encode_frame(SAMPLES, sample_rate=1.0, seq=2)).seq == 2


def test_json_rate_and_t0_are_optional() -> None:
    frame = decode_json_frame(b'{"seq": 0, "samples": [1, 2.5]}')
    assert frame.sample_rate is None and frame.t0 is None
    np.testing.assert_array_equal(frame.samples, [1.0, 2.5])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_frame()[:39], r"truncated: 39 bytes, the header alone is 40"),
        (_frame()[:-1], r"truncated: .*declares 300 float32 samples"),
        (_frame() + b"\x00", r"has trailing bytes"),
        (_frame(count=301), r"truncated"),
        (_frame(magic=b"XXXX"), r"not a drsn-edge frame: magic b'XXXX'"),
        (_frame(version=2), r"frame version 2 is not supported"),
        (_frame(code=7), r"unknown sample dtype code 7"),
        (_frame(flags=0x04), r"unknown frame flags 0x04"),
        (_frame(flags=1), r"disagree with its sensor-id length 0"),
        (_frame(sid=b"abc"), r"disagree with its sensor-id length 3"),
        (_frame(flags=1, sid=b"\xff\xfe"), r"not valid UTF-8"),
        (_frame(count=0, body=b""), r"carries no samples"),
        (_frame(rate=0.0), r"sample_rate=0.0 must be finite and positive"),
        (_frame(rate=float("nan")), r"sample_rate=nan"),
        (_frame(t0=-1.0), r"t0=-1.0 must be finite and non-negative"),
        (_frame(body=np.r_[SAMPLES[:-1], np.nan].astype("<f4").tobytes()), r"1 NaN/inf samples of 300"),
        (_frame(body=np.r_[SAMPLES[:-2], np.inf, -np.inf].astype("<f4").tobytes()), r"2 NaN/inf"),
        (_frame(code=1, scale=0.0, body=b"\x01\x00" * 300), r"scale=0.0 must be finite and positive"),
    ],
)
def test_malformed_binary_frames_are_named(raw: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_frame(raw)


def test_oversized_frame_is_refused_before_reading_its_body() -> None:
    with pytest.raises(PayloadError, match=r"declares 300 samples, above the limit of 100"):
        decode_frame(_frame(), max_samples=100)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"{not json", r"not valid JSON"),
        (b"[1, 2]", r"must be an object"),
        (b'{"samples": [1.0]}', r"needs an integer seq"),
        (b'{"seq": true, "samples": [1.0]}', r"needs an integer seq"),
        (b'{"seq": -1, "samples": [1.0]}', r"needs an integer seq"),
        (b'{"seq": 0}', r"non-empty list 'samples'"),
        (b'{"seq": 0, "samples": []}', r"non-empty list 'samples'"),
        (b'{"seq": 0, "samples": [1.0, "2"]}', r"only numbers"),
        (b'{"seq": 0, "samples": [1.0, null]}', r"only numbers"),
        (b'{"seq": 0, "samples": [1.0, NaN]}', r"1 NaN/inf samples"),
        (b'{"seq": 0, "samples": [1e300]}', r"1 NaN/inf samples"),
        (b'{"seq": 0, "samples": [1.0], "rate": "fast"}', r"rate must be a number"),
        (b'{"seq": 0, "samples": [1.0], "rate": -5}', r"rate=-5.0 must be finite and positive"),
        (b'{"seq": 0, "samples": [1.0], "sensor_id": 3}', r"sensor_id must be a string"),
        (b'{"seq": 0, "samples": [1.0], "sampels": [2.0]}', r"unknown keys \['sampels'\]"),
    ],
)
def test_malformed_json_frames_are_named(doc: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_json_frame(doc)


def test_payload_that_is_neither_form() -> None:
    with pytest.raises(PayloadError, match=r"neither a binary frame .* nor a JSON object"):
        decode_payload(b"hello world")


def test_encoder_refuses_what_the_decoder_would() -> None:
    with pytest.raises(PayloadError, match="non-empty 1-D"):
        encode_frame(np.zeros((2, 2)), sample_rate=1.0, seq=0)
    with pytest.raises(PayloadError, match="255"):
        encode_frame([1.0], sample_rate=1.0, seq=0, sensor_id="x" * 256)
    with pytest.raises(PayloadError, match="uint64"):
        encode_frame([1.0], sample_rate=1.0, seq=-1)


def test_json_form_is_compact_utf8() -> None:
    doc = json.loads(encode_json_frame([0.5], seq=1))
    assert doc == {"seq": 1, "samples": [0.5]}
