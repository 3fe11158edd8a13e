"""What the learnt soft thresholds do as the noise rises: per-block statistics, CSV and PNG.

A DRSN's claim is that its threshold sub-networks raise tau where a window carries more noise.
For every shrinkage layer (block), on the test windows of a run, this module measures

* ``tau_ratio``: tau / mean|x|, the attention scale alpha in (0, 1). For CW it is averaged over
  channels; for CS, mean|x| is the mean over channels, the quantity tau is scaled from;
* ``zero_fraction``: the share of feature values the soft threshold sets to exactly zero, i.e.
  how much of the block's residual the network decides is noise;
* ``tau`` and ``abs_mean``: the raw magnitudes, to tell "larger tau" from "larger features".

Rows from many runs are averaged over seeds and plotted against SNR, one line per block.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.training.metrics import seed_std

log = logging.getLogger(__name__)

STAT_KEYS: tuple[str, ...] = ("tau_ratio", "zero_fraction", "tau", "abs_mean")
_STAGE = re.compile(r"stages\.(\d+)\.")


def block_stats(model: Any, x: np.ndarray, batch_size: int = 256) -> list[dict[str, Any]]:
    """Per-block threshold statistics of ``model`` on the normalised windows ``x`` (eval mode).

    Returns one dict per shrinkage layer in forward order (empty for models without shrinkage).
    """
    import torch

    from drsn_edge.models import recording

    names = _layer_names(model)
    if not names:
        return []
    counters = (*STAT_KEYS, "ratios", "zeros", "values", "windows")
    sums = {id(layer): dict.fromkeys(counters, 0.0) for layer in names}

    def count_zeros(layer: Any, _inputs: Any, output: torch.Tensor) -> None:
        acc = sums[id(layer)]
        acc["zeros"] += float((output == 0).sum())
        acc["values"] += float(output.numel())

    model.eval()
    handles = [layer.register_forward_hook(count_zeros) for layer in names]
    try:
        with recording(model) as layers, torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32)))
                for layer in layers:
                    _accumulate(sums[id(layer)], layer)
    finally:
        for h in handles:
            h.remove()
    return [_finish(i, names[layer], layer, sums[id(layer)]) for i, layer in enumerate(names, start=1)]


def _layer_names(model: Any) -> dict[Any, str]:
    from drsn_edge.models import Shrinkage

    return {m: name for name, m in model.named_modules() if isinstance(m, Shrinkage)}


def _accumulate(acc: dict[str, float], layer: Any) -> None:
    import torch

    tau, abs_mean = layer.last_tau, layer.last_abs_mean
    scale = abs_mean if layer.mode == "cw" else abs_mean.mean(dim=1, keepdim=True)
    valid = scale > 0  # a channel that is exactly zero everywhere has no meaningful ratio
    acc["tau_ratio"] += float(torch.where(valid, tau / scale.clamp_min(1e-30), 0.0).sum())
    acc["ratios"] += float(valid.sum())
    acc["tau"] += float(tau.mean(dim=1).sum())
    acc["abs_mean"] += float(abs_mean.mean(dim=1).sum())
    acc["windows"] += float(tau.shape[0])


def _finish(block: int, name: str, layer: Any, acc: dict[str, float]) -> dict[str, Any]:
    n = max(acc["windows"], 1.0)
    match = _STAGE.search(name + ".")
    return {
        "block": block,
        "stage": int(match.group(1)) + 1 if match else 0,
        "layer": name,
        "mode": layer.mode,
        "channels": layer.channels,
        "tau_ratio": acc["tau_ratio"] / max(acc["ratios"], 1.0),
        "zero_fraction": acc["zeros"] / max(acc["values"], 1.0),
        "tau": acc["tau"] / n,
        "abs_mean": acc["abs_mean"] / n,
    }


def flatten(rows: Iterable[dict[str, Any]], protocol: str) -> list[dict[str, Any]]:
    """One record per (run, block) from sweep rows that carry a ``thresholds`` list."""
    out = []
    for r in rows:
        for b in r.get("thresholds") or []:
            out.append(
                {
                    "protocol": protocol,
                    "model": r["model"],
                    "noise": r["noise"],
                    "snr_db": float(r["snr_db"]),
                    "seed": int(r["seed"]),
                    **b,
                }
            )
    return out


def aggregate(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over seeds for each (protocol, model, noise, SNR, block)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        key = (r["protocol"], r["model"], r["noise"], r["snr_db"], r["block"])
        groups.setdefault(key, []).append(r)
    out = []
    for (protocol, model, noise, snr, block), rs in sorted(groups.items()):
        row: dict[str, Any] = {
            "protocol": protocol,
            "model": model,
            "noise": noise,
            "snr_db": snr,
            "block": block,
            "stage": rs[0]["stage"],
            "mode": rs[0]["mode"],
            "channels": rs[0]["channels"],
            "seeds": len(rs),
        }
        for k in STAT_KEYS:
            vals = np.array([float(r[k]) for r in rs])
            row[k] = float(vals.mean())
            row[f"{k}_std"] = seed_std(vals)
        out.append(row)
    return out


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_thresholds(agg: Sequence[dict[str, Any]], path: Path, protocol: str) -> Path | None:
    """Rows: (model, statistic); columns: noise kinds; one line per block, dark = early, light = deep."""
    rows = [r for r in agg if r["protocol"] == protocol]
    if not rows:
        return None
    plt = _pyplot()
    models = sorted({r["model"] for r in rows})
    kinds = sorted({r["noise"] for r in rows})
    panels = [(m, stat) for m in models for stat in ("tau_ratio", "zero_fraction")]
    fig, axes = plt.subplots(
        len(panels), len(kinds), figsize=(4.0 * len(kinds), 2.9 * len(panels)), dpi=110, squeeze=False
    )
    for (model, stat), ax_row in zip(panels, axes, strict=True):
        blocks = sorted({r["block"] for r in rows if r["model"] == model})
        colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, max(len(blocks), 1)))
        for ax, kind in zip(ax_row, kinds, strict=True):
            for colour, block in zip(colours, blocks, strict=True):
                pts = sorted(
                    (r for r in rows if r["model"] == model and r["noise"] == kind and r["block"] == block),
                    key=lambda r: r["snr_db"],
                )
                if pts:
                    ax.plot(
                        [p["snr_db"] for p in pts],
                        [p[stat] for p in pts],
                        marker="o",
                        ms=2.5,
                        color=colour,
                        label=f"block {block} (stage {pts[0]['stage']})",
                    )
            ax.set_title(f"{model}, {kind}", fontsize=9)
            ax.set_xlabel("SNR (dB)")
            ax.set_ylabel("tau / mean|x|" if stat == "tau_ratio" else "fraction set to zero")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, ncol=2, loc="best")
    title = "noise in train and test" if protocol == "train_test" else "trained clean, tested noisy"
    fig.suptitle(f"learnt soft thresholds per block\n({title})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
