"""The daemon process against hostile inputs and bad models: a real Mosquitto, ``drsn-edge run`` as a child.

* One 2 KB UDP datagram of nested JSON once ended the UDP source for good (every UDP sensor
  stopped, the process lived on). Now the UDP sensor keeps producing windows after 500 of them,
  and the log holds no traceback.
* A sensor that goes silent is reported: state ``no_data`` (retained, an event) within
  ``fault_state.no_data_after_s``, and back when its frames return.
* A model whose graph or weights do not match its metadata was accepted at start and on reload
  and then failed every batch. Now it is refused at start with the figures, and a reload keeps
  the model that works.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from onnx import helper

from runtime.artifact import METADATA_KEY, Golden, ModelMetadata
from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from runtime.sources.frames import encode_frame
from tests.daemon.support import (
    MODEL,
    RATE,
    DaemonProcess,
    Subscriber,
    base_config,
    simulate,
    topic,
    unique_events,
    write_config,
)
from tests.support.broker import MosquittoBroker

Daemons = Callable[[Path, Path], DaemonProcess]
Subscribers = Callable[..., Subscriber]
CHUNK = 1024


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """Streams a simulated bearing signal as UDP frames in real time for the sensors it is told to."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.active = {"press-1": True, "press-2": True}
        self.sent = dict.fromkeys(self.active, 0)
        self._signal = simulate("normal", seconds=64 * CHUNK / RATE).reshape(-1, CHUNK)
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period = CHUNK / RATE
        while not self._stop.wait(period):
            for sid, on in list(self.active.items()):
                if not on:
                    continue
                seq = self.sent[sid]
                chunk = self._signal[seq % len(self._signal)]
                frame = encode_frame(chunk, sample_rate=RATE, seq=seq, t0=time.time() - period, sensor_id=sid)
                self._sock.sendto(frame, ("127.0.0.1", self.port))
                self.sent[sid] = seq + 1

    def send_raw(self, data: bytes, n: int) -> None:
        for _ in range(n):
            self._sock.sendto(data, ("127.0.0.1", self.port))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def _windows(sub: Subscriber, sensor: str) -> float:
    snaps = [m.json() for m in sub.on(topic("metrics"))]
    return snaps[-1]["windows"]["by_sensor"].get(sensor, 0.0) if snaps else 0.0


