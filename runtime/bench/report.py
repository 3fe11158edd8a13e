"""Figures of a daemon benchmark: percentiles, the console table, JSON, Markdown and a latency plot.

The JSON keeps everything needed to check a claim later (workload, environment, every phase's
summary, the targets and whether they were met); the Markdown is what goes into
docs/benchmarks.md. The plot needs matplotlib, which a device need not have: without it the
report says so instead of failing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from runtime.bench.runs import PhaseResult

log = logging.getLogger(__name__)

PERCENTILES = (50, 95, 99)


def percentiles_ms(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max of seconds, in milliseconds (None when there are no samples)."""
    out: dict[str, float | None] = {f"p{p}": None for p in PERCENTILES}
    out["max"], out["count"] = None, 0
    if values:
        a = np.asarray(values, dtype=np.float64) * 1000.0
        for p in PERCENTILES:
            out[f"p{p}"] = round(float(np.percentile(a, p)), 3)
        out["max"], out["count"] = round(float(a.max()), 3), int(a.size)
    return out


def summarise(phase: PhaseResult) -> dict[str, Any]:
    """One phase as JSON-ready numbers."""
    return {
        "seconds": round(phase.seconds, 3),
        "windows": phase.windows,
        "windows_per_s": round(phase.windows_per_s, 1),
        "mean_batch": round(float(np.mean(phase.batch_sizes)), 2) if phase.batch_sizes else None,
        "cpu_us_per_window": round(phase.cpu_s / phase.windows * 1e6, 1) if phase.windows else None,
        "backend_call_ms": percentiles_ms(phase.infer_s),
        "classify_latency_ms": percentiles_ms(phase.classify_latency_s),
        "ack_latency_ms": percentiles_ms(phase.ack_latency_s),
        **phase.extra,
        # the novelty path's own CPU (thread time inside it) over the whole process's: its share of the
        # daemon's throughput on a saturated core, from one run, without differencing two runs' noise
        "novelty_cpu_share": (round(phase.extra.get("novelty_cpu_s", 0.0) / phase.cpu_s, 4)
                              if phase.cpu_s else None),
        # the backend call's own thread CPU per window (Backend.call_cpu_s): the same model call in the
        # bare loop and inside the daemon, where other threads share its core and cache
        "model_cpu_us_per_window": (round(phase.extra["model_cpu_s"] / phase.extra["model_windows"] * 1e6, 1)
                                    if phase.extra.get("model_windows") else None),
    }


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}" if abs(v) >= 10 else f"{v:.2f}{unit}"
    return f"{v}{unit}"


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, value, target) rows shared by the console table and the Markdown."""
    rows: list[tuple[str, str, str]] = []
    bare = result["bare"]
    rows.append(("bare backend, windows/s", _fmt(bare["windows_per_s"]),
                 f"runs: {', '.join(_fmt(r['windows_per_s']) for r in bare['runs'])}"))
    fast = result.get("fast")
    if fast is not None:
        t = result["targets"].get("throughput_ratio")
        rows.append(("daemon as fast as possible, windows/s", _fmt(fast["windows_per_s"]),
                     f"mean batch {_fmt(fast['mean_batch'])}"))
        rows.append(("process CPU per window, bare / daemon (us)",
                     f"{_fmt(bare['runs'][0]['cpu_us_per_window'])} / {_fmt(fast['cpu_us_per_window'])}",
                     "all threads; the broker runs in its own process"))
        if fast.get("model_cpu_us_per_window") is not None and bare["runs"][0].get("model_cpu_us_per_window"):
            bare_model = [r["model_cpu_us_per_window"] for r in bare["runs"]]
            mean_bare = sum(bare_model) / len(bare_model)
            rows.append(("model call's thread CPU per window, bare / daemon (us)",
                         f"{_fmt(mean_bare)} / {_fmt(fast['model_cpu_us_per_window'])}",
                         "inside the backend call only; bare runs: "
                         + ", ".join(_fmt(v) for v in bare_model)))
        if t is not None:
            rows.append(("daemon / bare", f"{t['measured']:.1%}",
                         f">= {t['target']:.0%}: {'met' if t['met'] else 'MISSED'}"
                         + (f"; {t['method']}, pooled {t['pooled']:.1%}" if "method" in t else "")))
        rows.extend(_slice_rows(result.get("slices")))
        scored, cost = result.get("fast_novelty_on"), result["targets"].get("novelty_cost")
        if scored is not None and cost is not None:
            rows.append(("daemon fast, novelty off / on, windows/s",
                         f"{_fmt(fast['windows_per_s'])} / {_fmt(scored['windows_per_s'])}",
                         f"CPU per window {_fmt(fast['cpu_us_per_window'])} / "
                         f"{_fmt(scored['cpu_us_per_window'])} us"))
            cpu = result.get("novelty_cpu_cost")
            rows.append(("novelty path's cost (1 - on / off)", f"{cost['measured']:.1%}",
                         f"<= {cost['target']:.0%}: {'met' if cost['met'] else 'MISSED'}; "
                         + ("slices off, on, then on, off" if "slices" in result
                            else "halves off, on, on, off")
                         + ("" if cpu is None else f"; from CPU per window {cpu:.1%}")))
            share = scored.get("novelty_cpu_share")
            if share is not None:
                rows.append(("novelty path's own CPU / the daemon's, novelty on", f"{share:.1%}",
                             f"<= {cost['target']:.0%}: {'met' if share <= cost['target'] else 'MISSED'}; "
                             "thread time inside scores, bands and flags, one run"))
        own = result["targets"].get("own_us_per_window")
        if own is not None:
            rows.append(("daemon's own CPU per window, null backend (us)", _fmt(own["measured"]),
                         f"<= {own['target']:g} us: {'met' if own['met'] else 'MISSED'}"))
    rt = result.get("realtime")
    if rt is not None:
        t = result["targets"].get("p99_ack_latency_ms")
        ack, cls = rt["ack_latency_ms"], rt["classify_latency_ms"]
        rows.append(("real time: sensors arrive", rt["arrival"],
                     "UDP frames, each sensor at its own phase" if rt["arrival"] == "staggered"
                     else "replayed in lockstep: all chunks at once"))
        rows.append(("real time: windows/s (offered)",
                     f"{_fmt(rt['windows_per_s'])} ({_fmt(rt['offered_per_s'])})",
                     f"mean batch {_fmt(rt['mean_batch'])}"))
        rows.append(("real time: last sample -> classified, p50/p99 ms",
                     f"{_fmt(cls['p50'])} / {_fmt(cls['p99'])}", ""))
        rows.append(("real time: last sample -> PUBACK, p50/p99 ms",
                     f"{_fmt(ack['p50'])} / {_fmt(ack['p99'])}",
                     "no results at QoS 1 to time (--prediction-qos 1)" if t is None
                     else f"p99 <= {t['target']:g} ms: {'met' if t['met'] else 'MISSED'}"))
        rows.append(("real time: backend call p50/p99 ms",
                     f"{_fmt(rt['backend_call_ms']['p50'])} / {_fmt(rt['backend_call_ms']['p99'])}", ""))
    rss = result["targets"].get("rss_mb")
    if rss is not None:
        starts = result["slices"]["count"] * (2 if "novelty_costs" in result["slices"] else 1) \
            if "slices" in result else None
        rows.append(("process RSS after the daemon phases (MiB)", _fmt(rss["measured"]),
                     f"<= {rss['target']:g}: {'met' if rss['met'] else 'MISSED'} (whole benchmark process"
                     + ("" if starts is None else f", after {starts} daemon starts in it; "
                        "python -m runtime.bench.rss measures drsn-edge run alone") + ")"))
    return rows


def _slice_rows(sl: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """The slices of ``--slices N``: every slice's figures, the ratios' median and spread."""
    if sl is None:
        return []
    rows = [(f"slices: bare windows/s ({sl['count'] + 1} x {sl['seconds_each']:g} s)",
             ", ".join(_fmt(v) for v in sl["bare_windows_per_s"]),
             "" if sl["bare_spread"] is None else f"bare's own swing {sl['bare_spread']:.1%} of its mean"),
            (f"slices: daemon windows/s ({sl['count']} x {sl['seconds_each']:g} s)",
             ", ".join(_fmt(v) for v in sl["daemon_windows_per_s"]),
             "CPU per window " + ", ".join(_fmt(v) for v in sl.get("daemon_cpu_us_per_window", [])) + " us"),
            ("slices: daemon / mean of the bare slices beside it",
             ", ".join(f"{r:.1%}" for r in sl["ratios"]),
             f"median {sl['median_ratio']:.1%}, range {sl['min_ratio']:.1%}-{sl['max_ratio']:.1%} "
             f"(spread {sl['spread']:.1%})")]
    if "cpu_ratios" in sl:
        rows.append(("slices: CPU per window, bare beside it / daemon",
                     ", ".join(f"{r:.1%}" for r in sl["cpu_ratios"]),
                     f"median {sl['median_cpu_ratio']:.1%} (a core of its own; bare "
                     + ", ".join(_fmt(v) for v in sl["bare_cpu_us_per_window"]) + " us)"))
    if "novelty_costs" in sl:
        rows.append(("slices: novelty cost per slice (1 - on / off)",
                     ", ".join(f"{c:.1%}" for c in sl["novelty_costs"]),
                     f"median {sl['median_novelty_cost']:.1%}"))
    return rows


def console_table(result: dict[str, Any]) -> str:
    rows = [("figure", "value", "note"), *table_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """A Markdown section: command, setup, the table, and the raw per-phase figures."""
    w, env, m = result["workload"], result["environment"], result["model"]
    pinned = f", process pinned to CPU {env['pinned_cpu']}" if env["pinned_cpu"] is not None else ""
    lines = [
        f"### `drsn-edge bench daemon`: {w['sensors']} sensors at {w['sample_rate']:g} Hz, "
        f"batch {w['batch']}",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"- model: {m['name']} version {m['version']} (window {m['window']}, hop {m['hop']}); "
        + (f"ONNX Runtime {env['onnxruntime']} on CPU, {w['threads']} intra-op thread(s){pinned}"
           if w.get("backend", "onnxruntime") != "null" else
           f"null backend (a constant stand-in for the model: the daemon's own cost){pinned}"),
        f"- machine: {env['cpu']} ({env['cpus_visible']} CPUs visible), Python {env['python']}; "
        f"broker: {env['broker']}",
        f"- {_results_line(w)}; chunks of {w['chunk']} samples; max_wait {w['max_wait_ms']:g} ms; "
        f"novelty {w.get('novelty', 'off')}",
        "",
        "| figure | value | note |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in table_rows(result)),
        "",
    ]
    return "\n".join(lines)


def _results_line(w: dict[str, Any]) -> str:
    qos = w["prediction_qos"]
    if qos is None:
        return (f"no per-window results: fault states and QoS 1 events only (outbox synchronous="
                f"{w['outbox_sync']})")
    per = ("one message per inference batch" if w.get("predictions") == "batch"
           else "one message per window")
    if qos == 0:
        return f"every window's result published at QoS 0, {per} (not stored, no PUBACK)"
    sync = (f"synchronous={w['outbox_sync']}" if "results_sync" not in w else
            f"outbox synchronous={w['outbox_sync']} for events, results_synchronous={w['results_sync']} "
            "for results without events")
    return f"every window's result published at QoS 1 through the outbox, {per} ({sync})"


def save(result: dict[str, Any], out: Path, realtime: PhaseResult | None) -> list[Path]:
    """Write result.json, result.md and (with matplotlib) latency.png; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "result.json", out / "result.md"]
    written[0].write_text(json.dumps(result, indent=2) + "\n")
    written[1].write_text(markdown(result))
    if realtime is not None and realtime.ack_latency_s:
        png = out / "latency.png"
        if plot_latency(realtime, png, result["targets"]["p99_ack_latency_ms"]["target"]):  # QoS 1 only
            written.append(png)
    return written


