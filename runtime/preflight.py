"""Everything `run` would refuse, found before it starts: `validate-config` runs the same checks.

The systemd unit runs ``drsn-edge validate-config`` as ``ExecStartPre``; a config it passes must
not then crash ``run`` (a raw traceback for an outbox path whose parent is a file, a missing TLS
CA file found at the first connect, ``backend: tensorrt`` on a device without TensorRT, a model
whose graph disagrees with its metadata). Each check returns messages that name the problem and
the fix; the model check loads every model with the configured backend and runs its golden
windows, exactly as ``run`` does, but opens no socket.
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.backends import create_backend, open_model, require, resolve_kind
from runtime.config import DaemonConfig
from runtime.errors import ConfigError, DrsnEdgeError
from runtime.pipeline import model_path_for


def outbox_problem(path: Path) -> str | None:
    """Why the outbox cannot be created or written at ``path``, or None."""
    if path.is_dir():
        return f"mqtt.outbox.path {path} is a directory; name a file in it, e.g. {path / 'outbox.sqlite3'}"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return (f"mqtt.outbox.path {path}: {parent} is a file, not a directory; move the outbox "
                        "elsewhere or remove that file")
            if not os.access(parent, os.W_OK | os.X_OK):
                return (f"mqtt.outbox.path {path}: no write permission in {parent}; give the daemon's user "
                        "write access (e.g. StateDirectory= in the systemd unit) or choose another path")
            break
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"mqtt.outbox.path {path} is not readable and writable by this user; fix its permissions"
    return None


def ensure_outbox_dir(path: Path) -> None:
    """Create the outbox's folder; a ConfigError naming the fix instead of a raw OSError."""
    problem = outbox_problem(path)
    if problem is None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return
        except OSError as exc:
            problem = f"mqtt.outbox.path {path}: cannot create {path.parent} ({exc.strerror}); choose a " \
                      "writable path"
    raise ConfigError(problem)


def tls_problems(cfg: DaemonConfig) -> list[str]:
    """TLS files that do not exist or cannot be read (the broker link and MQTT raw sources)."""
    files: list[tuple[str, Path | None]] = []
    tls = cfg.mqtt.tls
    if tls.enabled:
        files += [("mqtt.tls.ca_file", tls.ca_file), ("mqtt.tls.cert_file", tls.cert_file),
                  ("mqtt.tls.key_file", tls.key_file)]
    for i, src in enumerate(cfg.sources):
        if getattr(src, "tls", False) is True:
            files += [(f"sources[{i}].{name}", getattr(src, name, None))
                      for name in ("ca_certs", "certfile", "keyfile")]
    problems = []
    for where, path in files:
        if path is None:
            continue
        if not path.is_file():
            problems.append(f"{where} {path} does not exist; give the path of the PEM file")
        elif not os.access(path, os.R_OK):
            problems.append(f"{where} {path} is not readable by this user; fix its permissions")
    return problems


def model_problems(cfg: DaemonConfig, sensors: list[str]) -> list[str]:
    """Load each model the sensors use with the configured backend and run its golden gate, as run does."""
    problems = []
    paths = sorted({model_path_for(sid, cfg) for sid in sensors}) or [cfg.model]
    for path in paths:
        try:
            meta = open_model(path)
        except DrsnEdgeError:
            continue  # a missing or unreadable file is reported by runtime.pipeline.check_plan
        try:
            require(resolve_kind(path, cfg.backend.type))
            backend = create_backend(path, config=cfg.backend, metadata=meta)
            backend.load()  # graph vs metadata, golden windows
            backend.close()
        except DrsnEdgeError as exc:
            problems.append(f"{path.name}: {exc}")
    return problems


def preflight(cfg: DaemonConfig, sensors: list[str], *, load_models: bool = True) -> list[str]:
    """Every check of ``run`` that opens no socket; one message per problem."""
    problems = []
    outbox = outbox_problem(cfg.mqtt.outbox.path)
    if outbox is not None:
        problems.append(outbox)
    problems += tls_problems(cfg)
    if load_models:
        problems += model_problems(cfg, sensors)
    return problems
