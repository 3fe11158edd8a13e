"""The shaft speed from a topic: a total parser, staleness, and what the evidence says without a speed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from runtime.diagnostics.config import DiagnosticsConfig
from runtime.diagnostics.monitor import EnvelopeMonitor
from runtime.diagnostics.speed import SpeedBoard, SpeedTopicConfig, parse_speed
from runtime.errors import DataError
from runtime.signals.simulator import BearingSimulator
from tests.diagnostics.test_monitor import FS, Sinks
from tests.fuzz.support import nested


@pytest.mark.parametrize(
    ("payload", "field", "scale", "rpm"),
    [
        (b"1797", None, 1.0, 1797.0),
        (b" 1797.5\n", None, 1.0, 1797.5),
        (b"29.95", None, 60.0, 1797.0),
        (b"-1797", None, 1.0, 1797.0),  # a drive's signed speed: the direction does not matter
        (b'{"rpm": 1750}', "rpm", 1.0, 1750.0),
        (b'{"drive": {"axes": [{"rpm": 10}, {"rpm": 1730.25}]}}', "drive.axes.1.rpm", 1.0, 1730.25),
        (b"0", None, 1.0, 0.0),
    ],
)
def test_a_speed_payload_gives_its_rpm(payload: bytes, field: str | None, scale: float, rpm: float) -> None:
    assert parse_speed(payload, field, scale) == pytest.approx(rpm)


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (b"", None, "empty"),
        (b"\xff\xfe", None, "not UTF-8"),
        (b"1797 rpm", None, "not a number or JSON"),
        (b'{"rpm": 1797}', None, "set field"),
        (b'{"speed": 1797}', "rpm", "no 'rpm'"),
        (b'{"rpm": [1, 2]}', "rpm.5", "missing at '5'"),
        (b'{"rpm": "1797"}', "rpm", "not a number"),
        (b'{"rpm": true}', "rpm", "not a number"),
        (b"NaN", None, "not finite"),
        (b"1e400", None, "not finite"),
        (b"9" * 5000, None, "over 4096"),
        (nested(2000).encode(), None, "nested too deeply"),
    ],
)
def test_a_bad_speed_payload_is_a_data_error_naming_the_problem(
    payload: bytes, field: str | None, words: str
) -> None:
    with pytest.raises(DataError, match=words):
        parse_speed(payload, field)


def test_a_wildcard_speed_topic_is_refused() -> None:
    with pytest.raises(ValidationError, match="wildcard"):
        SpeedTopicConfig(topic="plant/+/rpm")


class Clock:
    """A settable monotonic clock, so staleness is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_board_says_why_a_speed_is_missing_stale_or_zero() -> None:
    clock = Clock()
    board = SpeedBoard(clock)
    cfg = SpeedTopicConfig(topic="m7/rpm", max_age_s=5)
    assert board.reading(cfg) == (None, "no speed received on m7/rpm yet")
    board.update("m7/rpm", b"oops", cfg)
    assert "yet (last message refused" in str(board.reading(cfg)[1])
    board.update("m7/rpm", b"1797", cfg)
    assert board.reading(cfg) == (1797.0, None)
    clock.now += 4
    board.update("m7/rpm", b"garbage", cfg)  # a bad message keeps the last good value, which ages
    assert board.reading(cfg) == (1797.0, None)
    clock.now += 2
    rpm, why = board.reading(cfg)
    assert rpm is None and "6.0 s old, over max_age_s = 5" in str(why) and "refused" in str(why)
    board.update("m7/rpm", b"0", cfg)
    assert board.reading(cfg) == (None, "the speed on m7/rpm is 0 rpm: the machine stands still")


def _topic_monitor(sinks: Sinks, board: SpeedBoard, seconds: float = 2.0) -> EnvelopeMonitor:
    config = DiagnosticsConfig(bearing="6205", rpm={"topic": "m7/rpm", "max_age_s": 5}, seconds=seconds)
    mon = EnvelopeMonitor.build({"s1": config}, {"s1": FS}, speeds=board, **sinks.kwargs())
    mon.feed("s1", BearingSimulator("inner_race", sample_rate=FS, rpm=1500, seed=2).generate(int(2 * FS)))
    mon.start()
    return mon


def _event(mon: EnvelopeMonitor, sinks: Sinks) -> dict[str, Any]:
    mon.submit("s1", {"to": "IR007", "seq": 1}, "IR007", entered_fault=True)
    mon.close()
    ((_, payload),) = sinks.events
    return payload


def test_the_speed_from_the_topic_sets_the_frequencies_searched() -> None:
    sinks, board = Sinks(), SpeedBoard()
    mon = _topic_monitor(sinks, board)
    board.update("m7/rpm", b'{"rpm": 1500}', SpeedTopicConfig(topic="m7/rpm", field="rpm"))
    payload = _event(mon, sinks)
    assert payload["corroborated"] is True and payload["envelope"]["rpm"] == 1500
    assert payload["envelope"]["matched_frequency_hz"] == pytest.approx(5.4152 * 1500 / 60, abs=0.5)


@pytest.mark.parametrize(
    ("speed", "seconds", "why"),
    [
        (None, 2.0, "no speed received on m7/rpm yet"),
        (b"0", 2.0, "stands still"),
        (b"300", 2.0, r"need 2\.\d\d s of samples; the ring keeps 2 s"),
    ],
)
def test_without_a_usable_speed_the_evidence_is_not_applicable_with_the_reason(
    speed: bytes | None, seconds: float, why: str
) -> None:
    sinks, board = Sinks(), SpeedBoard()
    mon = _topic_monitor(sinks, board, seconds)
    if speed is not None:
        board.update("m7/rpm", speed, SpeedTopicConfig(topic="m7/rpm"))
    payload = _event(mon, sinks)
    assert payload["corroborated"] == "not_applicable" and payload["alert"] is True
    assert set(payload["envelope"]) == {"reason", "bearing", "ts"}
    assert __import__("re").search(why, payload["envelope"]["reason"])
    assert mon.stats.no_speed == 1 and mon.stats.analyses == 0 and mon.stats.errors == 0
    assert mon.state_fields("s1")["envelope"]["reason"] == payload["envelope"]["reason"]


def test_evidence_from_before_the_speed_went_stale_is_not_reused() -> None:
    clock = Clock()
    sinks, board = Sinks(), SpeedBoard(clock)
    config = DiagnosticsConfig(bearing="6205", rpm={"topic": "m7/rpm", "max_age_s": 5}, reuse_s=60)
    mon = EnvelopeMonitor.build({"s1": config}, {"s1": FS}, speeds=board, **sinks.kwargs())
    mon.feed("s1", BearingSimulator("inner_race", sample_rate=FS, rpm=1500, seed=2).generate(int(2 * FS)))
    board.update("m7/rpm", b"1500", SpeedTopicConfig(topic="m7/rpm"))
    mon.start()
    mon.submit("s1", {"to": "IR007", "seq": 1}, "IR007", entered_fault=True)  # analysed: corroborated
    mon._jobs.put(("periodic", "s1"))
    mon.close()
    clock.now += 10  # the speed is stale by the time of the next entry
    mon._closed = False
    mon.start()
    mon._jobs.put(("periodic", "s1"))
    mon.submit("s1", {"to": "IR007", "seq": 2}, "IR007", entered_fault=True)
    mon.close()
    first, second = (p for _, p in sinks.events)
    assert first["corroborated"] is True
    assert second["corroborated"] == "not_applicable" and "s old" in second["envelope"]["reason"]
