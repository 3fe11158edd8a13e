"""The packaged models and their manifest (``drsn_edge/assets/models.json``).

Every packaged model ships as ``<name>.onnx`` (what the daemon runs) and ``<name>.pt`` (what
``drsn-edge train --init <name>`` and ``drsn-edge adapt`` start from). The manifest is written by
``drsn-edge models --write-manifest`` from the files themselves (the ONNX metadata and the
checkpoint), never by hand, so what ``drsn-edge models`` prints is what the files say: classes,
sample rate, window, the data each model saw and its measured figures. Figures measured outside
the training run (for example a leave-one-load-out study) are attached with ``--figures``
from the JSON file the measuring command wrote.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from drsn_edge.assets import ASSETS
from runtime.errors import ConfigError, DataError

MANIFEST = "models.json"
SCHEMA = "drsn-edge/packaged-models"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data_summary(training: dict[str, Any]) -> dict[str, Any]:
    """What data a model saw, in a few fields a person can read."""
    spec = training.get("data_spec") or {}
    data = training.get("data") or {}
    recs = [r for r in data.get("recordings", []) if r.get("role") != "test"]
    cfg = training.get("train_config") or {}
    out: dict[str, Any] = {
        "source": spec.get("source"),
        "select": spec.get("select") or {},
        "recordings": len(recs) or data.get("n_recordings"),
    }
    loads = sorted({r["load_hp"] for r in recs if r.get("load_hp") is not None})
    if loads:
        out["load_hp"] = loads
    if spec.get("source") == "synthetic":
        out["simulated"] = {
            k: spec.get(k) for k in ("synthetic_per_class", "synthetic_seconds", "synthetic_severity")
        }
    out["augment_noise"] = cfg.get("augment_noise")
    out["epochs"], out["seed"] = cfg.get("epochs"), cfg.get("seed")
    if training.get("parent"):
        out["parent"] = {k: training["parent"].get(k) for k in ("name", "file_sha256")}
    return out


def describe(onnx_path: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One manifest entry from an ONNX file and the checkpoint beside it."""
    from runtime.artifact import read_onnx_metadata

    meta = read_onnx_metadata(onnx_path)
    pt = onnx_path.with_suffix(".pt")
    metrics = dict(meta.training.get("metrics") or {})
    entry: dict[str, Any] = {
        "name": onnx_path.stem,
        "onnx": {"file": onnx_path.name, "bytes": onnx_path.stat().st_size, "sha256": _sha256(onnx_path)},
        "checkpoint": (
            {"file": pt.name, "bytes": pt.stat().st_size, "sha256": _sha256(pt)} if pt.is_file() else None
        ),
        "model": meta.model.name,
        "version": meta.model.version,
        "parameters": meta.model.num_parameters,
        "weights_sha256": meta.weights_sha256,
        "classes": list(meta.classes),
        "healthy_class": meta.healthy_class,
        "sample_rate": meta.signal.sample_rate if meta.signal else None,
        "window": meta.signal.window if meta.signal else None,
        "hop": meta.signal.hop if meta.signal else None,
        "trained_on": _data_summary(meta.training),
        "figures": {
            "test_acc": metrics.get("test_acc"),
            "test_macro_f1": metrics.get("test_macro_f1"),
            "test_n": metrics.get("test_n"),
            "test_split": (meta.training.get("data_spec") or {}).get("split"),
        },
    }
    if extra:
        entry["figures"].update(extra)
    return entry


def write_manifest(assets: Path = ASSETS, figures: dict[str, dict[str, Any]] | None = None) -> Path:
    """(Re)write the manifest from every ``*.onnx`` in ``assets``; keep figures attached earlier."""
    path = assets / MANIFEST
    old = {e["name"]: e for e in read_manifest(assets)["models"]} if path.is_file() else {}
    figures = figures or {}
    models = []
    for onnx in sorted(assets.glob("*.onnx")):
        if ".fp16" in onnx.name:
            continue
        entry = describe(onnx)
        kept = {
            k: v
            for k, v in (old.get(entry["name"], {}).get("figures") or {}).items()
            if k not in entry["figures"]
        }
        entry["figures"].update({**kept, **figures.get(entry["name"], {})})
        models.append(entry)
    doc = {"schema": SCHEMA, "version": 1, "models": models}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def read_manifest(assets: Path = ASSETS) -> dict[str, Any]:
    """The manifest as a dict; a missing or damaged file names the command that rewrites it."""
    path = assets / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; run `drsn-edge models --write-manifest`") from None
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path} is not readable JSON ({exc}); run `drsn-edge models --write-manifest`"
        ) from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("models"), list):
        raise DataError(f"{path} is not a {SCHEMA} manifest; run `drsn-edge models --write-manifest`")
    return doc


def load_figures(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{model name: {figure: value}}`` from a JSON file a measuring command wrote."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--figures {p}: not a readable JSON file ({exc})") from exc
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise ConfigError(f"--figures {p}: expected {{model name: {{figure: value}}}}")
    return doc
