"""The noise study's figures: per-model summaries, goals and Markdown tables.

Per protocol, ``noise_<protocol>.csv/.md/.png`` hold accuracy mean ± std over seeds, one column
per model (written by :func:`drsn_edge.training.sweep.write_tables`); across protocols,
``noise_summary.csv/.md`` hold each model's mean over every point and over the lowest SNRs, and
DRSN-CW's margin over each baseline. The files and the generated page are written by
:mod:`drsn_edge.study.report_page`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drsn_edge.study.noise import ProtocolResult
from drsn_edge.training.metrics import seed_std

#: SNRs at or below this are "low" in the summary (the issue's -10..-6 dB band).
LOW_BAND_DB = -6.0
PROTOCOL_TITLES = {
    "train_test": "noise in train and test (the paper's protocol)",
    "test_only": "trained on clean data, tested on noisy data",
}
VALUE_KEYS = ("accuracy", "macro_f1", "fp16_accuracy", "fp16_agreement")
REFERENCE = "drsn_cw_paper"


def summarise(
    aggs: dict[str, list[dict[str, Any]]], results: dict[str, ProtocolResult]
) -> list[dict[str, Any]]:
    """Per (protocol, model): mean accuracy over the points and over the low-SNR band, and margins.

    Means are taken over the (noise, SNR) points every model of the protocol has, so a partial
    grid (a study still running) never compares a model's easy points with another's hard ones.
    The ``*_std`` values are the spread over seeds of each seed's own mean (seeds that ran every
    point of the band), and the margins' spread is paired: DRSN-CW seed s against baseline seed s,
    which share their noise draws and splits, so the spread is that of the difference itself.
    """
    rows = []
    for protocol, agg in aggs.items():
        clean = _clean_accuracy(results[protocol].clean_rows)
        raw = results[protocol].rows
        models = sorted({r["model"] for r in agg})
        common = set.intersection(
            *({(r["noise"], r["snr_db"]) for r in agg if r["model"] == m} for m in models)
        )
        low = {p for p in common if p[1] <= LOW_BAND_DB}
        shared = [r for r in agg if (r["noise"], r["snr_db"]) in common]
        means = {m: _means(shared, m) for m in models}
        per_seed = {m: (_seed_means(raw, m, common), _seed_means(raw, m, low)) for m in models}
        point_acc = {(r["model"], r["noise"], r["snr_db"]): r["accuracy"] for r in shared}
        ref = means.get(REFERENCE)
        for model, (mean_all, mean_low, fp16) in means.items():
            seeds_all, seeds_low = per_seed[model]
            row: dict[str, Any] = {
                "protocol": protocol,
                "model": model,
                "points": len(common),
                "seeds": len(seeds_all),
                "seeds_low_snr": len(seeds_low),
                "mean_accuracy": mean_all,
                "mean_accuracy_std": _spread(list(seeds_all.values())),
                "mean_accuracy_low_snr": mean_low,
                "mean_accuracy_low_snr_std": _spread(list(seeds_low.values())),
            }
            if fp16 is not None:
                row["mean_fp16_accuracy"] = fp16
                mine = [r for r in raw if r["model"] == model]
                row["fp16_runs"] = sum("fp16_accuracy" in r for r in mine)
                row["runs"] = len(mine)
            if model in clean:
                row["clean_accuracy"] = clean[model]
            if ref is not None and model != REFERENCE:
                ref_all, ref_low = per_seed[REFERENCE]
                row["drsn_cw_margin"] = _difference(ref[0], mean_all)
                row["drsn_cw_margin_std"] = _spread(_paired(ref_all, seeds_all))
                row["drsn_cw_margin_low_snr"] = _difference(ref[1], mean_low)
                row["drsn_cw_margin_low_snr_std"] = _spread(_paired(ref_low, seeds_low))
                row["drsn_cw_points_won"] = sum(
                    point_acc[(REFERENCE, p[0], p[1])] >= point_acc[(model, p[0], p[1])] for p in common
                )
            rows.append(row)
    return rows


def _seed_means(
    raw: list[dict[str, Any]], model: str, points: set[tuple[str, float]]
) -> dict[int, float]:
    """Each seed's mean accuracy over ``points``, for the seeds that ran every one of them."""
    by_seed: dict[int, dict[tuple[str, float], float]] = {}
    for r in raw:
        key = (r["noise"], float(r["snr_db"]))
        if r["model"] == model and key in points:
            by_seed.setdefault(int(r["seed"]), {})[key] = float(r["accuracy"])
    if not points:
        return {}
    return {s: float(np.mean(list(v.values()))) for s, v in sorted(by_seed.items()) if len(v) == len(points)}


