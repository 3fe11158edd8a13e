"""Logits and pooled features of a torch model in one pass, for fitting and for studies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Outputs:
    """Logits (N, K) and pooled features (N, F) of a set of windows, float64, and the windows.

    ``windows`` are the model's input, kept for scores that read the signal too
    (``sqrt_envelope_mahalanobis``); None where only the outputs were at hand.
    """

    logits: np.ndarray
    features: np.ndarray
    windows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.logits)


@torch.inference_mode()
def model_outputs(model: torch.nn.Module, x: np.ndarray, batch: int = 256) -> Outputs:
    """Both outputs batch by batch in eval mode (``forward_features`` then ``forward_head``)."""
    model.eval()
    logits, feats = [], []
    for i in range(0, len(x), batch):
        chunk = torch.from_numpy(np.ascontiguousarray(x[i : i + batch], dtype=np.float32))
        f = model.forward_features(chunk)  # type: ignore[operator]
        logits.append(model.forward_head(f).numpy())  # type: ignore[operator]
        feats.append(f.numpy())
    if not logits:
        width = int(getattr(model, "feature_dim", 0))
        return Outputs(np.zeros((0, int(getattr(model, "num_classes", 0)))), np.zeros((0, width)))
    return Outputs(
        np.concatenate(logits).astype(np.float64), np.concatenate(feats).astype(np.float64), np.asarray(x)
    )
