"""Shared fixtures: a real MQTT broker, and the location of the optional shared data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import MosquittoBroker, mosquitto_binary

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DRSN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A fresh Mosquitto on a free local port, torn down after the test."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed; `apt-get install mosquitto` (CI does this in .ci/run)")
    with MosquittoBroker() as b:
        yield b


@pytest.fixture
def cwru_dir() -> Path:
    """The real CWRU recordings in ../shared/data/cwru; tests using it skip when it is absent."""
    d = SHARED_DATA / "cwru"
    if not (d / "MANIFEST.csv").is_file():
        pytest.skip(
            f"real CWRU data not found at {d} (set DRSN_SHARED_DATA); the core suite uses generated data"
        )
    return d


@pytest.fixture
def mnist_dir() -> Path:
    d = SHARED_DATA / "mnist"
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST test set not found at {d} (set DRSN_SHARED_DATA)")
    return d
