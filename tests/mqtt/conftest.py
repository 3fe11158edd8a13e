"""Fixtures for the MQTT tests: recorders on the test broker and started publishers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runtime.mqtt.config import MqttConfig
from runtime.mqtt.outbox import Outbox
from runtime.mqtt.publisher import MqttPublisher
from tests.mqtt.support import Recorder
from tests.support.broker import MosquittoBroker


@pytest.fixture
def recorder(broker: MosquittoBroker) -> Iterator[Callable[..., Recorder]]:
    """Factory of recorders on the test broker; all are closed at teardown."""
    made: list[Recorder] = []

    def make(*filters: str, **kw: Any) -> Recorder:
        r = Recorder(broker, filters or ("#",), **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def running() -> Iterator[Callable[..., MqttPublisher]]:
    """Factory of started publishers (each with its own outbox), closed at teardown."""
    made: list[MqttPublisher] = []

    def make(cfg: MqttConfig, **kw: Any) -> MqttPublisher:
        pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox), **kw)
        pub.start()
        made.append(pub)
        return pub

    yield make
    for pub in made:
        pub.close(timeout=1.0)
        pub.outbox.close()