@pytest.mark.slow
def test_nested_udp_datagrams_and_a_silent_sensor(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Subscribers, daemon_process: Daemons,
) -> None:
    port = _free_udp_port()
    source = {"type": "udp", "host": "127.0.0.1", "port": port, "payload": "auto",
              "sensors": [{"id": "press-1", "sample_rate": RATE}, {"id": "press-2", "sample_rate": RATE}]}
    cfg = base_config(broker.host, broker.port, tmp_path, [source])
    cfg["fault_state"]["no_data_after_s"] = 2.0
    config = write_config(tmp_path / "daemon.yaml", cfg)
    sub = subscriber()
    proc = daemon_process(config, tmp_path / "daemon.log")
    sub.wait_payload(topic("status"), b"online", timeout=30)
    gw = Gateway(port)
    try:
        sub.wait_for(lambda s: _windows(s, "press-1") >= 20, 20, "press-1 windows before the attack")
        before = _windows(sub, "press-1")
        t_flowing = time.time()
        gw.send_raw(b"[" * 1000 + b"]" * 1000, 500)  # the 2 KB datagram that ended the UDP source
        t_attack = time.monotonic()
        sub.wait_for(lambda s: _windows(s, "press-1") >= before + 40, 20, "press-1 windows after the attack")
        rate_after = (_windows(sub, "press-1") - before) / (time.monotonic() - t_attack)

        gw.active["press-2"] = False  # press-2 goes silent
        t_silent = time.time()

        def stale(s: Subscriber) -> list[float]:
            return [m.t for m in s.on(topic("press-2", "state"))
                    if m.t > t_silent and m.json()["state"] == "no_data"]

        sub.wait_for(lambda s: bool(stale(s)), 10, "press-2 in no_data")
        took = stale(sub)[0] - t_silent
        gw.active["press-2"] = True
        sub.wait_for(lambda s: any(e["from"] == "no_data" and e["ts"] > t_silent
                                   for e in s.events("press-2")), 10, "press-2 back when frames return")
        late = [m.json()["state"] for m in sub.on(topic("press-1", "state")) if m.t > t_flowing]
        assert "no_data" not in late, "the sensor that kept sending is not stale"
    finally:
        gw.close()
        proc.signal(signal.SIGTERM)
        code = proc.wait(20)
    log = proc.log()
    assert code == 0, log
    assert "Traceback" not in log and "RecursionError" not in log
    assert log.count("nested too deeply") <= 2, "500 bad datagrams: one log line per kind every 10 s"
    events = unique_events(sub.events("press-2"))
    to_no_data = [e for e in events if e["to"] == "no_data" and e["ts"] > t_silent]
    assert len(to_no_data) == 1 and "no windows for" in to_no_data[0]["reason"]
    assert 2.0 <= took < 4.0, f"no_data {took:.1f} s after the last frame; the limit is 2 s"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    final = [m.json() for m in sub.on(topic("metrics"))][-1]
    assert final["bad_payloads"]["by_sensor"].get("_source", 0) >= 500
    assert final["source_restarts"] == 0
    print(f"press-1: {rate_after:.1f} windows/s after 500 nested datagrams; press-2 no_data after "
          f"{took:.1f} s of silence (limit 2 s)")


def mismatched_model(path: Path, how: str) -> Path:
    """The packaged model with its metadata changed after export, as a broken deployment would."""
    proto = onnx.load(str(MODEL))
    meta = ModelMetadata.from_json(next(p.value for p in proto.metadata_props if p.key == METADATA_KEY))
    if how == "classes":  # the graph outputs 4 classes; the metadata now names 5
        meta = meta.model_copy(update={"classes": [*meta.classes, "cage"], "golden": None})
    else:  # golden logits of another model: the weights are not the ones the metadata describes
        assert meta.golden is not None
        x, y = meta.golden.arrays()
        meta = meta.model_copy(update={"golden": Golden.from_arrays(x, y[:, ::-1] * 3.0)})
    meta = meta.model_copy(update={"model": meta.model.model_copy(update={"version": f"broken-{how}"})})
    del proto.metadata_props[:]
    helper.set_model_props(proto, {METADATA_KEY: meta.to_json()})
    onnx.save(proto, str(path))
    return path


def synthetic_fan() -> dict[str, object]:
    return {"type": "synthetic", "pacing": "realtime", "chunk": 512,
            "sensors": [{"id": "fan", "condition": "normal"}]}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["classes", "golden"])
def test_a_mismatched_model_is_refused_at_start_with_the_figures(
    tmp_path: Path, broker: MosquittoBroker, daemon_process: Daemons, how: str,
) -> None:
    cfg = base_config(broker.host, broker.port, tmp_path, [synthetic_fan()])
    cfg["model"] = str(mismatched_model(tmp_path / "model.onnx", how))
    proc = daemon_process(write_config(tmp_path / "daemon.yaml", cfg), tmp_path / "daemon.log")
    code = proc.wait(60)
    log = proc.log()
    assert code != 0, log
    if how == "classes":
        assert "4 classes, but the metadata names 5 classes" in log, log
    else:
        assert "golden gate failed" in log and "max |diff|" in log and "on 8 windows" in log, log


