"""The smallest `drsn-edge train` a CLI test can run: synthetic data, short windows, one thread.

Shared so that every test that needs a throwaway checkpoint trains it the same way; each test adds
its own ``--epochs`` and ``--out``.
"""

from __future__ import annotations

TINY_TRAIN_ARGS = [
    "--source", "synthetic",
    "--window", "1024",
    "--hop", "512",
    "--batch-size", "32",
    "--threads", "1",
    "--no-progress",
]


def tiny_train_argv(out: str, *, epochs: int = 1, extra: tuple[str, ...] = ()) -> list[str]:
    """``train`` argv for a tiny run writing to ``out``."""
    return ["train", *TINY_TRAIN_ARGS, "--epochs", str(epochs), *extra, "--out", out]
