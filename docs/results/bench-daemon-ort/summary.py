"""Tables and one figure from the raw outputs in this folder.

``python docs/results/bench-daemon-ort/summary.py``

Reads ``ort_call/ort_call.json`` (the model call alone under the daemon's conditions),
``fast-wake/*/result.json`` (bench daemon sliced: the model call's thread CPU per window inside the
daemon against the bare slices beside it; producers woken before or after the call),
``null-cache/*/anatomy.json`` (the null backend writing 4 MiB per call, as a model's activations
do) and ``rt-deadline/*/result.json`` (real time, batch deadline from queue time or from arrival);
writes ``summary.md`` and ``summary.png``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _runs(folder: str, pattern: str, name: str = "result.json") -> dict[str, dict]:
    return {p.name: json.loads((p / name).read_text()) for p in sorted((HERE / folder).glob(pattern))
            if (p / name).is_file()}


def ort_call() -> tuple[list[str], dict[str, float]]:
    doc = json.loads((HERE / "ort_call" / "ort_call.json").read_text())
    us = doc["us_per_window"]
    ref = us["bare_batch"]
    ratios = {k: statistics.median(a / b for a, b in zip(v, ref, strict=True)) for k, v in us.items()}
    lines = [f"The model call alone, {doc['rounds']} rounds of {doc['seconds']} s per variant, load "
             f"{doc['load']:.2f} (`ort_call.py`)", "",
             "| variant | thread CPU us per window, median (min-max) | / bare_batch, median of rounds |",
             "|---|---:|---:|"]
    for k, v in us.items():
        lines.append(f"| {k} | {statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f}) | {ratios[k]:.3f} |")
    return lines, ratios


def fast_wake() -> tuple[list[str], dict[str, list[float]]]:
    lines = ["`bench daemon --mode fast --prediction-qos off --novelty off --slices 4 --seconds 6` (tree A: "
             "producers woken when the batch is taken, as committed; C: after the model call), per run: "
             "median over the 4 slices", "",
             "| run (load) | daemon / bare windows/s | bare / daemon CPU per window "
             "| model call daemon / bare (thread CPU) | daemon's CPU besides the call (us/window) |",
             "|---|---:|---:|---:|---:|"]
    model: dict[str, list[float]] = {}
    for name, r in _runs("fast-wake", "fast-*").items():
        s = r["slices"]
        bm, dm = s["bare_model_us_per_window"], s["daemon_model_us_per_window"]
        per = [d / ((a + b) / 2) for d, a, b in zip(dm, bm, bm[1:], strict=False)]
        own = [c - m for c, m in zip(s["daemon_cpu_us_per_window"], dm, strict=True)]
        model.setdefault(name.split("-")[1], []).extend(per)
        lines.append(f"| {name} ({r['environment']['load_average_start']}) | {s['median_ratio']:.1%} | "
                     f"{s['median_cpu_ratio']:.1%} | {statistics.median(per):.3f} | "
                     f"{statistics.median(own):.1f} |")
    return lines, model


def null_cache() -> tuple[list[str], dict[str, list[float]]]:
    lines = ["`python -m runtime.bench.anatomy --mode fast --backend null --prediction-qos off` "
             "(A: as committed; D: the null backend writes 4 MiB per call)", "",
             "| run (load) | windows/s | inference thread besides the call (us/window) | source thread | "
             "the call |", "|---|---:|---:|---:|---:|"]
    own: dict[str, list[float]] = {}
    for name, r in _runs("null-cache", "anat-*", "anatomy.json").items():
        n = r["windows"]
        th = r["threads_s"]
        infer = sum(v for k, v in th.items() if k.startswith("infer")) * 1e6 / n
        source = sum(v for k, v in th.items() if k.startswith("source")) * 1e6 / n
        call = r["model_cpu_s"] * 1e6 / r["model_windows"]
        own.setdefault(name.split("-")[-2], []).append(infer - call + source)
        lines.append(f"| {name} ({r['load_average']:.2f}) | {n / r['seconds']:,.0f} | {infer - call:.1f} | "
                     f"{source:.1f} | {call:.1f} |")
    return lines, own


def rt_deadline() -> tuple[list[str], dict[str, list[float]]]:
    lines = ["`bench daemon --mode realtime --prediction-qos 1 --predictions batch --seconds 6` "
             "(A: deadline from the queue time; B: from the oldest window's arrival stamp, as committed; "
             "E: at most 1.5 max_wait after arrival, never less than max_wait after queueing; "
             "rounds 11-13: the A/E pairs; A4ms: tree A with --max-wait-ms 4, rounds 21-23 against B)", "",
             "| run (load) | mean batch | CPU per window (us) | classified p99 (ms) "
             "| PUBACK p50 / p99 (ms) |",
             "|---|---:|---:|---:|---:|"]
    p99: dict[str, list[float]] = {}
    cols: dict[str, list[tuple[float, float, float, float]]] = {}
    for name, r in _runs("rt-deadline", "rt-bench-*").items():
        rt = r["realtime"]
        key = name.rsplit("-", 2)[0].removeprefix("rt-bench-") + " " + name.rsplit("-", 2)[1]
        p99.setdefault(key, []).append(rt["ack_latency_ms"]["p99"])
        cols.setdefault(key, []).append((rt["mean_batch"], rt["cpu_us_per_window"],
                                         rt["classify_latency_ms"]["p99"], rt["ack_latency_ms"]["p50"]))
        lines.append(f"| {name} ({r['environment']['load_average_start']}) | {rt['mean_batch']} | "
                     f"{rt['cpu_us_per_window']} | {rt['classify_latency_ms']['p99']:.1f} | "
                     f"{rt['ack_latency_ms']['p50']:.1f} / {rt['ack_latency_ms']['p99']:.1f} |")
    for key, v in sorted(p99.items()):
        batch, cpu, cls, p50 = (statistics.median(c) for c in zip(*cols[key], strict=True))
        lines.append(f"| **{key}: medians of {len(v)} runs** | **{batch:.2f}** | **{cpu:.1f}** | "
                     f"**{cls:.1f}** | **{p50:.1f} / {statistics.median(v):.1f}** |")
    return lines, p99


def final() -> tuple[list[str], dict[str, list[float]]]:
    lines = ["The issue's configurations on one tree (`run_final.sh`; `final/`), per run", "",
             "| run (load) | daemon / bare, median of 4 slices | CPU per window, bare / daemon | model call "
             "daemon / bare | daemon's CPU besides the call (us/window, per slice) |",
             "|---|---:|---:|---:|---|"]
    figures: dict[str, list[float]] = {"windows/s ratio": [], "CPU ratio": []}
    for name, r in _runs("final", "default-*").items():
        s = r["slices"]
        bm, dm = s["bare_model_us_per_window"], s["daemon_model_us_per_window"]
        per = [d / ((a + b) / 2) for d, a, b in zip(dm, bm, bm[1:], strict=False)]
        own = [c - m for c, m in zip(s["daemon_cpu_us_per_window"], dm, strict=True)]
        figures["windows/s ratio"].append(s["median_ratio"])
        figures["CPU ratio"].append(s["median_cpu_ratio"])
        lines.append(f"| {name} ({r['environment']['load_average_start']}) | {s['median_ratio']:.1%} | "
                     f"{s['median_cpu_ratio']:.1%} | {statistics.median(per):.3f} | "
                     + ", ".join(f"{v:.1f}" for v in own) + " |")
    lines += ["", "| run (load) | mean batch | CPU per window (us) | classified p99 (ms) "
              "| PUBACK p50 / p99 (ms) | backend call p99 (ms) |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in _runs("final", "realtime-*").items():
        rt = r["realtime"]
        lines.append(f"| {name} ({r['environment']['load_average_start']}) | {rt['mean_batch']} | "
                     f"{rt['cpu_us_per_window']} | {rt['classify_latency_ms']['p99']:.1f} | "
                     f"{rt['ack_latency_ms']['p50']:.1f} / {rt['ack_latency_ms']['p99']:.1f} | "
                     f"{rt['backend_call_ms']['p99']:.1f} |")
    return lines, figures


def main() -> None:
    parts = [ort_call(), fast_wake(), null_cache(), rt_deadline(), final()]
    (HERE / "summary.md").write_text("\n\n".join("\n".join(lines) for lines, _ in parts) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: summary.md only")
        return
    fig, ax = plt.subplots(1, 5, figsize=(21, 4.2))
    ratios = parts[0][1]
    ax[0].barh(list(ratios), list(ratios.values()))
    ax[0].axvline(1.0, color="k", lw=0.8)
    ax[0].set_xlim(0.9, 1.1)
    ax[0].set_title("model call alone: CPU / bare_batch\n(median of rounds)", fontsize=9)
    for k, (label, values) in enumerate((("model call daemon / bare\n(per slice)", parts[1][1]),
                                         ("daemon besides the call,\nnull backend (us/window)", parts[2][1]),
                                         ("real-time PUBACK p99 (ms)", parts[3][1]),
                                         ("final tree: daemon / bare\n(default publishing)", parts[4][1])),
                                        start=1):
        names = sorted(values)
        for j, name in enumerate(names):
            ax[k].scatter([j] * len(values[name]), values[name], alpha=0.7)
            ax[k].hlines(statistics.median(values[name]), j - 0.3, j + 0.3, color="k")
        ax[k].set_xticks(range(len(names)), names, fontsize=8)
        ax[k].set_title(label, fontsize=9)
    ax[1].axhline(1.0, color="grey", lw=0.8)
    ax[3].axhline(10.0, color="red", lw=0.8, ls="--")
    ax[3].set_yscale("log")
    ax[4].axhline(0.9, color="red", lw=0.8, ls="--")
    fig.tight_layout()
    fig.savefig(HERE / "summary.png", dpi=110)
    print(f"wrote {HERE / 'summary.md'} and summary.png")


if __name__ == "__main__":
    main()
