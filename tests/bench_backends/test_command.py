"""`drsn-edge bench backends` on a tiny configuration: real backends, real files, sane numbers.

The command measures each backend in its own process; these tests run it through the CLI (the
``bench`` command dispatches ``backends`` to the package :mod:`drsn_edge.bench_backends`) with batch sizes
1 and 8 and short repeats, then read what it wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drsn_edge.assets import packaged_model
from drsn_edge.cli import main

TINY = ["--batch-sizes", "8,1", "--repeats", "2", "--min-time", "0.05", "--warmup", "1", "--no-progress"]


def bench(out: Path, *argv: str) -> Any:
    code = main(["bench", "backends", *argv, *TINY, "--out", str(out)])
    assert code == 0
    return json.loads((out / "backends.json").read_text())


def by_name(doc: Any) -> dict[str, Any]:
    return {b["name"]: b for b in doc["backends"]}


def check_figures(backend: Any, batches: list[int]) -> None:
    assert backend["status"] == "ok", backend["reason"]
    assert [r["batch"] for r in backend["results"]] == batches
    for r in backend["results"]:
        assert 0 < r["p50_ms"] <= r["p99_ms"] < 10_000
        # windows/s is measured over whole repeats; it must agree with the per-call latencies
        from_p50 = r["batch"] / (r["p50_ms"] / 1e3)
        assert 0.3 * from_p50 < r["windows_per_s"] < 3 * from_p50
        assert r["calls"] >= 5
        assert 0 <= r["peak_rss_delta_mib"] < 4096
    assert backend["load_s"] > 0


def test_packaged_model_on_onnx_runtime_fp32_and_fp16(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        model = packaged_model()
    except Exception as exc:
        pytest.skip(str(exc))
    doc = bench(tmp_path, str(model))
    got = by_name(doc)
    assert list(got) == ["pytorch", "onnxruntime-fp32", "onnxruntime-fp16", "tensorrt-fp16"]
    for name in ("onnxruntime-fp32", "onnxruntime-fp16"):
        check_figures(got[name], [1, 8])
        assert got[name]["argmax_agreement"] == 1.0
    assert got["onnxruntime-fp32"]["max_abs_diff"] < 1e-4  # the golden logits are ONNX Runtime FP32's own
    assert 0 < got["onnxruntime-fp16"]["max_abs_diff"] < 0.1  # FP16 really changed the arithmetic, a little
    # ONNX Runtime imports and allocates something: the memory column is not a constant zero
    assert got["onnxruntime-fp32"]["results"][0]["peak_rss_delta_mib"] > 1
    assert got["pytorch"]["status"] == "skipped" and "--checkpoint" in got["pytorch"]["reason"]
    assert got["tensorrt-fp16"]["status"] == "skipped" and "tensorrt" in got["tensorrt-fp16"]["reason"]
    assert doc["settings"]["threads"] == 1 and doc["settings"]["batch_sizes"] == [1, 8]
    md = (tmp_path / "backends.md").read_text()
    assert "| onnxruntime-fp16 | 8 |" in md and "tensorrt-fp16 skipped" in md
    png = (tmp_path / "backends.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "| backend | batch | p50 ms |" in capsys.readouterr().out


def test_pytorch_column_from_a_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from tests.support.model_files import make_checkpoint

    ckpt = tmp_path / "tiny.ckpt"
    make_checkpoint(ckpt, "drsn_cw_paper")
    doc = bench(tmp_path / "out", "--checkpoint", str(ckpt), "--backends", "pytorch,onnxruntime-fp32")
    got = by_name(doc)
    check_figures(got["pytorch"], [1, 8])
    check_figures(got["onnxruntime-fp32"], [1, 8])
    # PyTorch eager and the ONNX export of the same checkpoint compute the same logits
    assert got["pytorch"]["max_abs_diff"] < 1e-3 and got["pytorch"]["argmax_agreement"] == 1.0
    assert doc["checkpoint"] == str(ckpt)


def test_a_checkpoint_of_other_weights_is_skipped_with_the_reason(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from tests.support.model_files import make_checkpoint

    try:
        model = packaged_model()
    except Exception as exc:
        pytest.skip(str(exc))
    ckpt = tmp_path / "other.ckpt"
    make_checkpoint(ckpt, "drsn_cw_paper", seed=3)
    doc = bench(tmp_path / "out", str(model), "--checkpoint", str(ckpt),
                "--backends", "pytorch,onnxruntime-fp32")
    torch_col = by_name(doc)["pytorch"]
    assert torch_col["status"] == "skipped" and "other weights" in torch_col["reason"]


def test_bad_batch_sizes_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "backends", "--batch-sizes", "1,zero", "--out", str(tmp_path)]) == 2
    assert "comma-separated integers" in capsys.readouterr().err


def test_columns_follow_the_backend_registry() -> None:
    """A registered backend is measured without touching the benchmark: its columns derive from the
    registry rows (PyTorch first, then the fallback backend on), with FP32 and default options when
    the benchmark has no profile for it."""
    from drsn_edge.bench_backends.columns import PROFILES, columns
    from drsn_edge.bench_backends.measurement import BenchSpec
    from runtime.backends.registry import BACKEND_ROWS

    cols = columns()
    assert [c.backend for c in cols] == [
        None, *[row.name for row in reversed(BACKEND_ROWS) for _ in PROFILES[row.name].precisions]
    ]
    spec = BenchSpec("x", "m.onnx", None, "", (1, 64), 1, 0.1, 0, 2, "/tmp/w")
    by_name = {c.name: c for c in cols}
    assert by_name["onnxruntime-fp32"].profile.options(spec, "fp32")["intra_op_threads"] == 2
    assert by_name["tensorrt-fp16"].profile.options(spec, "fp16")["batch"] == (1, 32, 64)
    assert by_name["tensorrt-fp16"].profile.builds_fp16
    assert not by_name["onnxruntime-fp16"].profile.builds_fp16
