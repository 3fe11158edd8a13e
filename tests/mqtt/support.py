"""Helpers for the MQTT tests: a recording subscriber, publisher configs, brokers with auth/TLS."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import paho.mqtt.publish as mqtt_publish
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from runtime.mqtt.config import MqttConfig
from runtime.mqtt.publisher import MqttPublisher
from tests.support.broker import MosquittoBroker


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    """A real MQTT client that records every message it receives on ``filters``."""

    def __init__(
        self,
        broker: MosquittoBroker,
        filters: tuple[str, ...] = ("#",),
        client_id: str = "",
        clean: bool = True,
    ) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._filters = filters
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.client.reconnect_delay_set(1, 1)
        self._subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(5), "recorder did not subscribe"

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(f, 1) for f in self._filters])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_topic(self, topic: str, payload: bytes | None = None, timeout: float = 5.0) -> Received:
        def hit(msgs: list[Received]) -> bool:
            return any(m.topic == topic and (payload is None or m.payload == payload) for m in msgs)

        assert self.wait_for(hit, timeout), f"no {payload!r} on {topic}; got {self.topics()}"
        return [m for m in self.on(topic) if payload is None or m.payload == payload][-1]

    def topics(self) -> list[str]:
        with self._cond:
            return [m.topic for m in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_config(broker: MosquittoBroker, tmp_path: Path, **overrides: Any) -> MqttConfig:
    """A publisher config for the test broker with fast reconnects and a private outbox."""
    base: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "device_id": "press-7",
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "connect_timeout_s": 2.0,
        "outbox": {"path": str(tmp_path / "outbox.sqlite3"), "synchronous": "normal"},
    }
    base.update(overrides)
    return MqttConfig.model_validate(base)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _append_conf(broker: MosquittoBroker, lines: str) -> None:
    """Add config lines (the base broker already keeps root when tests run as root)."""
    broker.conf_path.write_text(broker.conf_path.read_text() + lines)


class PasswordBroker(MosquittoBroker):
    """Mosquitto that refuses anonymous clients and knows one user."""

    def __init__(self, user: str, password: str) -> None:
        super().__init__()
        tool = shutil.which("mosquitto_passwd")
        if tool is None:
            pytest.skip("mosquitto_passwd is not installed (it ships with the mosquitto package)")
        pw_file = self._dir / "passwd"
        subprocess.run([tool, "-c", "-b", str(pw_file), user, password], check=True, capture_output=True)
        conf = self.conf_path.read_text()
        self.conf_path.write_text(conf.replace("allow_anonymous true", "allow_anonymous false"))
        _append_conf(self, f"password_file {pw_file}\n")


class PersistentBroker(MosquittoBroker):
    """Mosquitto that keeps sessions across a restart, so a recorder misses nothing of an outage."""

    def __init__(self) -> None:
        super().__init__(persistence=True)
        _append_conf(self, "")


class TlsBroker(MosquittoBroker):
    """Mosquitto with a TLS listener and a throwaway CA (made with the openssl CLI)."""

    def __init__(self) -> None:
        super().__init__()
        if shutil.which("openssl") is None:
            pytest.skip("the openssl command is not installed")
        self.ca_file = self._dir / "ca.pem"
        cert, key = _make_certs(self._dir)
        _append_conf(self, f"cafile {self.ca_file}\ncertfile {cert}\nkeyfile {key}\n")


def _make_certs(d: Path) -> tuple[Path, Path]:
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=drsn-edge test CA")
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return d / "server.pem", d / "server.key"


class FakeSilentBroker:
    """A fake broker (a stand-in at the network boundary) that accepts connections and never PUBACKs.

    It answers CONNECT, SUBSCRIBE and PINGREQ as a broker would and swallows every PUBLISH: the
    shape of a broker that is up but no longer acknowledges, which no real Mosquitto can be made
    to do. Counts the connections it accepted.
    """

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = "127.0.0.1", int(self._server.getsockname()[1])
        self.connects = 0
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                while True:
                    kind, body = _read_packet(conn)
                    if kind == 1:  # CONNECT -> CONNACK accepted
                        self.connects += 1
                        conn.sendall(b"\x20\x02\x00\x00")
                    elif kind == 8:  # SUBSCRIBE -> SUBACK granting QoS 1 to each filter
                        n, i = 0, 2
                        while i < len(body):
                            i += 2 + int.from_bytes(body[i:i + 2], "big") + 1
                            n += 1
                        conn.sendall(bytes([0x90, 2 + n]) + body[:2] + b"\x01" * n)
                    elif kind == 12:  # PINGREQ -> PINGRESP
                        conn.sendall(b"\xd0\x00")
                    elif kind == 14:  # DISCONNECT
                        return
            except (OSError, ConnectionError):
                return

    def close(self) -> None:
        self._closing = True
        self._server.close()


def _read_packet(conn: socket.socket) -> tuple[int, bytes]:
    def read(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    kind = read(1)[0] >> 4
    length, shift = 0, 0
    while True:
        b = read(1)[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return kind, read(length)


def command(pub: MqttPublisher, broker: MosquittoBroker, payload: bytes) -> None:
    """Publish ``payload`` on the publisher's command topic at QoS 1."""
    mqtt_publish.single(pub.topics.command, payload, qos=1, hostname=broker.host, port=broker.port)


def listening(pub: MqttPublisher, broker: MosquittoBroker, seen: Callable[[], bool]) -> None:
    """Send ``ping`` commands until ``seen()``.

    The publisher subscribes to its command topic after CONNACK; a command published before the
    broker processed that subscription is simply not delivered, so tests wait for one that is.
    """
    deadline = time.monotonic() + 10
    while not seen():
        assert time.monotonic() < deadline, "the publisher never received a command"
        command(pub, broker, b'{"action": "ping"}')
        wait_until(seen, 0.3)
