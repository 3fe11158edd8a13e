"""A private Mosquitto on a free loopback port: the one launcher the tests and the daemon benchmark use.

A real C broker in its own process is the closest thing to a deployment: it sends real PUBACKs,
keeps retained messages, and can be stopped and restarted on the same port (a broker outage) or
paused with SIGSTOP (a hung broker). The config is written to a throwaway folder; nothing is
left behind. Tests skip, and the benchmark falls back to an in-process amqtt, when the
``mosquitto`` binary is not installed (``scripts/ensure-mosquitto.sh`` installs it where it may).
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

from runtime.mqtt.local_broker import free_port


def mosquitto_binary() -> str | None:
    """The mosquitto executable on PATH or in the usual sbin folders, if installed."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


class MosquittoBroker:
    """Runs ``mosquitto`` with a throwaway config on 127.0.0.1:<port>."""

    def __init__(self, port: int | None = None, persistence: bool = False, *, max_inflight: int = 100,
                 max_queued: int = 100_000, log_all: bool = True) -> None:
        """``max_inflight`` 0 means unlimited (the benchmark: a whole batch of QoS 1 results in
        flight); ``log_all`` writes every broker event to :attr:`log_path` (tests read it)."""
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
            f"log_type {'all' if log_all else 'error'}",
            f"max_inflight_messages {max_inflight}",
            f"max_queued_messages {max_queued}",
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
        self.close()

    def close(self) -> None:
        """Stop the broker and remove its folder (config, log, persistence)."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
