"""One demo run: broker, subscriber, the real daemon on simulated machines, the live view, the verdict.

The daemon is the production :class:`runtime.daemon.Daemon` built from a normal
:class:`~runtime.config.DaemonConfig` (synthetic source, ONNX Runtime on the CPU, MQTT); the
demo only watches it from outside, through the broker, like any client. It runs on a
background thread (``run(install_signals=False)``) and stops by itself when the simulated
signal ends (``exit_when_sources_finish``), draining every window and publishing ``stopped``.
Only the runtime package is used, so the demo runs where torch is not installed.
"""

from __future__ import annotations

import io
import json
import logging
import math
import secrets
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from drsn_edge.assets import packaged_model
from drsn_edge.demo.display import Display, Frame, LiveTable, PlainLines, live_table, print_summary
from drsn_edge.demo.monitor import Monitor
from drsn_edge.demo.scenario import Scenario, default_scenario
from drsn_edge.demo.summary import MachineOutcome, judge, problems
from runtime.artifact import ModelMetadata
from runtime.backends import open_model
from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from runtime.mqtt.local_broker import InProcessBroker, parse_broker_address
from runtime.mqtt.topics import STATUS_STOPPED, Topics
from runtime.sources.synthetic import SyntheticSource

log = logging.getLogger(__name__)

TOPIC_PREFIX = "drsn-edge-demo"
_REFRESH_S = 0.25
_STOPPED_WAIT_S = 5.0
_LOG_WIDTH = 120


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float = 40.0
    broker: str | None = None
    model: Path | None = None
    seed: int = 7
    live: bool | None = None  # None: a live table when stdout is a terminal
    threads: int = 1
    json_path: Path | None = None
    svg_path: Path | None = None


@dataclass
class DemoResult:
    outcomes: list[MachineOutcome]
    problems: list[str]
    interrupted: bool = False

    @property
    def passed(self) -> bool:
        return not self.problems


def daemon_config(model: Path, scenario: Scenario, host: str, port: int, device: str, workdir: Path,
                  threads: int) -> dict[str, Any]:
    """The config a user would write for this setup (``drsn-edge run`` accepts the same document)."""
    return {
        "model": str(model),
        "backend": {"type": "onnxruntime", "providers": ["CPUExecutionProvider"],
                    "intra_op_threads": threads},
        "sources": [scenario.source_config().model_dump(mode="json", exclude_none=True)],
        # the fifth machine is one the model never saw; a flag must last a second to be published
        "novelty": {"threshold": "p99.9", "min_duration_s": 1.0},
        "mqtt": {"host": host, "port": port, "device_id": device, "topic_prefix": TOPIC_PREFIX,
                 "publish_predictions": True, "metrics_interval_s": 0,
                 "outbox": {"path": str(workdir / "outbox.sqlite3"), "synchronous": "normal"}},
        "exit_when_sources_finish": True,
    }


def config_yaml(opts: DemoOptions) -> str:
    """The demo's daemon config as a YAML file for `drsn-edge run`: the next step after watching it."""
    import yaml

    host, port = parse_broker_address(opts.broker or "localhost:1883")
    scenario = default_scenario(opts.duration_s, opts.seed)
    doc = daemon_config(opts.model or packaged_model(), scenario, host, port, "demo", Path("."), opts.threads)
    doc["mqtt"]["outbox"]["path"] = "drsn-edge-demo-outbox.sqlite3"
    validate_config_dict(doc, source="demo config")
    header = ("# The daemon config `drsn-edge demo` runs; start it with `drsn-edge run demo.yaml`.\n"
              "# Replace the synthetic source with your sensors: `drsn-edge validate-config --reference`.\n")
    return header + yaml.safe_dump(doc, sort_keys=False)


