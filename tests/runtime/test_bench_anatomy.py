"""The real-time anatomy tools: CPU per thread from the kernel's accounting, and each acknowledged
result row split into its stages (batch wait + inference, results path, outbox commit, worker send,
broker and PUBACK) from the daemon's own calls."""

from __future__ import annotations

import cProfile
import json
import threading
import time
from pathlib import Path

import numpy as np

from runtime.bench.anatomy import ThreadCpu, profiling
from runtime.bench.anatomy_compare import main
from runtime.bench.stages import STAGES, StageRecorder
from runtime.mqtt.receipts import Ack


def test_a_thread_that_burns_cpu_is_counted_under_its_name() -> None:
    cpu = ThreadCpu()
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(range(10_000))

    worker = threading.Thread(target=burn, name="burner", daemon=True)
    worker.start()
    cpu.start()
    time.sleep(0.3)
    cpu.stop()
    stop.set()
    worker.join()
    assert cpu.seconds.get("burner", 0.0) > 0.05
    assert cpu.seconds["burner"] > cpu.seconds.get("MainThread", 0.0)
    assert "| burner |" in cpu.table(1000)


def test_each_window_of_an_acknowledged_row_gets_its_rows_stages() -> None:
    observed: list[int] = []
    rec = StageRecorder(recording=True)
    observe = rec.wrap(lambda size, infer_s, lat: observed.append(size))
    now = time.monotonic()
    t_mono = [now - 0.010, now - 0.006]  # the batch's windows arrived 10 and 6 ms ago
    t_done = now - 0.004
    observe(2, 0.001, np.array([t_done - t for t in t_mono]))
    rec.predictions_enqueued([7, 7], [("s1", 0, t_mono[0]), ("s2", 0, t_mono[1])])
    time.sleep(0.002)
    rec.acked(Ack(7, "edge/dev/predictions", None, latency_s=0.0015, sent_to_ack_s=0.0005))
    rec.acked(Ack(8, "edge/dev/s1/event", "e1", latency_s=0.001, sent_to_ack_s=0.0005))  # an event: not timed
    assert observed == [2]
    got = np.array(rec.samples)
    assert got.shape == (2, 1 + len(STAGES))
    np.testing.assert_allclose(got[:, 0], got[:, 1:].sum(axis=1), atol=1e-9)  # the stages add up
    np.testing.assert_allclose(got[:, 1], [0.006, 0.002], atol=1e-6)  # batch wait + inference
    np.testing.assert_allclose(got[:, 5], [0.0005, 0.0005], atol=1e-9)  # broker and PUBACK
    assert "| outbox commit |" in rec.table()
    summary = rec.summary()
    assert summary["windows"] == 2 and len(summary["p99"]) == 1 + len(STAGES)  # type: ignore[arg-type]


def test_a_puback_seen_before_the_row_was_reported_enqueued_is_still_timed() -> None:
    rec = StageRecorder(recording=True)
    observe = rec.wrap(lambda size, infer_s, lat: None)
    now = time.monotonic()
    observe(1, 0.001, np.array([0.003]))
    rec.acked(Ack(3, "edge/dev/predictions", None, latency_s=0.001, sent_to_ack_s=0.0004))
    assert rec.samples == []
    rec.predictions_enqueued([3], [("s1", 5, now - 0.004)])
    (row,) = rec.samples
    assert abs(row[1] - 0.003) < 1e-6 and row[0] > row[1]


def test_runs_compare_by_thread_role_with_their_medians_and_stages(tmp_path: Path) -> None:
    def run(folder: str, source: float, intake: float, infer: float, stages: bool) -> None:
        doc: dict[str, object] = {"windows": 1000, "seconds": 1.0, "load_average": 1.5,
                                  "cpu_us_per_window": source + intake + infer + 50.0,
                                  "threads_s": {"source-udp": source * 1e-3, "infer-m": infer * 1e-3,
                                                "mqtt-publisher": 0.05}}
        if intake:
            doc["threads_s"]["source-udp-intake"] = intake * 1e-3  # type: ignore[index]
        if stages:
            doc["stages_ms"] = {"names": ["total", *STAGES], "windows": 10,
                                "p50": [6.0, 4.0, 1.0, 0.5, 0.3, 0.2], "p99": [9.0, 6.0, 1.5, 0.8, 0.4, 0.3]}
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "anatomy.json").write_text(json.dumps(doc))

    run("old-1", 40.0, 90.0, 150.0, False)
    run("old-2", 44.0, 80.0, 140.0, False)
    run("new-1", 110.0, 0.0, 125.0, True)
    out = tmp_path / "summary"
    assert main(["--out", str(out), f"old={tmp_path}/old-*", f"new={tmp_path}/new-*"]) == 0
    text = (out / "summary.md").read_text()
    # the source's two threads of the old runs count as one role
    assert "| old (2) | **127.0** (130.0, 124.0) | **145.0** (150.0, 140.0) |" in text
    assert "| new (1) | **110.0** (110.0) |" in text
    assert "| new (10 windows) | 6.00 / 9.00 | 4.00 / 6.00 |" in text
    assert (out / "summary.png").stat().st_size > 0


def test_profiling_covers_only_the_threads_named_by_the_prefix() -> None:
    def busy() -> None:
        sum(i * i for i in range(20_000))

    profiles: list[cProfile.Profile] = []
    with profiling("wanted-", profiles):
        threads = [threading.Thread(target=busy, name=n) for n in ("wanted-1", "other", "wanted-2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(profiles) == 2
    with profiling(None, profiles):
        t = threading.Thread(target=busy, name="wanted-3")
        t.start()
        t.join()
    assert len(profiles) == 2
