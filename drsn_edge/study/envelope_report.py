"""Tables (CSV + Markdown) and figures (PNG) of the envelope study, counts beside every rate."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.study.envelope_plot import _pyplot

METHODS = ("drsn", "envelope", "combined", "combined_first")
LABELS = {"drsn": "DRSN", "envelope": "envelope", "combined": "combined",
          "combined_first": "combined, first rule"}


def write_envelope_report(
    study: Any,
    records: list[dict[str, Any]],
    grid: list[dict[str, Any]],
    sim: list[dict[str, Any]],
    wall_s: float,
    selection: list[dict[str, Any]] | None = None,
) -> dict[str, Path]:
    out = Path(study.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "records_csv": _csv(out / "cwru_records.csv", records),
        "grid_csv": _csv(out / "grid_segments.csv.gz", grid),
        "simulator_csv": _csv(out / "simulator.csv", sim),
    }
    held_out = [r for r in grid if r["seed"] != 0 or r["snr_db"] == "clean"]
    grid_table = grid_summary(held_out)
    paths["grid_summary_csv"] = _csv(out / "grid.csv", grid_table)
    paths["selection_csv"] = _csv(out / "rule_selection.csv", selection or [])
    paths["grid_png"] = plot_grid(grid_table, out / "grid.png")
    paths["records_png"] = plot_records(records, out / "cwru_records.png")
    md = [
        f"# Envelope study\n\nCommand: `{study.command}`  \nWall time: {wall_s:.0f} s\n",
        records_markdown(records),
        selection_markdown(selection or []),
        grid_markdown(grid_table, held_out),
        simulator_markdown(sim),
    ]
    paths["summary_md"] = out / "summary.md"
    paths["summary_md"].write_text("\n".join(md))
    return paths


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as CSV; a ``.gz`` name is compressed (the per-segment table is about 1.3 MB raw)."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        if rows:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return path


def _rate(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f} %)" if n else "0/0"


def records_markdown(rows: list[dict[str, Any]]) -> str:
    """Per fault type and load: records named correctly, grades, segments named correctly."""
    lines = [
        "## 1. CWRU fault records, envelope alone (whole record, and 0.68 s segments)\n",
        "| fault | load (HP) | records correct | grades Y/P/N | segments correct |",
        "|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["fault"], r["load_hp"])].append(r)
        groups[(r["fault"], "all")].append(r)
    for (fault, load), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        grades = "/".join(str(sum(r["grade"] == g for r in rs)) for g in "YPN")
        seg_k, seg_n = sum(r["segments_correct"] for r in rs), sum(r["segments"] for r in rs)
        lines.append(
            f"| {fault} | {load} | {_rate(sum(r['correct'] for r in rs), len(rs))} | {grades} | "
            f"{_rate(seg_k, seg_n)} |"
        )
    races = [r for r in rows if r["fault"] in ("inner", "outer")]
    lines.append(
        f"\nInner and outer race together, 0-3 HP: {_rate(sum(r['correct'] for r in races), len(races))} "
        "records named correctly.\n"
    )
    lines += [
        "| file | fault | HP | rpm | verdict | strength | grade | band Hz | true freq Hz | harmonics | "
        "prominence dB | segments correct |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['file']} | {r['fault']} | {r['load_hp']} | {r['rpm']:g} | {r['verdict']} | "
            f"{r['strength']} | {r['grade']} | {r['band_hz']} | {r['true_freq_hz']} | "
            f"{r['harmonics_found']} | {r['prominence_db']} | {r['segments_correct']}/{r['segments']} |"
        )
    return "\n".join(lines) + "\n"


def grid_summary(grid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (test set, noise, SNR): correct/n per method pooled over seeds, and the spread over seeds."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in grid:
        groups[(r["test_set"], r["noise"], r["snr_db"])].append(r)
    out = []
    for (test_set, noise, snr), rs in groups.items():
        row: dict[str, Any] = {
            "test_set": test_set,
            "noise": noise,
            "snr_db": snr,
            "segments": len(rs),
            "seeds": len({r["seed"] for r in rs}),
        }
        for m in METHODS:
            per_seed = [
                np.mean([r[m] == r["fault"] for r in rs if r["seed"] == s])
                for s in sorted({r["seed"] for r in rs})
            ]
            row[f"{m}_correct"] = sum(r[m] == r["fault"] for r in rs)
            row[f"{m}_mean"] = float(np.mean(per_seed))
            row[f"{m}_std"] = float(np.std(per_seed))
        changed = [r for r in rs if r["combined"] != r["drsn"]]
        row["overrides"] = len(changed)
        row["overrides_fixed"] = sum(r["combined"] == r["fault"] for r in changed)
        row["overrides_broke"] = sum(r["drsn"] == r["fault"] for r in changed)
        out.append(row)
    return sorted(
        out,
        key=lambda r: (
            r["test_set"],
            r["noise"] != "none",
            r["noise"],
            -(1e9 if r["snr_db"] == "clean" else float(r["snr_db"])),
        ),
    )


def selection_markdown(table: list[dict[str, Any]]) -> str:
    """What the rule choice saw: every candidate on the selection part (noise seed 0 and clean)."""
    if not table:
        return ""
    lines = [
        "## 2a. Choosing the combination rule (noise seed 0 and the clean segments only)\n",
        "| rule | segments | correct | overrides | points below DRSN | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for t in table:
        lines.append(f"| {t['rule']} | {t['segments']} | {t['correct']} | {t['overrides']} | "
                     f"{t['points_worse']} of {t['points']} | {'**yes**' if t['chosen'] else ''} |")
    return "\n".join(lines) + "\n"


def grid_markdown(table: list[dict[str, Any]], grid: list[dict[str, Any]]) -> str:
    lines = [
        "## 2b. DRSN alone, envelope alone, combined (fault type of 0.68 s segments)\n",
        "Noisy points: seeds 1 and 2, which the rule choice did not see; clean points: the one clean "
        "pass (part of the choice). Rates pooled over seeds with counts; ± is the spread (std) of the "
        "per-seed rate. 'combined, first rule' is the first round's rule (no guard) on the same segments.\n",
        "| test set | noise | SNR dB | segments | DRSN | envelope | combined | combined, first rule | "
        "overrides (fixed / broke) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        n = r["segments"]
        cells = [f"{_rate(r[f'{m}_correct'], n)} ± {100 * r[f'{m}_std']:.1f}" for m in METHODS]
        lines.append(
            f"| {r['test_set']} | {r['noise']} | {r['snr_db']} | {n} | {' | '.join(cells)} | "
            f"{r['overrides']} ({r['overrides_fixed']} / {r['overrides_broke']}) |"
        )
    worse = [r for r in table if r["combined_correct"] < r["drsn_correct"]]
    worse_first = [r for r in table if r["combined_first_correct"] < r["drsn_correct"]]
    lines.append(f"\nStudy points where combined is below DRSN alone: {len(worse)} of {len(table)} "
                 f"(first rule: {len(worse_first)}).\n")
    lines += [
        "Per fault type on the load shift, clean and at 0 dB:\n",
        "| noise | SNR dB | fault | segments | DRSN | envelope | combined | combined, first rule |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for noise, snr in sorted({(r["noise"], r["snr_db"]) for r in grid if r["snr_db"] in ("clean", "0")}):
        shift = [
            r for r in grid if r["test_set"].startswith("1-3") and (r["noise"], r["snr_db"]) == (noise, snr)
        ]
        for fault in sorted({r["fault"] for r in shift}):
            rs = [r for r in shift if r["fault"] == fault]
            cells = [_rate(sum(r[m] == fault for r in rs), len(rs)) for m in METHODS]
            lines.append(f"| {noise} | {snr} | {fault} | {len(rs)} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def simulator_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "## 3. Simulator: other geometries and speeds (2 s records, 5 seeds per cell)\n",
        "| bearing | rpm | condition | severity 0.25 | severity 0.5 | severity 1.0 |",
        "|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["bearing"], r["rpm"], r["condition"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for bearing, rpm, condition in keys:
        cells = []
        for sev in (0.25, 0.5, 1.0):
            rs = [
                r
                for r in rows
                if (r["bearing"], r["rpm"], r["condition"], r["severity"]) == (bearing, rpm, condition, sev)
            ]
            cells.append(_rate(sum(r["correct"] for r in rs), len(rs)) if rs else "-")
        lines.append(f"| {bearing} | {rpm:g} | {condition} | {' | '.join(cells)} |")
    total = sum(r["correct"] for r in rows)
    lines.append(
        f"\nAll simulated records: {_rate(total, len(rows))} correct ('none' is correct for normal).\n"
    )
    return "\n".join(lines) + "\n"


def plot_grid(table: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    sets = sorted({r["test_set"] for r in table})
    kinds = sorted({r["noise"] for r in table} - {"none"}) or ["none"]
    fig, axes = plt.subplots(
        len(kinds), len(sets), figsize=(5.5 * len(sets), 3.6 * len(kinds)), dpi=110, squeeze=False
    )
    for ax, (kind, test_set) in zip(axes.ravel(), [(k, t) for k in kinds for t in sets], strict=True):
        rs = [r for r in table if r["test_set"] == test_set and r["noise"] in ("none", kind)]
        labels = [r["snr_db"] for r in rs]
        for m, colour in zip(METHODS, ("tab:purple", "tab:orange", "tab:green", "tab:gray"), strict=True):
            ax.errorbar(
                range(len(rs)),
                [100 * r[f"{m}_mean"] for r in rs],
                yerr=[100 * r[f"{m}_std"] for r in rs],
                marker="o",
                capsize=3,
                color=colour,
                label=LABELS[m],
                linestyle="--" if m == "combined_first" else "-",
            )
        ax.set_xticks(range(len(rs)), labels)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("fault type correct (%)")
        ax.set_ylim(0, 102)
        ax.set_title(f"{test_set}, {kind} noise: {rs[-1]['segments']} segments per noisy point", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_records(rows: Iterable[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    rows = list(rows)
    colours = {"Y": "tab:green", "P": "tab:orange", "N": "tab:red"}
    fig, ax = plt.subplots(figsize=(12, 4), dpi=110)
    x = np.arange(len(rows))
    ax.bar(x, [r["prominence_db"] for r in rows], color=[colours[r["grade"]] for r in rows])
    ax.set_xticks(x, [f"{r['file'].split('_')[1]} {r['load_hp']}HP" for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("prominence of the true fault's peaks (dB)")
    ax.set_title(
        "CWRU fault records: envelope evidence for the true fault type (green Y, orange P, red N)", fontsize=9
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
