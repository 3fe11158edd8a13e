"""`drsn-edge study mnist` on a tiny generated IDX data set."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np

from drsn_edge.cli import main


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as MNIST ships it: magic (0, 0, type 0x08 = ubyte, ndim), big-endian sizes, data."""
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(head + array.astype(np.uint8).tobytes()))


def tiny_mnist(root: Path, n: int = 300) -> Path:
    """Digits drawn as a bright bar whose row depends on the class, so they are learnable in one epoch."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, y in enumerate(labels):
        images[i, 2 + 2 * y : 4 + 2 * y, 4:24] = 255
    root.mkdir(parents=True, exist_ok=True)
    _write_idx(root / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(root / "t10k-labels-idx1-ubyte.gz", labels)
    return root


def test_mnist_study_writes_table_and_figure(tmp_path: Path) -> None:
    data = tiny_mnist(tmp_path / "mnist")
    out, work = tmp_path / "out", tmp_path / "work"
    argv = [
        "study",
        "mnist",
        "--data",
        str(data),
        "--n-train",
        "200",
        "--n-test",
        "100",
        "--epochs",
        "2",
        "--seeds",
        "0,1",
        "--out",
        str(out),
        "--work",
        str(work),
        "--no-progress",
    ]
    assert main(argv) == 0
    with open(out / "mnist.csv", newline="") as f:
        summary = {r["model"]: r for r in csv.DictReader(f)}
    assert set(summary) == {"drsn_cw_mnist", "resnet_mnist"}
    for r in summary.values():
        assert r["seeds"] == "2"
        assert 0.0 <= float(r["accuracy"]) <= 1.0
    assert int(summary["drsn_cw_mnist"]["parameters"]) > int(summary["resnet_mnist"]["parameters"])
    with open(out / "mnist_runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 4 and {r["n_test"] for r in runs} == {"100"}
    assert (out / "mnist.png").stat().st_size > 5000
    page = (out / "mnist.md").read_text()
    assert "paired by seed" in page and "test n = 100" in page
    # resumed: nothing is trained again, the same rows are reported
    rows = (work / "mnist_rows.jsonl").read_text()
    assert main(argv) == 0
    assert (work / "mnist_rows.jsonl").read_text() == rows


def test_mnist_study_without_data_names_the_fix(tmp_path: Path, capsys) -> None:
    assert main(["study", "mnist", "--data", str(tmp_path / "absent"), "--out", str(tmp_path)]) == 2
    assert "--data" in capsys.readouterr().err