@pytest.mark.slow
def test_a_mismatched_model_on_reload_keeps_the_working_one(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Subscribers, daemon_process: Daemons,
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(MODEL.read_bytes())
    cfg = base_config(broker.host, broker.port, tmp_path, [synthetic_fan()])
    cfg["model"] = str(model)
    sub = subscriber()
    proc = daemon_process(write_config(tmp_path / "daemon.yaml", cfg), tmp_path / "daemon.log")
    sub.wait_for(lambda s: _windows(s, "fan") >= 10, 30, "windows from the working model")
    mismatched_model(tmp_path / "next.onnx", "golden").replace(model)
    proc.signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "keeping the loaded model" not in proc.log():
        assert time.monotonic() < deadline, proc.log()
        time.sleep(0.2)
    served = _windows(sub, "fan")
    sub.wait_for(lambda s: _windows(s, "fan") >= served + 20, 20, "windows after the refused reload")
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    log = proc.log()
    assert "golden gate failed" in log and "inference failed" not in log
    versions = {m.json()["model"]["version"] for m in sub.on(topic("fan", "state"))}
    assert not any(v.startswith("broken") for v in versions), versions


@pytest.mark.slow
def test_an_ended_inference_thread_makes_the_daemon_exit_3(tmp_path: Path, broker: MosquittoBroker) -> None:
    """No thread dies silently: without its inference thread the daemon exits for systemd to restart it."""
    cfg = validate_config_dict(base_config(broker.host, broker.port, tmp_path, [synthetic_fan()]))
    daemon = Daemon(cfg)
    daemon.start()
    try:
        (model,) = daemon.models.values()
        model.batcher.close()  # the thread ends, as it would after an error nothing could catch
        assert daemon._stop.wait(5), "the supervisor must notice the ended inference thread"
        assert daemon.exit_code == 3
    finally:
        daemon.stop()


@pytest.mark.slow
def test_a_sender_clock_an_hour_back_does_not_hold_a_fault_back(
    tmp_path: Path, broker: MosquittoBroker, subscriber: Subscribers,
) -> None:
    """Defect 6: min_duration_s ran on sender timestamps, so a step back suppressed a real fault."""
    port = _free_udp_port()
    source = {"type": "udp", "host": "127.0.0.1", "port": port, "max_clock_skew_s": None,  # trust t0
              "sensors": [{"id": "press-1", "sample_rate": RATE}]}
    cfg = base_config(broker.host, broker.port, tmp_path, [source])
    cfg["fault_state"]["min_duration_s"] = 1.0
    daemon = Daemon(validate_config_dict(cfg))
    sub = subscriber()
    normal = simulate("normal", 48 * CHUNK / RATE).reshape(-1, CHUNK)
    fault = simulate("inner_race", 96 * CHUNK / RATE).reshape(-1, CHUNK)
    period = CHUNK / RATE
    daemon.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for seq, chunk in enumerate(normal):
                s.sendto(encode_frame(chunk, sample_rate=RATE, seq=seq, t0=time.time() - period,
                                      sensor_id="press-1"), ("127.0.0.1", port))
                time.sleep(period)
            sub.wait_for(lambda x: any(e["to"] == "normal" for e in x.events("press-1")), 10, "normal first")
            t_fault = time.time()
            for i, chunk in enumerate(fault):  # 0.5 s into the fault the gateway's clock steps back an hour
                seq = len(normal) + i
                step = 3600.0 if i >= 6 else 0.0
                s.sendto(encode_frame(chunk, sample_rate=RATE, seq=seq, t0=time.time() - step - period,
                                      sensor_id="press-1"), ("127.0.0.1", port))
                time.sleep(period)
                if any(e["to"] == "inner_race" for e in sub.events("press-1")):
                    break
        sub.wait_for(lambda x: any(e["to"] == "inner_race" for e in x.events("press-1")), 5, "the fault")
        took = time.time() - t_fault
    finally:
        daemon.stop()
    assert took < 6.0, f"the fault took {took:.1f} s to be reported with min_duration_s 1 s"
    print(f"fault reported {took:.1f} s after it began, sender clock an hour back (min_duration_s 1 s)")
