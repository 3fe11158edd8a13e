"""A broker for the daemon benchmark: one given by address, a private Mosquitto, or an in-process amqtt.

Publishing at QoS 1 is part of what the benchmark measures, so it needs a real broker that sends
real PUBACKs. A private Mosquitto on a free loopback port is the closest to a deployment (a C
broker in its own process); amqtt runs inside the benchmark's own process and shares its GIL, so
its figures are pessimistic and the report says which broker was used.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from runtime.errors import ConfigError
from runtime.mqtt.local_broker import InProcessBroker, parse_broker_address
from runtime.mqtt.mosquitto import MosquittoBroker, mosquitto_binary

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BrokerInfo:
    """Where the benchmark's broker listens and what it is."""

    host: str
    port: int
    kind: str  # "external", "mosquitto" or "amqtt (in-process)"


@contextlib.contextmanager
def bench_broker(address: str | None = None) -> Iterator[BrokerInfo]:
    """Yield a broker: ``address`` if given, else a private Mosquitto, else an in-process amqtt."""
    if address:
        host, port = parse_broker_address(address)
        _wait_listening(host, port, None, timeout=2.0)
        yield BrokerInfo(host, port, "external")
        return
    if mosquitto_binary() is not None:
        with _mosquitto() as info:
            yield info
        return
    with _amqtt() as info:
        yield info


@contextlib.contextmanager
def _mosquitto() -> Iterator[BrokerInfo]:
    # enough in-flight room for a whole batch of QoS 1 results; no persistence (RAM only)
    broker = MosquittoBroker(max_inflight=0, max_queued=1_000_000, log_all=False)
    try:
        try:
            broker.start(_START_TIMEOUT_S)
        except RuntimeError as exc:
            raise ConfigError(f"{exc}; pass --broker host:port to use a running broker") from exc
        log.info("benchmark broker: mosquitto on %s:%d", broker.host, broker.port)
        yield BrokerInfo(broker.host, broker.port, "mosquitto")
    finally:
        broker.close()


@contextlib.contextmanager
def _amqtt() -> Iterator[BrokerInfo]:
    with InProcessBroker() as broker:
        log.info("benchmark broker: in-process amqtt on %s (shares this process's GIL)", broker.address)
        yield BrokerInfo(broker.host, broker.port, "amqtt (in-process)")


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError as exc:
            if proc is not None and proc.poll() is not None:
                raise ConfigError(f"mosquitto exited at start (code {proc.returncode}); "
                                  "pass --broker host:port to use a running broker") from exc
            if time.monotonic() > deadline:
                raise ConfigError(f"no MQTT broker listens on {host}:{port}; "
                                  "start one or fix --broker") from exc
            time.sleep(0.05)
