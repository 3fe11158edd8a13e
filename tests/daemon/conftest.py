"""Fixtures of the daemon tests: the packaged model, subscribers and daemon processes cleaned up after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.support import MODEL, DaemonProcess, Subscriber
from tests.support.broker import MosquittoBroker


@pytest.fixture(autouse=True)
def model() -> Path:
    """The real DRSN-CW model trained on the bearing simulator (12 kHz, window 2048, 4 classes).

    It ships inside the package, so its absence is a packaging bug: fail, do not skip.
    """
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing from the package; restore drsn_edge/assets/drsn_cw_sim.onnx")
    return MODEL


@pytest.fixture
def subscriber(broker: MosquittoBroker) -> Iterator[Callable[..., Subscriber]]:
    """Factory of recording subscribers on the test broker; closed at teardown."""
    made: list[Subscriber] = []

    def make(*filters: str, **kw: Any) -> Subscriber:
        sub = Subscriber(broker.host, broker.port, filters or ("drsn-edge/#",), **kw)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()


@pytest.fixture
def daemon_process() -> Iterator[Callable[[Path, Path], DaemonProcess]]:
    """Factory of daemon child processes; any still running at teardown is killed."""
    made: list[DaemonProcess] = []

    def make(config: Path, log: Path) -> DaemonProcess:
        proc = DaemonProcess(config, log)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.kill()