def _paired(ref: dict[int, float], other: dict[int, float]) -> list[float]:
    return [ref[s] - other[s] for s in sorted(set(ref) & set(other))]


def _spread(values: list[float]) -> float | None:
    """Seed spread, or None when fewer than two seeds make it meaningless."""
    return seed_std(values) if len(values) >= 2 else None


def _means(agg: list[dict[str, Any]], model: str) -> tuple[float | None, float | None, float | None]:
    mine = [r for r in agg if r["model"] == model]
    everything = [r["accuracy"] for r in mine]
    low = [r["accuracy"] for r in mine if r["snr_db"] <= LOW_BAND_DB]
    fp16 = [r["fp16_accuracy"] for r in mine if "fp16_accuracy" in r]
    return _mean(everything), _mean(low), _mean(fp16)


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _clean_accuracy(clean_rows: list[dict[str, Any]]) -> dict[str, float]:
    by_model: dict[str, list[float]] = {}
    for r in clean_rows:
        if "accuracy" in r:
            by_model.setdefault(r["model"], []).append(float(r["accuracy"]))
    return {m: float(np.mean(v)) for m, v in by_model.items()}


def goals(summary: list[dict[str, Any]], protocol: str = "train_test") -> list[str]:
    """The issue's two goals for DRSN-CW, each stated as met or not met with the figures.

    Baselines are the networks without shrinkage (ConvNet, ResNet, WDCNN); DRSN-CS, the other
    DRSN variant, is compared on its own line.
    """
    rows = {r["model"]: r for r in summary if r["protocol"] == protocol and r["mean_accuracy"] is not None}
    if REFERENCE not in rows or len(rows) < 2:
        return []
    ref = rows[REFERENCE]
    lines = []
    baselines = {m: r for m, r in rows.items() if not m.startswith("drsn")}
    if baselines:
        best = max(baselines.values(), key=lambda r: r["mean_accuracy"])
        verdict = "met" if ref["mean_accuracy"] >= best["mean_accuracy"] else "not met"
        lines.append(
            f"- DRSN-CW mean accuracy {_pct(ref['mean_accuracy'], ref.get('mean_accuracy_std'))} vs the "
            f"best baseline ({best['model']}) {_pct(best['mean_accuracy'], best.get('mean_accuracy_std'))} "
            f"over {ref['points']} points: **{verdict}**"
        )
    resnet = rows.get("resnet_paper")
    if resnet and ref["mean_accuracy_low_snr"] is not None and resnet["mean_accuracy_low_snr"] is not None:
        margin = 100 * (ref["mean_accuracy_low_snr"] - resnet["mean_accuracy_low_snr"])
        spread = resnet.get("drsn_cw_margin_low_snr_std")
        paired = "" if spread is None else f" ± {100 * spread:.2f} over seeds, paired"
        lines.append(
            f"- DRSN-CW at SNR <= {LOW_BAND_DB:g} dB {_pct(ref['mean_accuracy_low_snr'])} vs ResNet "
            f"{_pct(resnet['mean_accuracy_low_snr'])} ({margin:+.2f} points{paired}; goal +3): "
            f"**{'met' if margin >= 3 else 'not met'}**"
        )
    cs = rows.get("drsn_cs_paper")
    if cs:
        lines.append(f"- DRSN-CS (the channel-shared variant): mean accuracy {_pct(cs['mean_accuracy'])}")
    return lines


