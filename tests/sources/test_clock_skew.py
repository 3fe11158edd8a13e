"""A sender's t0 is checked against the local clock (issue 10, defect 6).

A ``t0=1e300`` frame was accepted, and a gateway whose clock stepped an hour back moved every
window an hour into the past. Frames further off than ``max_clock_skew_s`` keep their samples,
are stamped with the arrival time, and the rejection is reported (and counted by the daemon).
"""

from __future__ import annotations

import numpy as np
import pytest

from runtime.sources import SampleChunk
from runtime.sources.frames import encode_frame, encode_json_frame
from runtime.sources.intake import ClockSkewError, FrameIntake

RATE = 1000.0
X = np.zeros(100, np.float32)  # 0.1 s of samples
NOW = 1_750_000_000.0


def _intake(skew: float | None = 60.0) -> tuple[FrameIntake, list[SampleChunk], list[Exception]]:
    chunks: list[SampleChunk] = []
    errors: list[Exception] = []
    intake = FrameIntake({"s1": RATE}, payload_format="auto", emit=chunks.append,
                         report=lambda _sid, exc: errors.append(exc), max_clock_skew_s=skew,
                         clock=lambda: NOW)
    return intake, chunks, errors


@pytest.mark.parametrize("t0", [1e300, NOW - 3600.0, NOW + 3600.0, NOW - 61.0])
def test_a_t0_beyond_the_skew_is_replaced_by_the_arrival_time_and_reported(t0: float) -> None:
    intake, chunks, errors = _intake()
    assert intake.handle(encode_frame(X, sample_rate=RATE, seq=0, t0=t0), origin="test", sensor_id="s1")
    (chunk,) = chunks
    assert chunk.t0 == pytest.approx(NOW - 0.1), "stamped as if its last sample arrived now"
    (err,) = errors
    assert isinstance(err, ClockSkewError) and "limit +/-60 s" in str(err) and "NTP" in str(err)


def test_json_frames_are_checked_too_and_a_t0_within_the_skew_is_kept() -> None:
    intake, chunks, errors = _intake()
    intake.handle(encode_json_frame(X, seq=0, t0=NOW - 59.0), origin="test", sensor_id="s1")
    intake.handle(encode_json_frame(X, seq=1, t0=1e300), origin="test", sensor_id="s1")
    assert [c.t0 for c in chunks] == [NOW - 59.0, pytest.approx(NOW - 0.1)]
    assert len(errors) == 1 and isinstance(errors[0], ClockSkewError)


def test_a_null_skew_trusts_every_t0() -> None:
    intake, chunks, errors = _intake(skew=None)
    intake.handle(encode_frame(X, sample_rate=RATE, seq=0, t0=NOW - 3600.0), origin="test", sensor_id="s1")
    assert chunks[0].t0 == NOW - 3600.0 and errors == []
