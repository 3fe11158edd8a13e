"""Tables, figures and the generated Markdown page of the noise study.

Per protocol: ``noise_<protocol>.csv/.md/.png`` (accuracy mean ± std over seeds, one column per
model, written by :func:`drsn_edge.training.sweep.write_tables`). Across protocols:
``noise_summary.csv/.md`` (each model's mean over every point and over the lowest SNRs, and
DRSN-CW's margin over each baseline), ``thresholds.csv`` and ``thresholds_<protocol>.png``, and
``noise_study.md`` / ``noise_study.json`` that put them together with the data sizes, the
settings and the measured runtime.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.study import thresholds as thr
from drsn_edge.study.noise import NoiseStudy, ProtocolResult
from drsn_edge.training.metrics import seed_std
from drsn_edge.training.sweep import aggregate, write_tables

#: SNRs at or below this are "low" in the summary (the issue's -10..-6 dB band).
LOW_BAND_DB = -6.0
PROTOCOL_TITLES = {
    "train_test": "noise in train and test (the paper's protocol)",
    "test_only": "trained on clean data, tested on noisy data",
}
VALUE_KEYS = ("accuracy", "macro_f1", "fp16_accuracy", "fp16_agreement")
REFERENCE = "drsn_cw_paper"


def write_report(results: dict[str, ProtocolResult], study: NoiseStudy, wall_s: float) -> dict[str, Path]:
    """Write every table, figure and the generated page; return their paths by name."""
    out = study.out_dir
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    aggs: dict[str, list[dict[str, Any]]] = {}
    for protocol, res in results.items():
        if not res.rows:  # nothing run yet under this protocol (a --report-only of a partial grid)
            continue
        keys = [k for k in VALUE_KEYS if any(k in r for r in res.rows)]
        aggs[protocol] = aggregate(res.rows, keys)
        written = write_tables(
            aggs[protocol],
            out,
            stem=f"noise_{protocol}",
            title=f"CWRU accuracy against SNR: {PROTOCOL_TITLES[protocol]}"
            if study.data.source == "cwru"
            else PROTOCOL_TITLES[protocol],
        )
        paths.update({f"{protocol}_{k}": v for k, v in written.items()})
    paths.update(_write_thresholds(results, out))
    summary = summarise(aggs, results)
    paths["summary_csv"] = thr.write_csv(summary, out / "noise_summary.csv")
    paths["summary_md"] = out / "noise_summary.md"
    paths["summary_md"].write_text(summary_markdown(summary))
    meta = study_metadata(results, study, wall_s)
    paths["json"] = out / "noise_study.json"
    paths["json"].write_text(json.dumps(meta, indent=1))
    paths["md"] = out / "noise_study.md"
    paths["md"].write_text(study_page(aggs, results, summary, meta, out))
    return paths


def _write_thresholds(results: dict[str, ProtocolResult], out: Path) -> dict[str, Path]:
    records = [rec for p, res in results.items() for rec in thr.flatten(res.rows, p)]
    if not records:
        return {}
    agg = thr.aggregate(records)
    paths = {"thresholds_csv": thr.write_csv(agg, out / "thresholds.csv")}
    for protocol in results:
        png = thr.plot_thresholds(agg, out / f"thresholds_{protocol}.png", protocol)
        if png is not None:
            paths[f"thresholds_{protocol}_png"] = png
    return paths


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


def study_metadata(results: dict[str, ProtocolResult], study: NoiseStudy, wall_s: float) -> dict[str, Any]:
    """Settings, data sizes and runtime, for the page and for anyone re-running the study."""
    import torch

    sizes = {
        k: sorted({int(r[k]) for res in results.values() for r in res.rows if r.get(k) is not None})
        for k in ("n_train", "n_val", "n_test")
    }
    runs = sum(res.runs for res in results.values())
    seconds = sum(res.seconds for res in results.values())
    return {
        "grid": {
            "name": study.grid.name,
            "models": list(study.grid.models),
            "kinds": list(study.grid.kinds),
            "snrs": list(study.grid.snrs),
            "seeds": list(study.grid.seeds),
            "low_snr_seeds": list(study.grid.low_snr_seeds),
            "epochs": study.grid.epochs,
            "protocols": list(study.grid.protocols),
        },
        "settings": study.settings(),
        "windows": sizes,
        "runtime": {
            "training_runs": runs,
            "planned_runs": study.grid.runs(),
            "run_seconds_total": seconds,
            "run_seconds_mean": seconds / runs if runs else None,
            "this_invocation_wall_s": wall_s,
            "torch_threads": study.train.threads or torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        },
        "work_dir": str(study.work_dir),
        "command": study.command,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def study_page(
    aggs: dict[str, list[dict[str, Any]]],
    results: dict[str, ProtocolResult],
    summary: list[dict[str, Any]],
    meta: dict[str, Any],
    out: Path,
) -> str:
    """The generated Markdown page: settings, runtime, goals, tables and figures."""
    parts = [
        f"# Noise study: {meta['grid']['name']} grid (generated)\n",
        f"Command: `{meta['command']}`  ",
        f"Generated {meta['generated']}; work directory `{meta['work_dir']}`.\n",
        *settings_lines(meta),
        "",
        "## Summary\n",
        summary_markdown(summary),
        "\n".join(goals(summary)) + "\n",
    ]
    for protocol in aggs:
        parts += [
            f"\n## {PROTOCOL_TITLES[protocol].capitalize()}\n",
            f"![accuracy against SNR](noise_{protocol}.png)\n",
            "Test accuracy (%), mean ± std over seeds:\n",
            (out / f"noise_{protocol}.md").read_text(),
        ]
        fp16 = fp16_markdown(results[protocol].rows)
        if fp16:
            parts += [
                f"\nFP16 ONNX ({REFERENCE}), scored with ONNX Runtime on the same test windows:\n",
                fp16,
            ]
        if (out / f"thresholds_{protocol}.png").exists():
            parts += [
                "\nLearnt thresholds per block (tau / mean|x| and the share of values set to zero), "
                "data in `thresholds.csv`:\n",
                f"![thresholds](thresholds_{protocol}.png)\n",
            ]
    return "\n".join(parts)


def settings_lines(meta: dict[str, Any]) -> list[str]:
    """Bullet lines: models, noise, seeds, window counts, training settings and runtime."""
    g, rt, w = meta["grid"], meta["runtime"], meta["windows"]
    train = meta["settings"]["train"]
    lr = train["lr"] or ("0.1" if train["optimizer"] == "sgd" else "1e-3")
    snrs = ", ".join(f"{s:g}" for s in g["snrs"])
    return [
        f"- models: {', '.join(g['models'])}",
        f"- noise: {', '.join(g['kinds'])} at SNR {snrs} dB, added once per recording",
        f"- seeds: {g['seeds']} (below -4 dB: {g['low_snr_seeds']}); protocols: {', '.join(g['protocols'])}",
        f"- windows per run: train {_join(w['n_train'])}, validation {_join(w['n_val'])}, "
        f"test n = {_join(w['n_test'])}",
        f"- training: {g['epochs']} epochs, {train['optimizer']} lr {lr}, batch {train['batch_size']}, "
        f"weight decay {train['weight_decay']}, best epoch chosen on validation",
        f"- runtime: {_runs_done(rt)}, {rt['run_seconds_total'] / 60:.1f} min of run time "
        f"({_num(rt['run_seconds_mean'])} s per run) on {rt['torch_threads']} torch thread(s), "
        f"{rt['cpu_count']} CPU cores; this invocation {rt['this_invocation_wall_s'] / 60:.1f} min",
    ]


def _runs_done(rt: dict[str, Any]) -> str:
    done, planned = rt["training_runs"], rt.get("planned_runs", rt["training_runs"])
    return (
        f"{done} training runs" if done >= planned else f"**partial: {done} of {planned} training runs done**"
    )


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


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def _join(values: list[int]) -> str:
    return "/".join(map(str, values)) if values else "?"
