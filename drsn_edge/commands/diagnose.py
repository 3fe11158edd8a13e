"""`drsn-edge diagnose`: envelope analysis of one recording, as a table and a four-panel PNG.

The same code the daemon runs on the device (runtime.diagnostics, numpy and scipy only): the fast
kurtogram picks the band, the envelope spectrum is searched at BPFO, BPFI and 2 x BSF of the
bearing at the shaft speed, and the verdict names the fault type with the strongest evidence.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RECORDING", help=".mat, .wav, .npy or .csv file")
    p.add_argument(
        "--bearing",
        required=True,
        help="catalogue name (6205, 6203, UER204, ...; an unknown name lists them) or a JSON geometry "
        '{"n_elements": 9, "element_diameter_mm": 7.94, "pitch_diameter_mm": 39.04}',
    )
    p.add_argument(
        "--rpm", type=float, help="shaft speed (default: the speed the file or its CWRU manifest holds)"
    )
    p.add_argument("--key", help=".mat variable (default: the CWRU manifest's key, or the only signal)")
    p.add_argument("--column", help=".csv column name or 0-based index")
    p.add_argument("--rate", type=float, help="sample rate in Hz for files that do not state one")
    p.add_argument("--start", type=float, default=0.0, help="seconds into the recording to start (default 0)")
    p.add_argument("--seconds", type=float, help="seconds to analyse (default: to the end)")
    p.add_argument(
        "--band", metavar="LOW:HIGH", help="demodulation band in Hz (default: the fast kurtogram's)"
    )
    p.add_argument("--tolerance", type=float, default=0.02, help="slip/speed tolerance as a fraction (0.02)")
    p.add_argument("--harmonics", type=int, default=3, help="harmonics searched per fault frequency (3)")
    p.add_argument(
        "--out", "-o", default="diagnosis", help="folder for the PNG and the JSON (default diagnosis/)"
    )


def run(args: argparse.Namespace) -> int:
    from drsn_edge.study.envelope_input import load_for_diagnosis
    from drsn_edge.study.envelope_plot import plot_diagnosis
    from runtime.diagnostics.bearings import bearing_from
    from runtime.diagnostics.envelope import EnvelopeSettings, analyse

    bearing = bearing_from(_bearing_spec(args.bearing))
    column: str | int | None = int(args.column) if args.column and args.column.isdigit() else args.column
    data = load_for_diagnosis(
        args.recording,
        key=args.key,
        column=column,
        sample_rate=args.rate,
        rpm=args.rpm,
        start_s=args.start,
        seconds=args.seconds,
    )
    settings = EnvelopeSettings(tolerance=args.tolerance, harmonics=args.harmonics, band=_band(args.band))
    report = analyse(data.samples, data.sample_rate, bearing, data.rpm, settings)
    print(format_table(report, bearing.name, data.source))
    out = Path(args.out)
    stem = Path(args.recording).stem
    png = plot_diagnosis(
        data.samples,
        report,
        out / f"{stem}_diagnosis.png",
        title=f"{data.source}: {bearing.name} at {data.rpm:g} rpm",
    )
    summary = {
        "recording": data.source,
        "bearing": bearing.name,
        "rpm": data.rpm,
        **report.summary(),
        "frequencies_hz": {k: round(v, 3) for k, v in report.frequencies.as_dict().items()},
    }
    (out / f"{stem}_diagnosis.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"figure: {png}\nsummary: {out / f'{stem}_diagnosis.json'}\n")
    return 0


def format_table(report: Any, bearing: str, source: str) -> str:
    """The evidence per fault type as a Markdown table, with the verdict under it."""
    f = report.frequencies
    lines = [
        f"{source}: {bearing} at {f.shaft * 60:g} rpm, {report.n_samples / report.sample_rate:.2f} s at "
        f"{report.sample_rate:g} Hz; band {report.band.low_hz:.0f}-{report.band.high_hz:.0f} Hz",
        f"shaft {f.shaft:.2f} Hz, FTF {f.ftf:.2f}, BPFO {f.bpfo:.2f}, BPFI {f.bpfi:.2f}, BSF {f.bsf:.2f} Hz",
        "",
        "| fault | searched (Hz) | harmonics found | prominence dB (x1, x2, ...) | sidebands found | score |",
        "|---|---|---|---|---|---|",
    ]
    for fault, e in report.evidence.items():
        proms = ", ".join(f"{p.prominence_db:.1f}{'*' if p.found else ''}" for p in e.harmonics)
        side = f"{e.sidebands_found}/{len(e.sidebands)}" if e.sidebands else "-"
        lines.append(
            f"| {fault} | {e.frequency_hz:.2f} | {e.harmonics_found}/{len(e.harmonics)} | {proms} | "
            f"{side} | {e.score:.1f} |"
        )
    lines += [
        "",
        f"verdict: {report.verdict} ({report.strength}); * = found (>= found_db over the local floor)",
    ]
    return "\n".join(lines)


def _bearing_spec(text: str) -> Any:
    if text.strip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--bearing {text!r} is not valid JSON ({exc}); quote the geometry") from exc
    return text


def _band(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError as exc:
        raise ConfigError(f"--band {text!r} must be LOW:HIGH in Hz, e.g. 2000:4000") from exc
    return low, high
