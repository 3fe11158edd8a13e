"""Load-transfer figures of the packaged CWRU models, for `drsn-edge models` and the README.

A packaged model trained on some CWRU loads is scored on the whole recordings of every load it
never saw (the nine fault classes; no normal baseline exists at 1-3 HP). A model trained on all
four loads has no unseen load left, so it carries the leave-one-load-out figure of its recipe
(the same network, epochs and hops, trained on three loads and tested on the fourth) from the
study's table. The result is a JSON file ``{model name: {figure: value}}`` that
``drsn-edge models --write-manifest --figures FILE`` attaches to the manifest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FAULTS = ("ball", "inner", "outer")
HOP = 1024


def unseen_load_accuracy(ckpt_path: Path, data: str, loads: list[int]) -> dict[str, Any]:
    """Accuracy (and window count) of a checkpoint on each of ``loads``, whole fault recordings."""
    from drsn_edge.data.cwru import load_cwru
    from drsn_edge.data.windows import make_windows
    from drsn_edge.training.checkpoint import load_checkpoint
    from drsn_edge.training.trainer import predict_logits
    from runtime.signals.normalize import normalize_windows

    ckpt = load_checkpoint(ckpt_path)
    meta = ckpt.metadata
    assert meta.signal is not None
    model = ckpt.build_model()
    out: dict[str, Any] = {}
    for load in loads:
        recs = load_cwru(
            data, sample_rate=meta.signal.sample_rate, select={"load_hp": load, "fault": list(FAULTS)}
        )
        xs, ys = [], []
        for r in recs:
            x, _ = make_windows(r.signal, meta.signal.window, HOP)
            xs.append(normalize_windows(x, meta.normalization))
            ys.append(np.full(len(x), meta.classes.index(r.label), np.int64))
        x, y = np.concatenate(xs), np.concatenate(ys)
        pred = predict_logits(model, x).argmax(1)
        out[f"acc_{load}hp"] = round(float((pred == y).mean()), 4)
        out[f"n_{load}hp"] = len(y)
        log.info(
            "%s on %d HP: %.4f (n = %d windows, %d recordings)",
            ckpt_path.name,
            load,
            out[f"acc_{load}hp"],
            len(y),
            len(recs),
        )
    return out


def packaged_figures(data: str, lolo_figures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Figures per packaged CWRU model: unseen-load accuracy, or its recipe's leave-one-load-out mean."""
    from drsn_edge.assets import ASSETS
    from drsn_edge.training.packaged import read_manifest

    figures: dict[str, dict[str, Any]] = {}
    for entry in read_manifest()["models"]:
        trained = entry.get("trained_on") or {}
        if trained.get("source") != "cwru" or not entry.get("checkpoint"):
            continue
        seen = set(trained.get("load_hp") or [])
        unseen = [x for x in (0, 1, 2, 3) if x not in seen]
        name = entry["name"]
        if unseen:
            fig = unseen_load_accuracy(ASSETS / entry["checkpoint"]["file"], data, unseen)
            figures[name] = {
                "unseen_loads": ", ".join(
                    f"{x} HP {100 * fig[f'acc_{x}hp']:.1f} % (n={fig[f'n_{x}hp']})" for x in unseen
                )
                + " (9 fault classes, whole recordings, hop 1024)"
            }
        recipe = f"{entry['model']}{'+aug' if trained.get('augment_noise') else ''}"
        if not unseen and recipe in lolo_figures and (lolo_figures[recipe].get("lolo_seeds") or 0) > 1:
            lo = lolo_figures[recipe]
            figures[name] = {
                "leave_one_load_out": f"{100 * lo['lolo_mean']:.1f} ± {100 * lo['lolo_std']:.1f} % "
                f"over {lo['lolo_seeds']} seeds (the recipe trained on three loads, tested on the fourth; "
                "docs/generalization.md)"
            }
    return figures
