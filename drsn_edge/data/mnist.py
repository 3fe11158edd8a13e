"""MNIST digits in the shape of the vibration splits, for the 2-D form of the network.

Only the 10,000-image test set may be at hand, so by default it is split (stratified, seeded)
into 8,000 training and 2,000 test images; when the 60,000-image training files are present too,
the official split is used. The reference experiments for the 2-D DRSN add uniform noise to
every image, ``x / 255 + 0.5 * U(0, 1)``; that is the default here.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.data.splits import SplitData
from drsn_edge.data.windows import WindowSet
from runtime.errors import DataError

log = logging.getLogger(__name__)

CLASSES: list[str] = [str(d) for d in range(10)]
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FILES = {"test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
          "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")}
NOISE_SCALE = 0.5


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not): the big-endian format MNIST is distributed in."""
    p = Path(path)
    try:
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{p}: cannot read ({exc}); download the file again") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{p}: not an IDX file (bad magic number); download the original MNIST files")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)) * dtype.itemsize:
        raise DataError(f"{p}: holds {len(body)} data bytes, expected {int(np.prod(dims)) * dtype.itemsize} "
                        f"for shape {dims}; the file is truncated, download it again")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def load_mnist(
    root: str | Path | None,
    *,
    seed: int = 0,
    n_train: int = 8000,
    n_test: int = 2000,
    val_fraction: float = 0.1,
    noise: bool = True,
) -> SplitData:
    """Images as ``(N, 1, 28, 28)`` float32 in train/val/test :class:`WindowSet` s.

    ``recording`` of each image is its index in the IDX file it came from.

    ``n_train`` / ``n_test`` apply when only the test file exists; validation is carved from
    training (stratified). ``healthy_class`` is ``"0"``: digits have no healthy state, but the
    model artifact names one class as healthy.
    """
    base = Path(root) if root is not None else None
    if base is None or not base.is_dir():
        raise DataError(
            f"MNIST folder {base} does not exist; pass the folder holding t10k-*-ubyte.gz (--data)"
        )
    rng = np.random.default_rng(seed)
    if _find(base, "train"):
        x_pool, y_pool = _images(base, "train")
        x_test, y_test = _images(base, "test")
        pool_idx, test_idx = np.arange(len(y_pool)), np.arange(len(y_test))
        rule = "official 60000/10000"
    else:
        x_all, y_all = _images(base, "test")
        if n_train + n_test > len(y_all):
            raise DataError(f"asked for {n_train}+{n_test} images but {base} holds {len(y_all)}")
        rest, test_idx = stratified_split(y_all, n_test, rng)
        pool_idx = rest[stratified_split(y_all[rest], n_train, rng)[1]] if n_train < len(rest) else rest
        x_pool, y_pool, x_test, y_test = x_all[pool_idx], y_all[pool_idx], x_all[test_idx], y_all[test_idx]
        rule = f"stratified {n_train}/{n_test} of the {len(y_all)}-image test set"
    train_idx, val_idx = stratified_split(y_pool, round(val_fraction * len(y_pool)), rng)
    sets = {
        "train": _window_set(x_pool[train_idx], y_pool[train_idx], pool_idx[train_idx], noise, rng),
        "val": _window_set(x_pool[val_idx], y_pool[val_idx], pool_idx[val_idx], noise, rng),
        "test": _window_set(x_test, y_test, test_idx, noise, rng),
    }
    summary = _summary(sets, rule, seed, noise, val_fraction)
    return SplitData(sets["train"], sets["val"], sets["test"], list(CLASSES), "0", None, 28, 28, summary)


def stratified_split(y: np.ndarray, n_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, out)`` with ``len(out) == n_out`` and every class in proportion.

    Per-class shares are rounded by largest remainder so the total is exact.
    """
    classes, counts = np.unique(y, return_counts=True)
    share = counts * n_out / len(y)
    take = np.floor(share).astype(int)
    take[np.argsort(share - take)[::-1][: n_out - int(take.sum())]] += 1
    out, rest = [], []
    for c, k in zip(classes, take, strict=True):
        idx = rng.permutation(np.flatnonzero(y == c))
        out.append(idx[:k])
        rest.append(idx[k:])
    return np.sort(np.concatenate(rest)), np.sort(np.concatenate(out))


def _find(base: Path, which: str) -> tuple[Path, Path] | None:
    found = []
    for stem in _FILES[which]:
        hits = [base / f"{stem}.gz", base / stem]
        hit = next((h for h in hits if h.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def _images(base: Path, which: str) -> tuple[np.ndarray, np.ndarray]:
    paths = _find(base, which)
    if paths is None:
        raise DataError(f"{base} has no {_FILES[which][0]}.gz / {_FILES[which][1]}.gz; download MNIST there")
    x, y = read_idx(paths[0]), read_idx(paths[1]).astype(np.int64)
    if x.ndim != 3 or len(x) != len(y) or y.min() < 0 or y.max() > 9:
        raise DataError(f"{paths[0]} and {paths[1]} do not form an image/label pair; download them again")
    return x, y


def _window_set(x: np.ndarray, y: np.ndarray, index: np.ndarray, noise: bool,
                rng: np.random.Generator) -> WindowSet:
    images = x.astype(np.float32)[:, None] / 255.0
    if noise:
        images += (NOISE_SCALE * rng.uniform(size=images.shape)).astype(np.float32)
    return WindowSet(images, y.astype(np.int64), index.astype(np.int64), np.zeros(len(y), np.int64))


def _summary(sets: dict[str, WindowSet], rule: str, seed: int, noise: bool,
             val_fraction: float) -> dict[str, Any]:
    return {
        "source": "mnist",
        "classes": list(CLASSES),
        "windows": {name: ws.counts(CLASSES) for name, ws in sets.items()},
        "split": {"rule": rule, "val_fraction": val_fraction},
        "noise": {"kind": "uniform", "formula": "x/255 + 0.5*U(0,1)"} if noise else None,
        "seed": seed,
    }
