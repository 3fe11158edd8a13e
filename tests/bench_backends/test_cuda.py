"""`drsn-edge bench backends --device cuda`: everything that does not need a GPU, tested on the CPU.

The measurements themselves need CUDA and run in ``scripts/gpu-check.sh``. Here: the refusal
without CUDA (its message and exit status), argument checks that come before it, the timing and
sweep logic driven by a runner that computes on the host (a fake of the GPU, named as such), and
the report files built from what that sweep measured.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drsn_edge.bench_backends.cuda import (
    DEFAULT_BATCHES,
    MODES,
    NO_CUDA_EXIT,
    CudaResult,
    batch_sizes,
    cuda_unavailable_reason,
    device_id,
    measure,
)
from drsn_edge.bench_backends.cuda_report import markdown_table, save
from drsn_edge.cli import main
from runtime.errors import ConfigError

NO_CUDA = cuda_unavailable_reason() is not None
DEVICE_S = 0.0003


class FakeGpuRunner:
    """A FAKE of a CUDA runner: a fixed linear map on the host, with the runner protocol's calls counted.

    ``fail_from`` makes ``prepare`` raise the error PyTorch raises when device memory runs out. Each
    call also waits 0.3 ms, the device time it stands for, so timings are not pure interpreter overhead.
    """

    def __init__(self, weights: np.ndarray, *, fail_from: int | None = None) -> None:
        self.name, self.weights, self.fail_from = "fake-gpu", weights, fail_from
        self.calls: dict[str, int] = {"load": 0, "prepare": 0, "compute": 0, "sync": 0, "end_to_end": 0,
                                      "close": 0}
        self._x = np.zeros((1, weights.shape[0]), np.float32)

    def _count(self, what: str) -> None:
        self.calls[what] += 1

    def load(self) -> None:
        self._count("load")

    def prepare(self, x: np.ndarray) -> None:
        self._count("prepare")
        if self.fail_from is not None and len(x) >= self.fail_from:
            raise RuntimeError(f"CUDA out of memory. Tried to allocate {len(x)} windows")
        self._x = x.reshape(len(x), -1)

    def compute(self) -> None:
        self._count("compute")
        self._x @ self.weights
        time.sleep(DEVICE_S)

    def sync(self) -> None:
        self._count("sync")

    def end_to_end(self, x: np.ndarray) -> np.ndarray:
        self._count("end_to_end")
        time.sleep(DEVICE_S)
        out: np.ndarray = x.reshape(len(x), -1) @ self.weights
        return out

    def device_peak_mib(self) -> float | None:
        return None

    def close(self) -> None:
        self._count("close")


def _golden(n: int = 6, length: int = 32, classes: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 1, length)).astype(np.float32)
    w = rng.normal(size=(length, classes)).astype(np.float32)
    return x, x.reshape(n, -1) @ w, w


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is available here; the GPU run is scripts/gpu-check.sh")
def test_without_cuda_the_command_says_why_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "backends", "--device", "cuda", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == NO_CUDA_EXIT == 3
    assert "CUDA is not available" in err and str(cuda_unavailable_reason()) in err
    assert not (tmp_path / "out").exists(), "nothing is written when nothing was measured"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backends", "onnxruntime-fp32"], "choose from torch-fp32-eager"),
        (["--device", "cuda:x"], "use cpu, cuda or cuda:N"),
        (["--batch-sizes", "1,0"], "at least 1"),
    ],
)
def test_bad_arguments_are_refused_before_looking_for_cuda(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = [] if "--device" in argv else ["--device", "cuda"]
    assert main(["bench", "backends", *device, *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_defaults_and_device_parsing() -> None:
    assert batch_sizes(None) == [1, 8, 32, 128, 512, 2048, 8192] == list(DEFAULT_BATCHES)
    assert batch_sizes("64,1,64") == [1, 64]
    assert (device_id("cuda"), device_id("cuda:2")) == (0, 2)
    for bad in ("gpu", "cuda2", "cuda:"):
        with pytest.raises(ConfigError):
            device_id(bad)
    assert device_id("cuda:0") == 0


def test_a_sweep_measures_both_modes_and_checks_numerics() -> None:
    gx, gy, w = _golden()
    runner = FakeGpuRunner(w)
    result = measure(runner, (gx, gy), [1, 8, 20], repeats=2, min_time_s=0.01, warmup=1,
                     on_batch=lambda b: None)
    assert result.status == "ok" and result.reason == ""
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4 and result.argmax_agreement == 1.0
    assert [(f.batch, f.mode) for f in result.results] == [(b, m) for b in (1, 8, 20) for m in MODES]
    for f in result.results:
        assert f.calls >= 5 and 0 < f.p50_ms <= f.p99_ms and f.device_peak_mib is None
        assert 0.3 < f.windows_per_s / (f.batch / (f.p50_ms / 1e3)) < 3
    assert runner.calls["sync"] >= runner.calls["compute"], "every timed compute call is followed by a sync"
    assert runner.calls["close"] == 1 and runner.calls["load"] == 1


def test_a_wrong_runner_shows_in_the_numerics() -> None:
    gx, gy, w = _golden()
    result = measure(FakeGpuRunner(-w), (gx, gy), [1], repeats=1, min_time_s=0.01, warmup=0,
                     on_batch=lambda b: None)
    assert result.argmax_agreement is not None and result.argmax_agreement < 0.5
    assert result.max_abs_diff is not None and result.max_abs_diff > 1.0


def test_out_of_memory_ends_the_sweep_and_keeps_what_was_measured() -> None:
    gx, gy, w = _golden()
    runner = FakeGpuRunner(w, fail_from=64)
    result = measure(runner, (gx, gy), [1, 8, 64, 512], repeats=1, min_time_s=0.01, warmup=0,
                     on_batch=lambda b: None)
    assert sorted({f.batch for f in result.results}) == [1, 8]
    assert result.reason.startswith("stopped at batch 64: RuntimeError: CUDA out of memory")
    assert runner.calls["close"] == 1


def test_the_report_is_json_markdown_and_png(tmp_path: Path) -> None:
    gx, gy, w = _golden()
    ok = measure(FakeGpuRunner(w), (gx, gy), [1, 8], repeats=1, min_time_s=0.01, warmup=0,
                 on_batch=lambda b: None)
    skipped = CudaResult("onnxruntime-cuda", "skipped", "onnxruntime 1.32.0 here has no CUDA provider")
    doc: dict[str, Any] = {
        "schema": "drsn-edge/bench-backends-cuda", "version": 1, "created": "2026-01-01T00:00:00+0000",
        "command": "drsn-edge bench backends --device cuda",
        "model": {"path": "m.onnx", "name": "m", "version": "1", "weights_sha256": "", "parameters": 1000,
                  "input": [-1, 1, 32], "classes": ["a", "b", "c", "d"]},
        "checkpoint": None,
        "settings": {"batch_sizes": [1, 8], "modes": list(MODES), "repeats": 1, "min_time_s": 0.01,
                     "warmup": 0, "device_id": 0},
        "host": {"gpu": {"name": "FAKE GPU", "compute_capability": "9.0", "memory_gib": 1.0, "cuda": "12.8",
                         "cudnn": 90000}, "platform": "linux", "python": "3.11", "packages": {}},
        "backends": [asdict(ok), asdict(skipped)],
    }
    paths = save(doc, tmp_path)
    assert [p.name for p in paths] == ["backends-cuda.json", "backends-cuda.md", "backends-cuda.png"]
    assert json.loads(paths[0].read_text())["backends"][0]["results"][0]["mode"] == "compute"
    table = markdown_table(doc)
    assert "| fake-gpu | end-to-end | 8 |" in table and "| n/a |" in table
    assert "- onnxruntime-cuda skipped: onnxruntime 1.32.0 here has no CUDA provider" in table
    assert "FAKE GPU (sm 9.0" in paths[1].read_text()
    assert paths[2].stat().st_size > 10_000


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is available here; the script would run the GPU checks")
def test_the_gpu_check_script_without_cuda_says_so_and_exits_3(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu-check.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(script), str(tmp_path / "res")], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "CUDA is absent" in done.stdout
    env_doc = json.loads((tmp_path / "res" / "environment.json").read_text())
    assert env_doc["cuda_available"] is False and env_doc["missing"] == []
    assert "nothing was run" in (tmp_path / "res" / "SUMMARY.md").read_text()
