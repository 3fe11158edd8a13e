"""The FP16 numerics table the GPU tests leave behind: JSON, Markdown and a PNG.

``scripts/gpu-check.sh`` points ``$DRSN_EDGE_GPU_OUT`` at its result folder; the numerics test
appends one row per (model, precision) and this module writes them when the test module ends, so
the figures a GPU run produced can be read and committed without re-running anything.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class NumericsRow:
    """One registered model in one reduced precision on CUDA, against FP32 on the CPU."""

    model: str
    precision: str  # fp16 | autocast | bf16
    windows: int
    source: str  # where the windows came from
    weights: str  # "untrained, seed N" (BatchNorm randomised, logits scaled) or the trained checkpoint
    argmax_agreement: float
    decisive_agreement: float  # near-tie flips forgiven, as in the engine gate
    max_abs_diff: float
    max_abs_reference: float
    tolerance: float
    passed: bool


def markdown(rows: list[NumericsRow], device: str) -> str:
    lines = [
        f"# Reduced precision on CUDA vs FP32 on the CPU ({device})",
        "",
        "| model | weights | precision | windows | argmax agreement | beyond near-ties | "
        "max abs logit diff | max abs logit | tolerance | pass |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.weights} | {r.precision} | {r.windows} | {100 * r.argmax_agreement:.2f}% | "
            f"{100 * r.decisive_agreement:.2f}% | {r.max_abs_diff:.3g} | {r.max_abs_reference:.3g} | "
            f"{r.tolerance:.3g} | {'yes' if r.passed else 'NO'} |"
        )
    if rows:
        lines += ["", f"Windows: {rows[0].source}. Untrained weights have randomised BatchNorm statistics "
                  "and logits scaled to peak near 10 (as the export tests do). 'beyond near-ties': argmax "
                  "agreement with flips forgiven where the FP32 top-2 margin is within twice the tolerance."]
    return "\n".join(lines) + "\n"


def plot(rows: list[NumericsRow], path: Path) -> Path | None:
    """Max |logit diff| per model, one bar per precision; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = sorted({r.model for r in rows})
    precisions = sorted({r.precision for r in rows})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(models) + 2), 4.2))
    width = 0.8 / max(len(precisions), 1)
    for i, precision in enumerate(precisions):
        diffs = {r.model: r.max_abs_diff for r in rows if r.precision == precision}
        xs = [m + i * width for m in range(len(models))]
        ax.bar(xs, [diffs.get(m, 0.0) for m in models], width, label=precision)
    ax.set_xticks([m + 0.4 - width / 2 for m in range(len(models))], models, rotation=45, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("max |logit diff| vs FP32 CPU")
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save(rows: list[NumericsRow], out: Path, device: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"device": device, "rows": [asdict(r) for r in rows]}
    paths = [out / "fp16_numerics.json", out / "fp16_numerics.md"]
    paths[0].write_text(json.dumps(doc, indent=2) + "\n")
    paths[1].write_text(markdown(rows, device))
    png = plot(rows, out / "fp16_numerics.png")
    return paths + ([png] if png is not None else [])