def plot_latency(phase: PhaseResult, path: Path, target_ms: float) -> bool:
    """Histogram + CDF of last-sample -> PUBACK latency; False (and a log line) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed; no latency plot (pip install matplotlib)")
        return False
    ack = np.asarray(phase.ack_latency_s) * 1000.0
    cls = np.asarray(phase.classify_latency_s) * 1000.0
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    hi = float(max(np.percentile(ack, 99.9), target_ms) * 1.1)
    bins = np.linspace(0, hi, 80)
    ax1.hist(cls, bins=bins, alpha=0.6, label="classified")
    ax1.hist(ack, bins=bins, alpha=0.6, label="PUBACK received")
    ax1.axvline(target_ms, color="k", ls="--", label=f"target p99 {target_ms:g} ms")
    ax1.set(xlabel="ms after the window's last sample arrived", ylabel="windows",
            title="latency distribution")
    ax1.legend()
    for data, name in ((cls, "classified"), (ack, "PUBACK received")):
        xs = np.sort(data)
        ax2.plot(xs, np.arange(1, xs.size + 1) / xs.size, label=name)
    ax2.axhline(0.99, color="grey", lw=0.8)
    ax2.axvline(target_ms, color="k", ls="--")
    ax2.set(xlabel="ms", ylabel="fraction of windows", title="CDF", xlim=(0, hi))
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
