"""The daemon's batch scoring hands a score that reads the windows the batch's model inputs."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from runtime.batching import BatchResult
from runtime.errors import DataError
from runtime.metrics import Metrics
from runtime.novelty.route import batch_scores
from runtime.novelty.stats import NoveltyScorer, fit_novelty
from runtime.windowing import Window

CLASSES = ["a", "b", "c"]


def test_a_window_reading_score_gets_the_normalised_inputs_not_the_raw_windows() -> None:
    rng = np.random.default_rng(4)
    n, width = 240, 1024
    y = rng.integers(0, 3, size=n)
    features = np.abs(np.eye(3, 4)[y] * 6.0 + rng.normal(size=(n, 4)))
    inputs = rng.normal(size=(n, 1, width)).astype(np.float32)
    stats = fit_novelty(features, y, CLASSES, "sqrt_envelope_mahalanobis", inputs)
    assert stats.needs_windows
    scorer = NoveltyScorer(stats)
    sensor = SimpleNamespace(novelty=object(), model=SimpleNamespace(scorer=scorer))
    rows = slice(0, 8)
    # the windows the daemon queues are raw (normalised per batch): scoring them would be wrong
    raw = [Window("s", i, inputs[i] * 50 + 3, None, time.monotonic(), 0.0, False) for i in range(8)]
    probs = np.full((8, 3), 1 / 3, dtype=np.float32)
    batch = BatchResult(raw, probs, probs, 0.001, time.monotonic(), features[rows].astype(np.float32),
                        inputs[rows])
    metrics = Metrics()
    got = batch_scores(batch, {"s": sensor}, metrics)  # type: ignore[dict-item]
    assert got is not None
    np.testing.assert_allclose(got, scorer.score(features[rows], inputs[rows]))
    assert metrics.snapshot()["novelty_score"]["count"] == 8
    without = BatchResult(raw, probs, probs, 0.001, time.monotonic(), features[rows].astype(np.float32))
    with pytest.raises(DataError):
        batch_scores(without, {"s": sensor}, metrics)  # type: ignore[dict-item]


def test_batch_scores_reach_the_histogram_when_flushed_and_the_buffer_empties() -> None:
    # the scores wait in a buffer (one histogram update per flush, not per batch): a scrape sees
    # them once the router's periodic flush ran, and nothing piles up behind it
    metrics = Metrics()

    def count() -> float:
        return metrics.registry.get_sample_value("drsn_edge_novelty_score_count") or 0.0

    metrics.observe_novelty(np.array([1.0, 2.0, 50.0]))
    metrics.observe_novelty(np.array([3.0]))
    assert count() == 0.0
    metrics.flush_novelty()
    assert count() == 4.0
    assert metrics.registry.get_sample_value("drsn_edge_novelty_score_sum") == pytest.approx(56.0)
    metrics.flush_novelty()  # nothing buffered: nothing added
    assert count() == 4.0
    metrics.observe_novelty(np.array([4.0, 5.0]))
    assert metrics.snapshot()["novelty_score"]["count"] == 6  # a snapshot flushes too
