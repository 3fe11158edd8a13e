"""`drsn-edge run`: the monitoring daemon (torch-free; what a Jetson runs as a systemd service)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="daemon config file (.yaml, .yml, .toml or .json)")
    p.add_argument("--log-format", choices=["text", "json"], help="override logging.format from the config")
    p.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override logging.level"
    )


def run(args: argparse.Namespace) -> int:
    from runtime.config import load_config
    from runtime.daemon import run_daemon
    from runtime.logs import setup_logging

    cfg = load_config(args.config)
    setup_logging(args.log_level or cfg.logging.level, args.log_format or cfg.logging.format)
    return run_daemon(cfg)
