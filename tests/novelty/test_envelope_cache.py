"""A sensor's envelope bands reused across its overlapping windows (``novelty.envelope_every``):
every window computes at 1; at k a row takes its sensor's last computed bands until k windows on,
and a fresh sensor, a gap in time, a dropped window or a re-recorded sensor computes afresh."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from runtime.batching import BatchResult
from runtime.errors import DataError
from runtime.metrics import Metrics
from runtime.novelty.envelope_cache import EnvelopeCache, envelope_every
from runtime.novelty.route import score_batch
from runtime.novelty.scores import envelope_bands
from runtime.novelty.sensor import NoveltyConfig
from runtime.novelty.stats import NoveltyScorer, fit_novelty
from runtime.window_block import WindowBlock

CLASSES = ["a", "b", "c"]
WINDOW, HOP, RATE = 1024, 256, 12000.0
STEP_S = HOP / RATE


def sensor(every: int | str = "auto", window: int = WINDOW, hop: int = HOP) -> Any:
    """The parts of a sensor pipeline the cache reads: its novelty config and its windower."""
    return SimpleNamespace(novelty=SimpleNamespace(cfg=NoveltyConfig(envelope_every=every)),
                           windower=SimpleNamespace(window=window, hop=hop, model_rate=RATE))


def windows(n: int, seed: int = 0) -> np.ndarray:
    """Windows whose envelope bands all differ (each its own modulation rate and noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOW) / RATE
    rate = rng.uniform(20, 600, size=(n, 1))
    x = (1 + np.sin(2 * np.pi * rate * t)) * rng.normal(size=(n, WINDOW))
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    return z[:, None, :].astype(np.float32)


def rows_of(x: np.ndarray, cache: EnvelopeCache, sensors: list[int], index: list[int],
            t_wall: list[float] | None = None) -> np.ndarray:
    t = [100.0 + i * STEP_S for i in index] if t_wall is None else t_wall
    return cache.bands(np.array(sensors), np.array(index), np.array(t), x, 4)


def cache_of(*pipes: Any) -> EnvelopeCache:
    cache = EnvelopeCache(capacity=1)  # grows as sensors are recorded
    for j, sp in enumerate(pipes):
        cache.record(j, sp)
    return cache


def test_auto_is_window_over_hop_rounded_up_and_bad_values_are_refused() -> None:
    assert envelope_every(sensor()) == 4
    assert envelope_every(sensor(window=2048, hop=600)) == 4  # 3.4 windows: every sample still covered
    assert envelope_every(sensor(window=2048, hop=4096)) == 1  # no overlap: nothing to reuse
    assert envelope_every(sensor(2)) == 2
    assert NoveltyConfig().envelope_every == "auto"
    for bad in (0, 65, "4", True, 2.5, "every"):
        with pytest.raises(ValidationError, match="envelope_every"):
            NoveltyConfig(envelope_every=bad)


