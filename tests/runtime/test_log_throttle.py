"""Repeated errors are logged once per kind and interval (issue 10, defect 7: 2,000 bad messages once
wrote 52,000 lines of tracebacks, and a model failing every batch wrote a traceback per batch)."""

from __future__ import annotations

import logging

import pytest

from runtime.batching import MicroBatcher
from runtime.log_throttle import LogThrottle
from tests.runtime.test_batching import FakeBackend, _windows


def test_one_line_per_key_and_interval_saying_how_many_were_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    throttle = LogThrottle(logging.getLogger("test.throttle"), every_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.throttle"):
        written = [throttle.log("bad", logging.WARNING, "bad payload %d", i, exc_info=True)
                   for i in range(500)]
        throttle.log("other", logging.WARNING, "another kind")
        now[0] = 10.5
        throttle.log("bad", logging.WARNING, "bad payload %d", 500, exc_info=True)
    assert sum(written) == 1 and throttle.suppressed("bad") == 0
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["bad payload 0", "another kind",
                     "bad payload 500 (and 499 more like it in the last 10 s)"]
    assert [bool(r.exc_info) for r in caplog.records] == [True, False, False], "one traceback per kind"


def test_a_model_failing_every_batch_logs_one_traceback(caplog: pytest.LogCaptureFixture) -> None:
    backend = FakeBackend(fail_on=tuple(range(1, 1000)))
    batcher = MicroBatcher(backend, max_batch=1, max_wait_ms=0)
    with caplog.at_level(logging.ERROR, logger="runtime.batching"):
        batcher.start()
        batcher.submit_many(_windows(60))
        batcher.close()
    assert batcher.stats.errors == 60, "every failed batch is counted"
    records = [r for r in caplog.records if r.name == "runtime.batching"]
    assert len(records) == 1 and records[0].exc_info
    assert "simulated device error" in records[0].getMessage()