def summary_markdown(summary: list[dict[str, Any]]) -> str:
    """The summary table; ``±`` is the std over seeds (see :func:`summarise`)."""
    head = (
        "| protocol | model | points | seeds | mean acc. | mean acc. SNR <= -6 dB | clean acc. | FP16 mean | "
        "DRSN-CW margin | DRSN-CW margin <= -6 dB | points DRSN-CW >= |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in summary:
        won = "" if r.get("drsn_cw_points_won") is None else f"{r['drsn_cw_points_won']}/{r['points']}"
        lines.append(
            f"| {r['protocol']} | {r['model']} | {r['points']} | {_seeds(r)} | "
            f"{_pct(r['mean_accuracy'], r.get('mean_accuracy_std'))} | "
            f"{_pct(r.get('mean_accuracy_low_snr'), r.get('mean_accuracy_low_snr_std'))} | "
            f"{_pct(r.get('clean_accuracy'))} | {_fp16_cell(r)} | "
            f"{_pts(r.get('drsn_cw_margin'), r.get('drsn_cw_margin_std'))} | "
            f"{_pts(r.get('drsn_cw_margin_low_snr'), r.get('drsn_cw_margin_low_snr_std'))} | "
            f"{won} |"
        )
    return "\n".join(lines) + "\n"


_FP16_KEYS = ("accuracy", "fp16_accuracy", "fp16_agreement")


def fp16_markdown(raw: list[dict[str, Any]], model: str = REFERENCE) -> str:
    """FP32 (PyTorch) against FP16 (ONNX Runtime) accuracy of ``model`` at every point.

    Paired: both means are over the runs whose FP16 export passed its gates, and the table says
    how many runs that is, so a failed export can neither hide nor skew the comparison.
    """
    mine = [r for r in raw if r["model"] == model]
    points = sorted({(r["noise"], float(r["snr_db"])) for r in mine})
    lines = [
        "| noise | SNR (dB) | runs with FP16 | FP32 PyTorch | FP16 ONNX Runtime | argmax agreement |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    any_fp16 = False
    for noise, snr in points:
        runs = [r for r in mine if r["noise"] == noise and float(r["snr_db"]) == snr]
        ok = [r for r in runs if "fp16_accuracy" in r]
        any_fp16 = any_fp16 or bool(ok)
        fp32, fp16, agree = (_mean([float(r[k]) for r in ok if k in r]) for k in _FP16_KEYS)
        lines.append(
            f"| {noise} | {snr:g} | {len(ok)}/{len(runs)} | {_pct(fp32)} | {_pct(fp16)} | {_pct(agree)} |"
        )
    return "\n".join(lines) + "\n" if any_fp16 else ""


def _fp16_cell(r: dict[str, Any]) -> str:
    """The FP16 mean, with the share of runs behind it when some FP16 exports failed their gates."""
    done, total = r.get("fp16_runs", 0), r.get("runs", 0)
    suffix = f" ({done}/{total} runs)" if done < total else ""
    return _pct(r.get("mean_fp16_accuracy")) + suffix


def _seeds(r: dict[str, Any]) -> str:
    """Seeds behind the means: '3 (5)' when the low-SNR band has more."""
    n, low = r.get("seeds"), r.get("seeds_low_snr")
    return "" if n is None else (f"{n} ({low})" if low and low != n else str(n))


def _pct(v: float | None, std: float | None = None) -> str:
    if v is None:
        return ""
    return f"{100 * v:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def _pts(v: float | None, std: float | None = None) -> str:
    if v is None:
        return ""
    return f"{100 * v:+.2f}" + ("" if std is None else f" ± {100 * std:.2f}")
