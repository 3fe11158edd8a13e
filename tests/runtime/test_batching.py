"""MicroBatcher: delivery, batch bounds, latency bound, thread ownership, overload and failures."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from runtime.backends import create_backend
from runtime.backends.base import Backend
from runtime.backends.onnxruntime import OnnxRuntimeBackend
from runtime.batching import BatchResult, InferenceResult, MicroBatcher, softmax
from runtime.errors import ModelFileError
from runtime.windowing import Window
from tests.runtime.tiny_models import TinyModel, build_tiny_onnx, make_metadata

META = make_metadata(window=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny_onnx(tmp_path_factory.mktemp("b") / "tiny.onnx", META)


def _windows(n: int, sensors: int = 4, seed: int = 0) -> list[Window]:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, 1, 64)).astype(np.float32)
    now = time.monotonic()
    return [Window(f"s{i % sensors}", i // sensors, data[i], i, now, 0.0) for i in range(n)]


class FakeBackend(Backend):
    """A stand-in model (the batcher's external boundary): logits = window mean per class, recording
    which thread each call ran on and failing on the calls listed in ``fail_on``."""

    name = "fake"

    def __init__(self, fail_on: tuple[int, ...] = (), delay_s: float = 0.0) -> None:
        super().__init__(Path("fake.onnx"), META)
        self.fail_on, self.delay_s = fail_on, delay_s
        self.calls = 0
        self.threads: dict[str, int] = {}
        self.batch_sizes: list[int] = []

    def _load(self) -> None:
        self.threads["load"] = threading.get_ident()

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        self.threads["infer"] = threading.get_ident()
        self.calls += 1
        self.batch_sizes.append(batch.shape[0])
        if self.calls in self.fail_on:
            raise RuntimeError("simulated device error")
        time.sleep(self.delay_s)
        return np.repeat(batch.mean(axis=(1, 2))[:, None], self.num_classes, axis=1) * np.arange(3)

    def _close(self) -> None:
        self.threads["close"] = threading.get_ident()


def test_all_results_delivered_with_correct_logits(tiny: TinyModel) -> None:
    backend = create_backend(tiny.path, "onnxruntime", intra_op_threads=1)
    results: list[InferenceResult] = []
    batcher = MicroBatcher(backend, max_batch=8, max_wait_ms=2, on_result=results.append)
    batcher.start()
    windows = _windows(203)
    for i in range(0, len(windows), 5):
        batcher.submit_many(windows[i : i + 5])
    batcher.close()
    assert len(results) == 203 and batcher.stats.inferred == 203 and batcher.stats.dropped == 0
    by_key = {(r.sensor_id, r.window.index): r for r in results}
    assert len(by_key) == 203
    x = np.stack([w.data for w in windows])
    want = tiny.reference(x)
    got = np.stack([by_key[(w.sensor_id, w.index)].logits for w in windows])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    probs = np.stack([r.probs for r in results])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert all(1 <= r.batch_size <= 8 and r.latency_s >= r.infer_s >= 0 for r in results)


def test_batch_sizes_respect_max_batch_and_callback_is_per_batch() -> None:
    backend = FakeBackend(delay_s=0.002)
    batches: list[BatchResult] = []
    batcher = MicroBatcher(backend, max_batch=16, max_wait_ms=50, on_batch=batches.append)
    batcher.submit_many(_windows(100))  # queued before start: the first batches are full
    batcher.start()
    batcher.close()
    assert sum(b.size for b in batches) == 100
    assert max(backend.batch_sizes) == 16 and all(1 <= s <= 16 for s in backend.batch_sizes)
    assert backend.batch_sizes[:6] == [16] * 6
    assert all(b.logits.shape == (b.size, 3) and b.latencies().shape == (b.size,) for b in batches)


def test_max_wait_bounds_latency_of_a_lone_window() -> None:
    batches: list[BatchResult] = []
    done = threading.Event()
    batcher = MicroBatcher(FakeBackend(), max_batch=32, max_wait_ms=20,
                           on_batch=lambda b: (batches.append(b), done.set()))
    batcher.start()
    t0 = time.monotonic()
    batcher.submit(_windows(1)[0])
    assert done.wait(2.0)
    waited = time.monotonic() - t0
    batcher.close()
    assert batches[0].size == 1
    assert 0.015 <= waited < 0.5, waited  # held for about max_wait, then sent alone


def test_full_batch_goes_without_waiting_for_max_wait() -> None:
    done = threading.Event()
    batcher = MicroBatcher(FakeBackend(), max_batch=8, max_wait_ms=5000, on_batch=lambda b: done.set())
    batcher.start()
    t0 = time.monotonic()
    batcher.submit_many(_windows(8))
    assert done.wait(2.0)
    assert time.monotonic() - t0 < 1.0
    batcher.close()


def test_all_backend_calls_run_on_the_inference_thread() -> None:
    backend = FakeBackend()
    batcher = MicroBatcher(backend, max_batch=4, max_wait_ms=1)
    batcher.start()
    batcher.submit_many(_windows(6))
    batcher.close()
    ids = set(backend.threads.values())
    assert set(backend.threads) == {"load", "infer", "close"}
    assert len(ids) == 1 and threading.get_ident() not in ids


def test_backend_exception_is_counted_and_the_thread_survives() -> None:
    backend = FakeBackend(fail_on=(1,))
    results: list[InferenceResult] = []
    batcher = MicroBatcher(backend, max_batch=4, max_wait_ms=1, on_result=results.append)
    batcher.submit_many(_windows(4, seed=1))  # first batch: fails
    batcher.start()
    time.sleep(0.05)
    batcher.submit_many(_windows(6, seed=2))
    batcher.close()
    assert batcher.stats.errors == 1
    assert len(results) == 6 and batcher.stats.inferred == 6


def test_callback_exception_is_counted_and_the_thread_survives() -> None:
    calls: list[int] = []

    def flaky(batch: BatchResult) -> None:
        calls.append(batch.size)
        if len(calls) == 1:
            raise ValueError("consumer bug")

    batcher = MicroBatcher(FakeBackend(), max_batch=4, max_wait_ms=1, on_batch=flaky)
    batcher.submit_many(_windows(12))
    batcher.start()
    batcher.close()
    assert batcher.stats.callback_errors == 1 and sum(calls) == 12


def test_full_queue_drops_the_oldest_windows() -> None:
    results: list[InferenceResult] = []
    batcher = MicroBatcher(FakeBackend(), max_batch=4, max_wait_ms=1, max_queue=10, on_result=results.append)
    windows = _windows(15, sensors=1)
    batcher.submit_many(windows)  # not started yet: nothing drains
    assert batcher.stats.dropped == 5 and batcher.queue_depth == 10
    batcher.start()
    batcher.close()
    assert [r.window.index for r in results] == [w.index for w in windows[5:]]


def test_load_error_surfaces_in_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    batcher = MicroBatcher(OnnxRuntimeBackend(bad, META), max_batch=4)
    with pytest.raises(ModelFileError, match=r"bad\.onnx"):
        batcher.start(timeout=10)


def test_softmax_is_stable_for_large_logits() -> None:
    p = softmax(np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-6)
    assert p[0, 0] / p[0, 1] == pytest.approx(np.e, rel=1e-4)


def test_batches_carry_the_features_of_the_same_call() -> None:
    """With a model that has a features output, every BatchResult holds them row-aligned with the
    windows; the tiny model without them delivers None (checked in the first tests' batches)."""
    from runtime.backends import open_model

    model = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"
    meta = open_model(model)
    assert meta.golden is not None
    x, _ = meta.golden.arrays()
    ref = meta.golden.features()
    assert ref is not None
    now = time.monotonic()
    windows = [Window("s0", i, x[i], i, now, 0.0) for i in range(len(x))]
    batches: list[BatchResult] = []
    batcher = MicroBatcher(create_backend(model, "onnxruntime", intra_op_threads=1), max_batch=4,
                           max_wait_ms=1, on_batch=batches.append)
    batcher.start()
    batcher.submit_many(windows)
    batcher.close()
    assert sum(b.size for b in batches) == len(x)
    rows = {w.index: b.features[j]
            for b in batches if b.features is not None for j, w in enumerate(b.windows)}
    assert len(rows) == len(x)
    np.testing.assert_allclose(np.stack([rows[i] for i in range(len(x))]), ref, rtol=1e-3, atol=1e-4)


def test_a_batch_carries_the_inputs_the_model_saw() -> None:
    got: list[BatchResult] = []
    batcher = MicroBatcher(FakeBackend(), max_batch=4, max_wait_ms=1, on_batch=got.append)
    batcher.start()
    windows = _windows(4)
    batcher.submit_many(windows)
    batcher.close()
    assert len(got) == 1 and got[0].inputs is not None
    np.testing.assert_array_equal(got[0].inputs, np.stack([w.data for w in windows]))


@settings(max_examples=100, deadline=None)
@given(logits=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
                         elements=st.floats(-1e4, 1e4, width=32)))
def test_softmax_gives_the_plain_formulas_numbers_to_the_bit(logits: np.ndarray) -> None:
    # the plain formula (what the daemon published before softmax used the ufuncs' reductions)
    plain = np.exp(logits - logits.max(axis=-1, keepdims=True))
    plain = plain / plain.sum(axis=-1, keepdims=True)
    np.testing.assert_array_equal(softmax(logits), plain)
