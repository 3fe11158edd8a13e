"""A throwaway MQTT broker inside this process, so the demo and the benchmark need nothing installed.

``drsn-edge demo`` must work on a laptop with no Mosquitto, and ``drsn-edge bench daemon`` falls
back to it when Mosquitto is missing: :class:`InProcessBroker` runs an amqtt broker (MQTT 3.1.1,
anonymous, in memory) on its own asyncio loop in a background thread, bound to 127.0.0.1 on a free
port. Clients then talk to it over real TCP exactly as they would talk to a plant's broker.
``--broker host:port`` (parsed by :func:`parse_broker_address`) replaces it with an existing one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from runtime.errors import BackendUnavailableError, ConfigError

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 20.0
_PORT_TRIES = 5


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (another process may still take it: callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def parse_broker_address(text: str) -> tuple[str, int]:
    """``host:port`` (or ``host``, port 1883) -> ``(host, port)``; ConfigError names the expected form."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host, port_text = text.strip(), "1883"
    if not host:
        raise ConfigError(f"--broker {text!r} has no host; write host:port, e.g. localhost:1883")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"--broker {text!r}: port {port_text!r} is not a number; write host:port") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"--broker {text!r}: port {port} is outside 1..65535")
    return host, port


def _import_amqtt_broker() -> Any:
    try:
        from amqtt.broker import Broker
    except ImportError as exc:
        raise BackendUnavailableError(
            "the built-in MQTT broker needs amqtt; install it with `pip install 'drsn-edge[demo]'`, "
            "or point the command at a running broker with --broker host:port"
        ) from exc
    return Broker


class InProcessBroker:
    """An amqtt broker on ``127.0.0.1:<free port>``, served from a daemon thread; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or 0
        self._fixed_port = port is not None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> InProcessBroker:
        """Start the loop thread and the broker; retry on another port if a free one was taken meanwhile."""
        broker_cls = _import_amqtt_broker()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mqtt-broker", daemon=True)
        self._thread.start()
        last: Exception | None = None
        for _ in range(1 if self._fixed_port else _PORT_TRIES):
            if not self._fixed_port:
                self.port = free_port(self.host)
            try:
                self._submit(self._start(broker_cls)).result(_START_TIMEOUT_S)
            except Exception as exc:  # amqtt wraps bind errors in BrokerError
                last = exc
                log.debug("broker could not start on %s: %s", self.address, exc)
                continue
            log.info("in-process MQTT broker listening on %s", self.address)
            return self
        self._stop_loop()
        raise ConfigError(
            f"the in-process MQTT broker could not listen on {self.host} ({last}); free a port or pass "
            "--broker host:port of a running broker"
        )

    async def _start(self, broker_cls: Any) -> None:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = broker_cls(config)
        await broker.start()
        self._broker = broker

    def _submit(self, coro: Any) -> Future[Any]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def stop(self) -> None:
        """Shut the broker down and end its thread; idempotent."""
        if self._broker is not None:
            try:
                self._submit(self._broker.shutdown()).result(10.0)
            except Exception as exc:  # a failing shutdown must not hide the demo's own result
                log.warning("in-process broker did not shut down cleanly: %s", exc)
            self._broker = None
        self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5.0)
            if not thread.is_alive():
                loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> InProcessBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
