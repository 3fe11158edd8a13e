"""The diagnosis figure a vibration analyst expects: waveform, spectrum, kurtogram, envelope spectrum.

The envelope spectrum carries a dashed line at each harmonic of BPFO, BPFI and 2 x BSF in the
fault's colour, with the tolerance band shaded, so a reader checks the verdict by eye.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtime.diagnostics.envelope import SEARCHED, EnvelopeReport

COLOURS = {"outer_race": "tab:blue", "inner_race": "tab:red", "ball": "tab:green"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_diagnosis(samples: np.ndarray, report: EnvelopeReport, path: str | Path, title: str = "") -> Path:
    """Write the four-panel diagnosis figure to ``path`` (PNG) and return the path."""
    plt = _pyplot()
    fs = report.sample_rate
    fig, axes = plt.subplots(4, 1, figsize=(10, 12), dpi=110)
    _waveform(axes[0], samples, fs)
    _spectrum(axes[1], samples, fs, report)
    _kurtogram(fig, axes[2], report)
    _envelope(axes[3], report)
    fig.suptitle(title or "envelope diagnosis", fontsize=11)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _waveform(ax: Any, samples: np.ndarray, fs: float) -> None:
    n = min(samples.size, int(0.25 * fs))
    ax.plot(np.arange(n) / fs, samples[:n], lw=0.6, color="0.2")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("acceleration")
    ax.set_title(f"waveform (first {n / fs:.2f} s of {samples.size / fs:.2f} s)", fontsize=9)


def _spectrum(ax: Any, samples: np.ndarray, fs: float, report: EnvelopeReport) -> None:
    from scipy.signal import welch

    hz, power = welch(np.asarray(samples, dtype=np.float64), fs=fs, nperseg=min(4096, samples.size))
    ax.semilogy(hz, power, lw=0.7, color="0.2")
    ax.axvspan(report.band.low_hz, report.band.high_hz, color="orange", alpha=0.25, label="demodulation band")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD")
    ax.set_title("spectrum (Welch)", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")


def _kurtogram(fig: Any, ax: Any, report: EnvelopeReport) -> None:
    kurt = report.kurtogram
    if kurt is None:
        ax.text(
            0.5,
            0.5,
            f"band configured: {report.band.low_hz:g}-{report.band.high_hz:g} Hz (no kurtogram)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return
    width = 384  # divisible by every band count up to level 7 (1, 2, 3, 4, 6, ... 128)
    image = np.full((len(kurt.levels), width), np.nan)
    for i, row in enumerate(kurt.kurtosis):
        image[i] = row[np.arange(width) * len(row) // width]
    # a narrow band near Nyquist (the anti-alias roll-off) can reach kurtosis 100+; cap the scale so
    # the band structure the choice was made from stays visible
    finite = image[np.isfinite(image)]
    vmax = max(2 * kurt.best.kurtosis, float(np.percentile(finite, 95))) if finite.size else 1.0
    shown = ax.imshow(
        np.minimum(image, vmax),
        aspect="auto",
        origin="upper",
        cmap="viridis",
        interpolation="nearest",
        vmin=0,
        vmax=vmax,
        extent=(0, kurt.sample_rate / 2, len(kurt.levels) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(kurt.levels)), [f"{lv:g}" for lv in kurt.levels], fontsize=7)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("level")
    b = kurt.best
    ax.set_title(
        f"fast kurtogram: best band {b.low_hz:.0f}-{b.high_hz:.0f} Hz (level {b.level:g}, "
        f"kurtosis {b.kurtosis:.2f})",
        fontsize=9,
    )
    fig.colorbar(shown, ax=ax, label=f"spectral kurtosis (capped at {vmax:.1f})")


def _envelope(ax: Any, report: EnvelopeReport) -> None:
    top = 1.15 * max(e.harmonics[-1].expected_hz for e in report.evidence.values())
    keep = report.spectrum_hz <= top
    ax.plot(report.spectrum_hz[keep], report.spectrum[keep], lw=0.7, color="0.2")
    for fault, evidence in report.evidence.items():
        name = {"outer_race": "BPFO", "inner_race": "BPFI", "ball": "2xBSF"}[fault]
        for peak in evidence.harmonics:
            style = "-" if peak.found else ":"
            ax.axvline(
                peak.expected_hz,
                color=COLOURS[fault],
                ls=style,
                lw=1.0,
                alpha=0.8,
                label=f"{name} x1..{len(evidence.harmonics)}" if peak.order == 1 else None,
            )
    ax.axvline(report.frequencies.shaft, color="0.5", ls="--", lw=0.8, label="shaft")
    ax.set_xlim(0, top)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("envelope amplitude")
    ax.set_title(
        f"envelope spectrum: verdict {report.verdict} ({report.strength}); solid line = harmonic "
        f"found, dotted = not found; searched {', '.join(SEARCHED)}",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper right")
