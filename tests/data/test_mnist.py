"""MNIST IDX reading and the stratified, seeded split with the reference uniform noise."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from drsn_edge.data.mnist import load_mnist, read_idx
from runtime.errors import DataError


def _write_idx(path: Path, array: np.ndarray) -> None:
    dims = b"".join(struct.pack(">I", d) for d in array.shape)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + dims
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def fake_mnist(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    rng.shuffle(labels)
    images = rng.integers(0, 256, (len(labels), 28, 28)).astype(np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    return tmp_path, images, labels


def test_idx_round_trip(fake_mnist) -> None:
    root, images, labels = fake_mnist
    np.testing.assert_array_equal(read_idx(root / "t10k-images-idx3-ubyte.gz"), images)
    np.testing.assert_array_equal(read_idx(root / "t10k-labels-idx1-ubyte.gz"), labels)


def test_stratified_disjoint_split_with_reference_noise(fake_mnist) -> None:
    root, images, labels = fake_mnist
    data = load_mnist(root, seed=1, n_train=240, n_test=60, val_fraction=0.25)
    assert data.train.x.shape == (180, 1, 28, 28) and len(data.val) == 60 and len(data.test) == 60
    assert np.bincount(data.test.y, minlength=10).tolist() == [6] * 10
    assert np.bincount(data.val.y, minlength=10).tolist() == [6] * 10
    used = np.concatenate([data.train.recording, data.val.recording, data.test.recording])
    assert len(np.unique(used)) == 300  # every image once, no overlap
    np.testing.assert_array_equal(labels[data.test.recording], data.test.y)
    excess = data.test.x[:, 0] - images[data.test.recording] / 255.0  # the added U(0,1) * 0.5
    assert excess.min() >= 0 and excess.max() <= 0.5 and abs(excess.mean() - 0.25) < 0.01
    assert data.classes == [str(d) for d in range(10)] and data.healthy_class == "0"
    assert data.sample_rate is None and data.summary["source"] == "mnist"
    again = load_mnist(root, seed=1, n_train=240, n_test=60, val_fraction=0.25)
    np.testing.assert_array_equal(again.test.x, data.test.x)
    clean = load_mnist(root, seed=1, n_train=240, n_test=60, val_fraction=0.25, noise=False)
    np.testing.assert_allclose(clean.test.x[:, 0], images[clean.test.recording] / 255.0, atol=1e-6)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "none")
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x01\x02\x03\x04rest"))
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")
    truncated = struct.pack(">BBBBI", 0, 0, 8, 1, 100) + bytes(10)
    (tmp_path / "short.idx").write_bytes(truncated)
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "short.idx")


@pytest.mark.shared_data
def test_real_mnist_8000_2000(mnist_dir: Path) -> None:
    data = load_mnist(mnist_dir, seed=0)
    assert len(data.train) + len(data.val) == 8000 and len(data.test) == 2000
    labels = read_idx(next(mnist_dir.glob("t10k-labels-idx1-ubyte*")))
    expected = np.bincount(labels, minlength=10) * 2000 / len(labels)
    assert np.all(np.abs(np.bincount(data.test.y, minlength=10) - expected) < 1)
