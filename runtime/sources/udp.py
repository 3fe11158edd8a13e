"""Raw samples in UDP datagrams: one frame (see :mod:`runtime.sources.frames`) per datagram.

UDP suits gateways on the same network segment that stream at high rate and would rather lose a
chunk than stall: there is no connection to keep up, and a lost datagram shows up as a ``seq``
jump that the windower turns into a clean window restart. Every datagram must name its sensor
in the frame, because all sensors share one port. A datagram holds at most 65,507 bytes: about
16,000 float32 or 32,000 int16 samples after the 40-byte header and the sensor id.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import sys
import time
from typing import Literal

from pydantic import Field, model_validator

from runtime.config_base import StrictModel
from runtime.errors import ConfigError
from runtime.sources.base import Source
from runtime.sources.config import SourceConfigBase
from runtime.sources.fair import DEFAULT_CAPACITY, FAIR_DESCRIPTION, FairIntake, frame_key
from runtime.sources.fields import SensorId, require_unique
from runtime.sources.intake import (
    DEFAULT_MAX_CLOCK_SKEW_S,
    PAYLOAD_DESCRIPTION,
    SKEW_DESCRIPTION,
    FrameIntake,
    PayloadFormat,
)

log = logging.getLogger(__name__)

_MAX_DATAGRAM = 65507
#: the kernel's receive stamp of each datagram (Linux; Python 3.11 has no name for it)
_SO_TIMESTAMPNS: int | None = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)
_TIMESPEC = struct.Struct("@ll")  # struct timespec: seconds, nanoseconds (C longs)
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
_POLL_MS = 250
#: a consumer that takes chunks one by one is served this long before the socket is drained again
_SERVE_S = 0.005
#: datagrams taken per drain, in fair-queue capacities: a flood beyond it waits in the kernel
_DRAIN_CAPACITIES = 4


class UdpSensor(StrictModel):
    """One sensor whose frames arrive on the shared port."""

    id: SensorId = Field(..., description="Sensor id; frames must carry it in their sensor-id field.")
    sample_rate: float = Field(..., gt=0, description="Declared samples per second; frames at another rate "
                               "are rejected.")


class UdpSourceConfig(SourceConfigBase):
    """Listen on a UDP port for binary (or JSON) frames from several sensors."""

    type: Literal["udp"] = Field("udp", description="Selects the UDP source.")
    host: str = Field("0.0.0.0", description="Address to bind; 127.0.0.1 accepts only local senders.")
    port: int = Field(..., ge=0, le=65535, description="UDP port to bind; 0 picks a free port (tests).")
    payload: PayloadFormat = Field("auto", description=PAYLOAD_DESCRIPTION)
    max_clock_skew_s: float | None = Field(DEFAULT_MAX_CLOCK_SKEW_S, gt=0, description=SKEW_DESCRIPTION)
    backlog: int = Field(DEFAULT_CAPACITY, ge=16, description=FAIR_DESCRIPTION)
    receive_buffer: int = Field(4 * 1024 * 1024, ge=65536, description="Socket receive buffer in bytes; "
                                "larger buffers ride out bursts while the daemon is busy.")
    sensors: list[UdpSensor] = Field(..., min_length=1, description="Sensors expected on this port.")

    @model_validator(mode="after")
    def _unique(self) -> UdpSourceConfig:
        require_unique(s.id for s in self.sensors)
        return self

    def sensor_ids(self) -> list[str]:
        return [str(entry.id) for entry in self.sensors]


class UdpSource(Source[UdpSourceConfig]):
    """Receives datagrams on one socket and emits a chunk per valid frame, every frame that is waiting
    after a wake as one block (see :class:`~runtime.sources.fair.FairIntake`, served inline here)."""

    type = "udp"

    def __init__(self, config: UdpSourceConfig) -> None:
        super().__init__(config)
        self._sock: socket.socket | None = None
        self._stamped = False  # the kernel stamps each datagram's arrival (SO_TIMESTAMPNS)

    @property
    def sensors(self) -> dict[str, float]:
        return {s.id: s.sample_rate for s in self.config.sensors}

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when the config asked for port 0."""
        if self._sock is None:
            raise RuntimeError("the UDP source is not started; call start() first")
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.receive_buffer)
            sock.bind((self.config.host, self.config.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"cannot bind UDP {self.config.host}:{self.config.port} ({exc}); choose a free port or "
                "stop the other program listening there"
            ) from exc
        sock.setblocking(False)  # drained until empty after each wake (see _run)
        self._stamped = _stamp_arrivals(sock)
        self._sock = sock
        log.info("listening for UDP frames on %s:%d", *self.address)

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None, "_open() runs before _run()"
        intake = FrameIntake(self.sensors, payload_format=self.config.payload, emit=self._emit,
                             report=self._report, max_clock_skew_s=self.config.max_clock_skew_s)
        # a consumer of single chunks gets them one by one, served within a time budget per wake
        blocks = self._emit_block if self._block_fn is not None else None
        fair = FairIntake(intake, name="source-udp-intake", capacity=self.config.backlog,
                          on_drop=self._count_drop, emit_block=blocks, threaded=False)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        try:
            while not self._stopping.is_set():
                # wait only when nothing is left to serve; then take every datagram waiting (a few
                # queue capacities at most) and serve one block of them, so a flooder's backlog is
                # dropped at its own expense in the fair queue, not by the kernel, indiscriminately
                if not fair.waiting and not poller.poll(_POLL_MS):
                    continue
                got = self._drain(sock, _DRAIN_CAPACITIES * fair.capacity)
                if fair.can_serve_now(len(got)):  # the usual wake: a frame or a few, nothing queued
                    fair.serve_now([(data, _origin(addr), None, t) for data, addr, t in got])
                    continue
                fair.put_many([(frame_key(data, addr[0]), (data, _origin(addr), None, t))
                               for data, addr, t in got])
                fair.serve_ready(budget_s=_SERVE_S)  # round robin over what waits, flooders dropped
        finally:
            sock.close()
            fair.stop()

    def _drain(self, sock: socket.socket, limit: int) -> list[tuple[bytes, tuple[str, int], float]]:
        """Every datagram waiting on the non-blocking socket (at most ``limit``), with its sender and
        its arrival (``time.monotonic()``): the kernel's receive stamp where the socket gives one, so
        the time a datagram waited for a busy daemon counts in its windows' latency."""
        got: list[tuple[bytes, tuple[str, int], float]] = []
        offset = time.monotonic() - time.time()  # kernel stamps are wall time
        stamped = self._stamped
        for _ in range(limit):
            try:
                if stamped:
                    data, ancillary, _, addr = sock.recvmsg(_MAX_DATAGRAM, _CMSG_SPACE)
                    arrival = _kernel_stamp(ancillary, offset)
                else:
                    data, addr = sock.recvfrom(_MAX_DATAGRAM)
                    arrival = None
            except BlockingIOError:
                break
            except OSError:
                if self._stopping.is_set():
                    break
                raise
            got.append((data, addr, time.monotonic() if arrival is None else arrival))
        return got


def _kernel_stamp(ancillary: list[tuple[int, int, bytes]], offset: float) -> float | None:
    """The datagram's receive time from its SO_TIMESTAMPNS message, on the monotonic clock."""
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(raw) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(raw)
            return min(float(sec + nsec * 1e-9 + offset), time.monotonic())  # never after now (clock step)
    return None


def _stamp_arrivals(sock: socket.socket) -> bool:
    """Ask the kernel to stamp each datagram's arrival; False where it cannot (then the arrival is
    when the datagram is read)."""
    if _SO_TIMESTAMPNS is None or not _CMSG_SPACE or not hasattr(sock, "recvmsg"):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def _origin(addr: tuple[str, int]) -> str:
    return f"UDP datagram from {addr[0]}:{addr[1]}"