def test_every_window_at_one_gives_exactly_the_per_window_bands() -> None:
    x = windows(12)
    cache = cache_of(sensor(1), sensor(1))
    got = rows_of(x, cache, [0, 1] * 6, [i // 2 for i in range(12)])
    np.testing.assert_array_equal(got, envelope_bands(x))
    assert (cache.computed, cache.reused) == (12, 0)


def test_at_four_a_row_reuses_its_sensors_last_bands_and_a_fresh_sensor_computes() -> None:
    x = windows(8)
    want = envelope_bands(x)
    cache = cache_of(sensor(4), sensor(4))
    # batch 1: sensor 0's window 0 computes (nothing cached yet)
    np.testing.assert_array_equal(rows_of(x[:1], cache, [0], [0]), want[:1])
    # batch 2: sensor 0's windows 1-3 take window 0's bands; sensor 1 is fresh and computes
    got = rows_of(x[1:5], cache, [0, 0, 1, 0], [1, 2, 0, 3])
    np.testing.assert_array_equal(got, want[[0, 0, 3, 0]])
    # batch 3: window 4 is four on: it computes, and window 5 then takes its bands
    got = rows_of(x[5:7], cache, [0, 0], [4, 5])
    np.testing.assert_array_equal(got, want[[5, 5]])
    assert (cache.computed, cache.reused) == (3, 4)


def test_several_windows_of_one_sensor_in_one_batch_compute_every_fourth() -> None:
    x = windows(10)
    cache = cache_of(sensor(4))
    got = rows_of(x, cache, [0] * 10, list(range(10)))
    want = envelope_bands(x)
    np.testing.assert_array_equal(got, want[[0, 0, 0, 0, 4, 4, 4, 4, 8, 8]])
    assert (cache.computed, cache.reused) == (3, 7)


def test_a_gap_a_dropped_window_or_a_re_recorded_sensor_computes_afresh() -> None:
    x = windows(6)
    want = envelope_bands(x)
    cache = cache_of(sensor(4))
    rows_of(x[:1], cache, [0], [10])
    # the next window by its counter, but a window's length later in time: the stream restarted
    # (a gap or a reset keeps the counter running; the new window holds none of the old samples)
    late = 100.0 + 11 * STEP_S + WINDOW / RATE
    np.testing.assert_array_equal(rows_of(x[1:2], cache, [0], [11], [late]), want[1:2])
    # on time again relative to that window: reused
    np.testing.assert_array_equal(rows_of(x[2:3], cache, [0], [12], [late + STEP_S]), want[1:2])
    # a small jitter is tolerated, a step back in time is not
    np.testing.assert_array_equal(rows_of(x[3:4], cache, [0], [13], [late + 2 * STEP_S + 0.01]), want[1:2])
    np.testing.assert_array_equal(rows_of(x[3:4], cache, [0], [13], [late - 0.5]), want[3:4])
    # windows dropped before the result path: five on is past what the cached bands cover
    np.testing.assert_array_equal(rows_of(x[4:5], cache, [0], [18]), want[4:5])
    # a reload records the sensor again (a new windower counts from 0): computed
    cache.record(0, sensor(4))
    np.testing.assert_array_equal(rows_of(x[5:6], cache, [0], [19]), want[5:6])
    # a sensor no longer served, or one without novelty, never keeps bands
    cache.record(0, None)
    np.testing.assert_array_equal(rows_of(x[:2], cache, [0, 0], [20, 21]), want[:2])


def test_the_daemons_pairs_alternate_computing_and_reusing() -> None:
    # two sensors, two windows each per batch (the daemon's fast replay at k = 4): batch A computes
    # each sensor's first window (written to the cache as one slice) and B reuses them
    x = windows(16, seed=5)
    want = envelope_bands(x)
    cache = cache_of(sensor(4), sensor(4))
    for b in range(4):
        start = 2 * b  # window counter of each sensor's first window in this batch
        rows = x[[4 * b, 4 * b + 1, 4 * b + 2, 4 * b + 3]]
        got = rows_of(rows, cache, [0, 0, 1, 1], [start, start + 1, start, start + 1])
        first = 4 * (b - b % 2)  # the batch that computed these bands: this one or the one before
        np.testing.assert_array_equal(got, want[[first, first, first + 2, first + 2]])
    assert (cache.computed, cache.reused) == (4, 12)


def test_rows_of_no_sensor_compute_and_windows_that_do_not_fit_are_named() -> None:
    x = windows(3)
    cache = cache_of(sensor(4))
    np.testing.assert_array_equal(rows_of(x, cache, [-1, 0, 0], [5, 0, 1]), envelope_bands(x)[[0, 1, 1]])
    with pytest.raises(DataError, match="do not fit"):
        rows_of(x[:2], cache, [0, 0, 0], [2, 3, 4])
    bad = x.copy()
    bad[0, 0, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        rows_of(bad, cache, [0, 0, 0], [50, 51, 52])


def test_the_scorer_takes_precomputed_bands_and_checks_them() -> None:
    rng = np.random.default_rng(4)
    x = windows(200, seed=4)
    y = rng.integers(0, 3, size=200)
    features = np.abs(np.eye(3, 4)[y] * 6.0 + rng.normal(size=(200, 4)))
    scorer = NoveltyScorer(fit_novelty(features, y, CLASSES, "sqrt_envelope_mahalanobis", x))
    np.testing.assert_array_equal(scorer.score(features, bands=envelope_bands(x)), scorer.score(features, x))
    with pytest.raises(DataError, match="envelope bands of shape"):
        scorer.score(features, bands=envelope_bands(x)[:, :3])
    with pytest.raises(DataError, match="NaN"):
        scorer.score(features, bands=np.full((200, 4), np.nan))


def test_the_daemons_batch_scoring_with_the_cache_scores_as_at_every_window_where_it_computes() -> None:
    rng = np.random.default_rng(5)
    n = 240
    x = windows(n, seed=5)
    y = rng.integers(0, 3, size=n)
    features = np.abs(np.eye(3, 4)[y] * 6.0 + rng.normal(size=(n, 4))).astype(np.float32)
    scorer = NoveltyScorer(fit_novelty(features, y, CLASSES, "sqrt_envelope_mahalanobis", x))
    rows = 16  # two sensors, eight consecutive windows each, interleaved as the batcher mixes them
    ids = ["s0", "s1"] * (rows // 2)
    index = np.repeat(np.arange(rows // 2), 2)
    block = WindowBlock(ids, index, [None] * rows, np.full(rows, time.monotonic()), 100.0 + index * STEP_S,
                        x[:rows])
    probs = np.full((rows, 3), 1 / 3, dtype=np.float32)
    batch = BatchResult(None, probs, probs, 0.001, time.monotonic(), features[:rows], x[:rows], block=block)
    every_window = score_batch(batch, scorer, Metrics())
    assert every_window is not None
    for k, computed in ((1, rows), (4, 4)):
        cache = cache_of(sensor(k), sensor(k))
        got = score_batch(batch, scorer, Metrics(), cache, np.array([0, 1] * (rows // 2)))
        assert got is not None and cache.computed == computed
        at = np.flatnonzero(index % k == 0)  # the rows that computed their own bands
        np.testing.assert_array_equal(got[at], every_window[at])
        if k > 1:  # the others differ only by their bands: the features are the row's own
            reused = np.setdiff1d(np.arange(rows), at)
            assert not np.array_equal(got[reused], every_window[reused])


def test_the_result_router_reuses_a_sensors_bands_and_a_rebuilt_sensor_computes() -> None:
    # the daemon's path: ResultRouter records each sensor (its real windower: window 1024, hop 256,
    # so auto is 4) and scores every batch with the cache; two windows per sensor and batch
    import threading

    from runtime.config import validate_config_dict
    from runtime.fault_state import FaultStateConfig, FaultStateTracker
    from runtime.pipeline import SensorPipeline
    from runtime.results_router import ResultRouter
    from runtime.windowing import SensorWindower
    from tests.runtime.tiny_models import make_metadata

    rng = np.random.default_rng(6)
    x = windows(300, seed=6)
    y = rng.integers(0, 3, size=300)
    features = np.abs(np.eye(3, 4)[y] * 6.0 + rng.normal(size=(300, 4))).astype(np.float32)
    scorer = NoveltyScorer(fit_novelty(features, y, CLASSES, "sqrt_envelope_mahalanobis", x))
    meta = make_metadata(window=WINDOW, hop=HOP, rate=RATE, classes=CLASSES)
    model = SimpleNamespace(identity={"name": "m", "version": "1", "sha256": "0" * 64, "precision": "fp32",
                                      "backend": "null"}, scorer=scorer, metadata=meta)
    config = validate_config_dict({"model": "m.onnx", "sources": [
        {"type": "replay", "files": [{"id": "x", "path": "x.npy"}]}]})

    def pipeline(sid: str) -> SensorPipeline:
        from runtime.novelty.sensor import SensorNovelty

        tracker = FaultStateTracker(sid, CLASSES, "a", FaultStateConfig())
        sp = SensorPipeline(sid, RATE, model, SensorWindower(sid, RATE, meta), tracker,  # type: ignore[arg-type]
                            local_clock=False)
        sp.novelty = SensorNovelty(sid, scorer, NoveltyConfig(threshold=50.0), model_sha256="0" * 64)
        return sp

    sensors = {f"s{i}": pipeline(f"s{i}") for i in range(3)}
    router = ResultRouter(config, Metrics(), sensors, threading.Lock(), lambda: None)

    def batch(b: int) -> BatchResult:
        ids = [sid for sid in sensors for _ in range(2)]
        index = np.array([2 * b, 2 * b + 1] * len(sensors))
        rows = np.arange(len(ids)) + 6 * b
        block = WindowBlock(ids, index, [None] * len(ids), np.full(len(ids), time.monotonic()),
                            100.0 + index * STEP_S, x[rows])
        probs = np.full((len(ids), 3), 1 / 3, dtype=np.float32)
        return BatchResult(None, probs, probs, 0.001, time.monotonic(), features[rows], x[rows], block=block)

    for b in range(9):  # windows 0-17 of each sensor: 0, 4, 8, 12 and 16 compute
        router.on_batch(batch(b))
    assert (router.envelopes.computed, router.envelopes.reused) == (15, 39)
    sensors["s1"] = pipeline("s1")  # a reload builds a new pipeline: the router records it again
    router.on_batch(batch(9))  # windows 18 and 19: s0 and s2 reuse 16's bands, the rebuilt s1 computes 18
    assert (router.envelopes.computed, router.envelopes.reused) == (16, 44)