class _DaemonThread(threading.Thread):
    """Runs the daemon; keeps its exception so the main thread can re-raise it."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__(name="demo-daemon", daemon=True)
        self.daemon_obj = daemon
        self.error: BaseException | None = None
        self.exit_code = 0

    def run(self) -> None:
        try:
            self.exit_code = self.daemon_obj.run(install_signals=False)
        except BaseException as exc:
            self.error = exc


def run_demo(opts: DemoOptions, console: Console | None = None) -> DemoResult:
    """Run the whole demo and print its summary; raises DrsnEdgeError for setup problems."""
    console = console or _console()
    model = opts.model or packaged_model()
    meta = open_model(model)
    scenario = default_scenario(opts.duration_s, opts.seed)
    scenario.check_model_classes(meta.classes, meta.healthy_class)
    with ExitStack() as stack:
        host, port = _broker(opts, stack)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="drsn-edge-demo-")))
        topics = Topics(TOPIC_PREFIX, f"demo-{secrets.token_hex(3)}")
        monitor = _monitor(host, port, topics, meta)
        stack.callback(monitor.stop)
        if opts.broker is not None:
            stack.callback(monitor.clear_retained, [m.sensor_id for m in scenario.machines])
        cfg = validate_config_dict(daemon_config(model, scenario, host, port, topics.device, workdir,
                                                 opts.threads), source="demo config")
        _intro(console, opts, model, meta, host, port, topics)
        started = time.time()
        served = _serve(Daemon(cfg), monitor, scenario, _display(opts, scenario, console), started)
        last = served.frame
        outcomes = judge(scenario, monitor.snapshot(), last.origin,
                         last.elapsed_s if served.interrupted else math.inf)
    found = problems(outcomes)
    if served.exit_code:
        found.append(f"the daemon exited with code {served.exit_code}")
    result = DemoResult(outcomes, found, served.interrupted)
    print_summary(console, result.outcomes, result.problems)
    if opts.svg_path is not None:
        _save_svg(opts.svg_path, scenario, last, result)
    if opts.json_path is not None:
        doc = {"passed": result.passed, "problems": result.problems, "duration_s": scenario.duration_s,
               "machines": [o.as_dict() for o in outcomes]}
        opts.json_path.write_text(json.dumps(doc, indent=2) + "\n")
    return result


def _console() -> Console:
    """A terminal console, or a wide one for logs so the summary table is not squeezed to 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=_LOG_WIDTH)


def _broker(opts: DemoOptions, stack: ExitStack) -> tuple[str, int]:
    if opts.broker is not None:
        return parse_broker_address(opts.broker)
    broker = stack.enter_context(InProcessBroker())
    return broker.host, broker.port


def _monitor(host: str, port: int, topics: Topics, meta: ModelMetadata) -> Monitor:
    assert meta.signal is not None  # open_model + check_model_classes: a 1-D vibration model
    return Monitor(host, port, topics, window=meta.signal.window, hop=meta.signal.hop,
                   sample_rate=meta.signal.sample_rate).start()


def _display(opts: DemoOptions, scenario: Scenario, console: Console) -> Display:
    live = console.is_terminal if opts.live is None else opts.live
    return LiveTable(scenario, console) if live else PlainLines(scenario, console)


def _intro(console: Console, opts: DemoOptions, model: Path, meta: ModelMetadata, host: str, port: int,
           topics: Topics) -> None:
    where = "built-in broker" if opts.broker is None else "broker"
    console.print(f"model {model.name}: {meta.model.name} version {meta.model.version}, "
                  f"classes {meta.classes}", highlight=False, markup=False)
    console.print(f"{where} {host}:{port}; watch it with: mosquitto_sub -h {host} -p {port} -v -t "
                  f"'{topics.base}/#'", highlight=False, markup=False)
    console.print(f"simulating {opts.duration_s:g} s in real time ...", highlight=False, markup=False)


def _save_svg(path: Path, scenario: Scenario, frame: Frame, result: DemoResult) -> None:
    """The last frame of the live table and the summary as an SVG picture, for docs and bug reports."""
    rec = Console(record=True, width=_LOG_WIDTH, force_terminal=True, file=io.StringIO())
    rec.print(live_table(scenario, frame))
    print_summary(rec, result.outcomes, result.problems)
    rec.save_svg(str(path), title="drsn-edge demo")


@dataclass(frozen=True)
class _Served:
    frame: Frame  # the last one drawn
    exit_code: int
    interrupted: bool


def _serve(daemon: Daemon, monitor: Monitor, scenario: Scenario, display: Display, started: float) -> _Served:
    """Run the daemon thread and redraw until it ends; Ctrl-C stops the daemon gracefully."""
    source = next((s for s in daemon.sources if isinstance(s, SyntheticSource)), None)
    thread = _DaemonThread(daemon)
    thread.start()

    def redraw() -> Frame:
        origin = monitor.signal_origin or started
        truth = source.truth() if source is not None else {}
        frame = Frame(min(time.time() - origin, scenario.duration_s), origin, monitor.snapshot(), truth)
        display.show(frame)
        return frame

    interrupted = False
    try:
        while thread.is_alive():
            thread.join(_REFRESH_S)
            redraw()
    except KeyboardInterrupt:
        interrupted = True
        daemon.request_stop()
        thread.join()
    finally:
        monitor.wait_for_status(STATUS_STOPPED, _STOPPED_WAIT_S)  # the last events precede `stopped`
        last = redraw()
        display.close()
    if thread.error is not None:
        raise thread.error
    return _Served(last, thread.exit_code, interrupted)
