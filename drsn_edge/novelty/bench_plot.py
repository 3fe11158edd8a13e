"""The PNG beside `drsn-edge bench novelty`'s table: what each run measured, and the load it ran under.

The table (runtime/novelty/bench.py) has the medians; the figure shows whether they are typical:
on a shared machine the inference time moves with the neighbours' load, and the envelope bands'
share of it with it. Host side only (matplotlib); without matplotlib there is no figure and the
table stands alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def plot_runs(result: dict[str, Any], path: Path) -> Path | None:
    """Per run: inference and envelope-band time per batch (bars), the bands' share and the load (lines)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no %s (pip install matplotlib)", path.name)
        return None
    runs = result.get("runs") or [result]
    idx = list(range(1, len(runs) + 1))
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.28
    ax_t.bar([i - width for i in idx], [r["inference_ms_per_batch"] for r in runs], width,
             label="inference (logits)", color="#4c72b0")
    ax_t.bar(idx, [r["envelope_bands_ms_per_batch"] for r in runs], width,
             label="envelope bands", color="#dd8452")
    ax_t.bar([i + width for i in idx], [r.get("envelope_reused_ms_per_batch", float("nan")) for r in runs],
             width, label="bands reused (daemon)", color="#c44e52")
    ax_t.set_xlabel("run")
    ax_t.set_ylabel(f"ms per batch of {result['batch']}")
    ax_t.set_xticks(idx)
    ax_t.legend(frameon=False)
    ax_t.set_title(f"{Path(result['model']).name}, {result['threads']} thread")
    share = [100 * r["envelope_bands_share_of_inference"] for r in runs]
    ax_s.plot(idx, share, "o-", color="#dd8452", label="envelope bands / inference (%)")
    ax_s.plot(idx, [100 * r.get("envelope_reused_share_of_inference", float("nan")) for r in runs], "o-",
              color="#c44e52", label="reused as the daemon does (%)")
    ax_s.axhline(5.0, color="grey", ls="--", lw=1, label="5 %")
    ax_s.set_xlabel("run")
    ax_s.set_ylabel("% of inference")
    ax_s.set_xticks(idx)
    ax_s.set_ylim(0, max([*share, 5.0]) * 1.3)
    load = ax_s.twinx()
    load.plot(idx, [r.get("load_1m_before", float("nan")) for r in runs], "s:", color="#55a868",
              label="load average before the run")
    load.set_ylabel("load average (1 min)")
    load.set_ylim(bottom=0)
    lines = ax_s.get_legend_handles_labels()
    more = load.get_legend_handles_labels()
    ax_s.legend(lines[0] + more[0], lines[1] + more[1], frameon=False, fontsize=8, loc="lower left")
    ax_s.set_title(f"median {100 * result['envelope_bands_share_of_inference']:.1f} % of inference")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
