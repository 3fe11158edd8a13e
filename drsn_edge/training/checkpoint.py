"""Checkpoints on the host: the file format of :mod:`export.checkpoint_format`, plus the model.

The format (what a checkpoint holds, how it is written and validated) lives in ``export`` so the
export step reads it without importing training code; this module adds what only the host can
do, rebuilding the network from the model registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from export.checkpoint_format import FORMAT, VERSION, load_checkpoint_as, save_checkpoint, weights_sha256
from export.checkpoint_format import Checkpoint as CheckpointFile
from runtime.errors import ModelFileError

__all__ = [
    "FORMAT",
    "VERSION",
    "Checkpoint",
    "build_model",
    "load_checkpoint",
    "save_checkpoint",
    "weights_sha256",
]


def build_model(ckpt: CheckpointFile) -> torch.nn.Module:
    """Rebuild the network of ``ckpt`` with its weights, in eval mode."""
    from drsn_edge.models import create_model

    model = create_model(ckpt.model_name, **ckpt.model_kwargs)
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as exc:
        raise ModelFileError(
            f"checkpoint weights do not fit {ckpt.model_name} with {ckpt.model_kwargs}: {exc}; "
            "the file was written by another model configuration"
        ) from exc
    return model.eval()


@dataclass
class Checkpoint(CheckpointFile):
    """A checkpoint that can rebuild its network."""

    def build_model(self) -> torch.nn.Module:
        """Rebuild the network with its weights, in eval mode."""
        return build_model(self)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint; errors name the file and what to do."""
    return load_checkpoint_as(path, Checkpoint)
