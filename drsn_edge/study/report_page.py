"""Writing the noise study: tables and figures per protocol, the summary, the thresholds, and
``noise_study.md`` / ``noise_study.json`` with the data sizes, the settings and the measured runtime.

The figures and tables themselves are computed in :mod:`drsn_edge.study.report`.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from drsn_edge.study import thresholds as thr
from drsn_edge.study.noise import NoiseStudy, ProtocolResult
from drsn_edge.study.report import (
    PROTOCOL_TITLES,
    REFERENCE,
    VALUE_KEYS,
    fp16_markdown,
    goals,
    summarise,
    summary_markdown,
)
from drsn_edge.training.sweep import aggregate, write_tables


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


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def _join(values: list[int]) -> str:
    return "/".join(map(str, values)) if values else "?"
