"""`drsn-edge validate-config`: every check of `run` (config, models and their golden windows, sensor rates,
outbox path, TLS files, backend packages) without opening a socket; start nothing."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="daemon config file (.yaml, .yml, .toml or .json)")
    p.add_argument("--reference", action="store_true", help="print the Markdown reference of every option")
    p.add_argument("--no-model-load", action="store_true",
                   help="skip loading the models and running their golden windows (on a TensorRT device "
                   "without a cached engine, loading builds one, which takes minutes)")


def run(args: argparse.Namespace) -> int:
    from runtime.config import DaemonConfig, load_config
    from runtime.config_reference import reference_markdown

    if args.reference:
        print(reference_markdown(DaemonConfig))
        return 0
    if not args.config:
        print("drsn-edge validate-config: give a config file, or --reference", file=sys.stderr)
        return 2
    from runtime.errors import DrsnEdgeError
    from runtime.pipeline import check_plan
    from runtime.preflight import preflight
    from runtime.sources import create_source

    cfg = load_config(args.config)
    sensors: dict[str, float] = {}
    problems: list[str] = []
    for i, src_cfg in enumerate(cfg.sources):
        try:
            sensors.update(create_source(src_cfg).sensors)
        except DrsnEdgeError as exc:
            problems.append(f"sources[{i}] ({getattr(src_cfg, 'type', '?')}): {exc}")
    problems += check_plan(cfg, sensors)
    problems += preflight(cfg, list(sensors), load_models=not args.no_model_load)
    if problems:
        print(f"{args.config}: {len(problems)} problem(s):", file=sys.stderr)
        for msg in problems:
            print(f"  - {msg}", file=sys.stderr)
        return 1
    print(
        f"{args.config}: OK — {len(sensors)} sensor(s) "
        f"({', '.join(f'{k}@{v:g}Hz' for k, v in sensors.items())}), model {cfg.model}, "
        f"backend {cfg.backend.type}, broker {cfg.mqtt.host}:{cfg.mqtt.port}"
    )
    return 0
