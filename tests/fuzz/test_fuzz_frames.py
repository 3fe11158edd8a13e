"""Fuzz the raw-sample frame parsers: a frame decodes or raises PayloadError, never anything else.

One 2 KB UDP datagram of nested JSON once raised RecursionError out of the JSON frame parser and
ended the UDP source; these properties keep that whole class of failure out (random bytes,
truncated and bit-flipped real frames, headers with any field values, deep nesting, huge
numbers, NaN/inf, bad UTF-8).
"""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import PayloadError
from runtime.sources.base import SampleChunk
from runtime.sources.frames import (
    HEADER,
    MAGIC,
    Frame,
    decode_frame,
    decode_json_frame,
    decode_payload,
    encode_frame,
)
from runtime.sources.intake import ClockSkewError, FrameIntake
from tests.fuzz.support import FUZZ, json_text

RATE = 12000.0


def _total(parse: object, data: bytes | str) -> Frame | None:
    """Run ``parse``; a PayloadError is an answer, any other exception fails the property."""
    try:
        frame = parse(data)  # type: ignore[operator]
    except PayloadError:
        return None
    assert isinstance(frame, Frame)
    assert frame.samples.dtype == np.float32 and frame.samples.size > 0
    assert np.isfinite(frame.samples).all()
    return frame


def _real_frame(n: int, sid: str | None, dtype: str) -> bytes:
    x = np.linspace(-1, 1, n, dtype=np.float32)
    return encode_frame(x, sample_rate=RATE, seq=3, t0=1.7e9, sensor_id=sid, dtype=dtype)  # type: ignore[arg-type]


headers = st.builds(
    lambda magic, ver, code, flags, id_len, rate, seq, t0, scale, count, tail: HEADER.pack(
        magic, ver, code, flags, id_len, rate, seq, t0, scale, count) + tail,
    st.sampled_from([MAGIC, b"DRSW", b"\x00\x00\x00\x00"]),
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)),
    st.binary(max_size=300),
)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid frame, then truncated, extended or with some bytes overwritten."""
    frame = bytearray(_real_frame(draw(st.integers(1, 64)), draw(st.one_of(st.none(), st.text(min_size=1,
                      max_size=8))), draw(st.sampled_from(["float32", "int16"]))))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(frame) - 1))
        frame[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(frame) + 8))
    return bytes(frame[:cut]) if cut <= len(frame) else bytes(frame) + b"\x00" * (cut - len(frame))


def _check_all(data: bytes | str) -> None:
    """Every parser that may see ``data`` answers with a frame or a PayloadError; so does the intake."""
    if isinstance(data, str):
        _total(decode_json_frame, data)
        data = data.encode("utf-8", "surrogatepass")
    _total(decode_frame, data)
    _total(decode_json_frame, data)
    _total(decode_payload, data)
    chunks: list[SampleChunk] = []
    reports: list[Exception] = []
    intake = FrameIntake({"pump-1": RATE}, payload_format="auto", emit=chunks.append,
                         report=lambda _sid, exc: reports.append(exc))
    ok = intake.handle(data, origin="fuzz", sensor_id="pump-1")  # what the UDP/MQTT sources call
    assert ok == bool(chunks)
    if ok:  # a kept frame may only be reported for its clock (its samples are stamped on arrival)
        assert all(isinstance(e, ClockSkewError) for e in reports)
    else:
        assert len(reports) == 1 and isinstance(reports[0], PayloadError)


@FUZZ
@given(st.one_of(
    st.binary(max_size=512), headers, mutated_frames(),  # binary frames
    json_text(), json_text().map(lambda t: t.encode("utf-8")),  # JSON frames, as text and as bytes
    st.binary(max_size=256).map(lambda b: b"{" + b),  # bad UTF-8 after a JSON start
))
def test_payloads_decode_or_raise_payload_error(data: str | bytes) -> None:
    _check_all(data)


def test_the_two_kilobyte_nested_datagram_is_a_payload_error() -> None:
    """The datagram that ended the UDP source: 1,000 '[' then 1,000 ']'."""
    data = b"[" * 1000 + b"]" * 1000
    for parse in (decode_json_frame,):
        try:
            parse(data)
        except PayloadError as exc:
            assert "nested too deeply" in str(exc) or "object" in str(exc)
        else:
            raise AssertionError("a nested list is not a frame")
    nested_obj = b'{"seq": 1, "samples": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    try:
        decode_payload(nested_obj)
    except PayloadError as exc:
        assert "nested too deeply" in str(exc)
    else:
        raise AssertionError("a nested frame is not a frame")


def test_header_count_beyond_the_limit_is_refused_before_reading_the_body() -> None:
    head = HEADER.pack(MAGIC, 1, 2, 0, 0, RATE, 0, 0.0, 1.0, 2**32 - 1)
    try:
        decode_frame(head)
    except PayloadError as exc:
        assert "above the limit" in str(exc)
    else:
        raise AssertionError("4 billion samples must be refused")
    assert struct.calcsize("<4sBBBBdQdfI") == HEADER.size
