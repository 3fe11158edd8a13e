"""A real Mosquitto broker on a free local port, for tests (as paho-mqtt's own tests do).

The broker can be stopped and restarted on the same port to simulate an outage. Tests that
need it skip with a clear reason when the ``mosquitto`` binary is not installed (CI installs it
with apt; see .ci/run).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from runtime.bench.broker import mosquitto_binary
from runtime.mqtt.local_broker import free_port


class MosquittoBroker:
    """Runs ``mosquitto`` with a throwaway config on 127.0.0.1:<port>."""

    def __init__(self, port: int | None = None, persistence: bool = False) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="drsn-mosq-"))
        self.log_path = self._dir / "mosquitto.log"
        conf = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"log_dest file {self.log_path}",
            "log_type all",
            "max_inflight_messages 100",
            "max_queued_messages 100000",
            "set_tcp_nodelay true",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # as root Mosquitto drops to the `mosquitto` user, which cannot write our private temp dir
            conf.append("user root")
        if persistence:
            conf += ["persistence true", f"persistence_location {self._dir}/"]
        self.conf_path = self._dir / "mosquitto.conf"
        self.conf_path.write_text("\n".join(conf) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if self._proc.poll() is not None:
                    log = self.log_path.read_text()[-2000:] if self.log_path.exists() else "(no log)"
                    raise RuntimeError(f"mosquitto exited at start: {log}") from None
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def pause(self) -> None:
        """SIGSTOP the broker: connections stay open but nothing is answered (a hung broker)."""
        assert self._proc is not None, "the broker is not running"
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self._proc is not None, "the broker is not running"
        self._proc.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
