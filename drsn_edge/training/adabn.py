"""AdaBN: re-estimate BatchNorm statistics on a new machine's windows, without labels.

A network trained on one machine normalises every layer with the means and variances it saw
there; on another machine (another load, speed or mounting) those statistics shift and the
decision boundaries no longer sit where the features are. AdaBN (Li et al., 2016; applied to
CWRU load transfer by Zhang et al., WDCNN, 2017) replaces each BatchNorm layer's running mean and
variance with those of the target windows and keeps every learnt weight. No label is needed,
which is why it suits a machine nobody has annotated.

The estimate is a cumulative average over batches (``momentum=None``), so every target window
counts equally whatever the order; the model is then put back in eval mode.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from runtime.errors import DataError

log = logging.getLogger(__name__)

#: fewest target windows AdaBN accepts: below this, per-channel means and variances of the deeper
#: layers (which see one pooled value per window) are too noisy to replace the trained ones
MIN_WINDOWS = 32


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def adapt_batchnorm(model: nn.Module, windows: np.ndarray, batch_size: int = 128) -> int:
    """Replace every BatchNorm layer's running statistics by those of ``windows`` (normalised inputs).

    Returns the number of BatchNorm layers adapted. Weights and biases are untouched; the model
    is left in eval mode. Raises :class:`DataError` below :data:`MIN_WINDOWS` windows.
    """
    n = len(windows)
    if n < MIN_WINDOWS:
        raise DataError(
            f"AdaBN needs at least {MIN_WINDOWS} unlabelled windows to estimate BatchNorm "
            f"statistics, got {n}; record a longer stretch of the target machine"
        )
    if not np.all(np.isfinite(windows)):
        raise DataError("the target windows contain NaN or inf samples; clean the recordings first")
    layers = batchnorm_layers(model)
    if not layers:
        raise DataError(f"{type(model).__name__} has no BatchNorm layers; AdaBN has nothing to adapt")
    saved = [(m, m.momentum) for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over all batches
    model.train()
    try:
        # batches of (nearly) equal size: the cumulative average weighs batches, not windows, equally
        for idx in np.array_split(np.arange(n), -(-n // max(2, batch_size))):
            model(torch.from_numpy(np.ascontiguousarray(windows[idx], dtype=np.float32)))
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    log.info("AdaBN: %d BatchNorm layers re-estimated on %d windows", len(layers), n)
    return len(layers)

