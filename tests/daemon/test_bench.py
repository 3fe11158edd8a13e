"""`drsn-edge bench daemon` runs end to end and writes figures that hang together (not a timing test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drsn_edge.cli import main
from tests.daemon.support import MODEL
from tests.support.broker import mosquitto_binary

# every bench run starts its own broker
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        mosquitto_binary() is None, reason="mosquitto is not installed; `apt-get install mosquitto`"
    ),
]


def test_bench_daemon_writes_json_markdown_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    rc = main(["bench", "daemon", "--model", str(MODEL), "--sensors", "4", "--batch", "8", "--seconds", "1",
               "--warmup", "0.5", "--recording-seconds", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "daemon / bare" in printed and "last sample -> PUBACK" in printed

    result = json.loads((out / "result.json").read_text())
    assert result["workload"]["sensors"] == 4 and result["workload"]["batch"] == 8
    assert len(result["bare"]["runs"]) == 2 and result["bare"]["windows_per_s"] > 0
    fast, rt = result["fast"], result["realtime"]
    assert fast["windows"] > 0 and fast["windows_dropped_total"] == 0  # fast sources are pushed back
    assert result["targets"]["throughput_ratio"]["measured"] == pytest.approx(
        fast["windows_per_s"] / result["bare"]["windows_per_s"], rel=1e-3)
    # real time: 4 sensors x 12 kHz / hop 512 = 93.75 windows/s offered, every one acknowledged
    assert rt["offered_per_s"] == 93.8
    assert rt["ack_latency_ms"]["count"] > 0 and rt["ack_latency_ms"]["p50"] <= rt["ack_latency_ms"]["p99"]
    assert rt["classify_latency_ms"]["p50"] < rt["ack_latency_ms"]["p50"]  # the PUBACK comes after
    assert "| daemon / bare |" in (out / "result.md").read_text()
    assert (out / "latency.png").stat().st_size > 10_000
    # the model call's own thread CPU, in the bare loop and in the daemon: part of each side's process CPU
    for phase in (*result["bare"]["runs"], fast):
        assert 0 < phase["model_cpu_us_per_window"] <= phase["cpu_us_per_window"] * 1.05
    assert "model call's thread CPU per window, bare / daemon" in printed


def test_bench_daemon_with_the_null_backend_reports_the_daemons_own_cost_and_rss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    rc = main(["bench", "daemon", "--model", str(MODEL), "--sensors", "4", "--batch", "8", "--seconds", "1",
               "--warmup", "0.5", "--recording-seconds", "1", "--mode", "fast", "--backend", "null",
               "--predictions", "batch", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "daemon's own CPU per window, null backend" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["workload"]["backend"] == "null" and result["workload"]["predictions"] == "batch"
    own, rss = result["targets"]["own_us_per_window"], result["targets"]["rss_mb"]
    assert own["measured"] == result["fast"]["cpu_us_per_window"] > 0
    assert 10 < rss["measured"] < 100_000 and rss["met"] == (rss["measured"] <= rss["target"])
    assert result["fast"]["windows"] > 0 and "null backend" in (out / "result.md").read_text()


def test_bench_daemon_slices_prints_and_saves_every_slice_and_the_median_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    rc = main(["bench", "daemon", "--model", str(MODEL), "--sensors", "4", "--batch", "8", "--seconds", "1.2",
               "--warmup", "0.3", "--recording-seconds", "1", "--mode", "fast", "--prediction-qos", "off",
               "--slices", "3", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "slices: daemon / mean of the bare slices beside it" in printed
    result = json.loads((out / "result.json").read_text())
    sl, ratio = result["slices"], result["targets"]["throughput_ratio"]
    assert sl["count"] == 3 and sl["seconds_each"] == 0.4 and len(result["bare"]["runs"]) == 4
    assert sl["bare_windows_per_s"] == [r["windows_per_s"] for r in result["bare"]["runs"]]
    bare, daemon = sl["bare_windows_per_s"], sl["daemon_windows_per_s"]
    assert all(v > 0 for v in bare + daemon) and len(sl["daemon_cpu_us_per_window"]) == len(sl["rss_mb"]) == 3
    for k, r in enumerate(sl["ratios"]):
        assert r == pytest.approx(daemon[k] / ((bare[k] + bare[k + 1]) / 2), rel=2e-3)
    assert ratio["measured"] == sl["median_ratio"] == sorted(sl["ratios"])[1]
    assert len(sl["cpu_ratios"]) == 3 and sl["median_cpu_ratio"] == sorted(sl["cpu_ratios"])[1]
    assert ratio["method"] == "median of 3 slice pairs"
    assert ratio["pooled"] == pytest.approx(result["fast"]["windows_per_s"] / result["bare"]["windows_per_s"],
                                            rel=1e-3)
    assert "slices: bare windows/s (4 x 0.4 s)" in (out / "result.md").read_text()
    assert len(sl["bare_model_us_per_window"]) == 4 and len(sl["daemon_model_us_per_window"]) == 3
    assert all(v > 0 for v in sl["bare_model_us_per_window"] + sl["daemon_model_us_per_window"])
    assert main(["bench", "daemon", "--model", str(MODEL), "--mode", "realtime", "--slices", "2"]) == 2
    assert "--slices must be 1 or more and slices the fast phase" in capsys.readouterr().err


CALIBRATED = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets" / "drsn_cw_cwru0hp.onnx"


def test_bench_daemon_novelty_both_measures_the_fast_phase_without_and_with_novelty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    rc = main(["bench", "daemon", "--model", str(CALIBRATED), "--sensors", "4", "--batch", "8", "--seconds",
               "1", "--warmup", "0.5", "--recording-seconds", "1", "--mode", "fast", "--backend", "null",
               "--prediction-qos", "off", "--novelty", "both", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "novelty path's cost" in printed
    result = json.loads((out / "result.json").read_text())
    plain, scored, cost = result["fast"], result["fast_novelty_on"], result["targets"]["novelty_cost"]
    assert plain["windows"] > 0 and scored["windows"] > 0 and result["workload"]["novelty"] == "both"
    assert cost["measured"] == pytest.approx(1 - scored["windows_per_s"] / plain["windows_per_s"], abs=1e-3)


def test_the_null_backend_of_a_calibrated_model_answers_familiar_features(tmp_path: Path) -> None:
    from runtime.backends import open_model
    from runtime.bench.null_backend import NullBackend
    from runtime.bench.runs import sample_windows
    from runtime.bench.workload import make_recordings
    from runtime.novelty.stats import scorer_of

    model = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"
    meta = open_model(model)
    backend = NullBackend(model, meta)
    backend.load()
    healthy = make_recordings(tmp_path, meta.signal.sample_rate, 1.0)[:1]  # the "normal" recording
    windows = sample_windows(meta, healthy, 8)
    logits, features = backend.infer_outputs(windows)
    scorer = scorer_of(meta, "calibrated")
    assert backend.has_features and features is not None and scorer is not None
    # healthy service: the stand-in's features with healthy windows are familiar (an envelope score
    # reads the windows too: the features alone cannot make the score)
    assert (scorer.score(features, windows) < scorer.stats.threshold("p99")).all()
    assert (logits.argmax(axis=1) == meta.classes.index(meta.healthy_class)).all()


def test_the_ack_timer_times_every_window_of_a_batch_row_whichever_comes_first() -> None:
    import time

    from runtime.bench.ack_timer import ResultAckTimer
    from runtime.mqtt.receipts import Ack

    got: list[tuple[str, int, float]] = []
    timer = ResultAckTimer(lambda s, i, lat: got.append((s, i, lat)))
    t0 = time.monotonic() - 1.0
    refs = [("a", 1, t0), ("b", 7, t0 + 0.5)]
    timer.predictions_enqueued([5, 5], refs)  # one outbox row for the batch, then its PUBACK
    timer.acked(Ack(5, "p/d/predictions", None, 0.01, 0.001))
    timer.acked(Ack(6, "p/d/predictions", None, 0.01, 0.001))  # PUBACK before the enqueue report
    timer.predictions_enqueued([6, 6], [("c", 2, t0)])
    timer.predictions_enqueued([None], [("d", 3, t0)])  # not admitted: never timed
    assert [(s, i) for s, i, _ in got] == [("a", 1), ("b", 7), ("c", 2)]
    assert got[0][2] > 0.99 and 0.49 < got[1][2] < got[0][2]


def test_the_ack_timer_reports_a_row_once_with_all_its_windows_to_a_row_hook() -> None:
    import time

    import pytest

    from runtime.bench.ack_timer import ResultAckTimer
    from runtime.bench.runs import AckRecorder
    from runtime.mqtt.receipts import Ack

    rec = AckRecorder()
    rec.recording = True
    calls: list[int] = []

    def hook(windows: object, acked_at: float) -> None:
        calls.append(len(windows))  # type: ignore[arg-type]
        rec(windows, acked_at)  # type: ignore[arg-type]

    timer = ResultAckTimer(on_results_acked=hook)
    t0 = time.monotonic() - 1.0
    timer.predictions_enqueued([5] * 3, [("a", 1, t0), ("b", 2, t0 + 0.25), ("c", 3, t0 + 0.5)])
    timer.acked(Ack(5, "p/d/predictions", None, 0.01, 0.001))
    timer.acked(Ack(6, "p/d/predictions", None, 0.01, 0.001))  # PUBACK first, windows after
    timer.predictions_enqueued([6, 6], [("d", 4, t0), ("e", 5, t0)])
    assert calls == [3, 2]  # one call per acknowledged row, not per window
    lat = rec.latency_s
    assert len(lat) == 5 and lat[0] - lat[1] == pytest.approx(0.25) and lat[0] - lat[2] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="exactly one"):
        ResultAckTimer()
