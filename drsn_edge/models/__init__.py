"""DRSN models (Zhao et al., IEEE TII 2020) and their baselines, built by name.

>>> from drsn_edge.models import create_model, list_models
>>> model = create_model("drsn_cw_paper", num_classes=10)

``create_model`` / ``list_models`` / ``model_info`` are the entry points; the layers, units and
networks are exported for analysis code and custom configurations. Importing this package
imports torch.
"""

from __future__ import annotations

from drsn_edge.models.network import ResidualShrinkageNetwork, Stage, Stem
from drsn_edge.models.registry import MODELS, ModelSpec, create_model, list_models, model_info
from drsn_edge.models.shrinkage import Shrinkage, recording, shrinkage_layers, soft_threshold
from drsn_edge.models.units import CBU, RBU, RSBUCS, RSBUCW, ChannelPadShortcut, ResidualUnit
from drsn_edge.models.wdcnn import WDCNN

__all__ = [
    "CBU",
    "MODELS",
    "RBU",
    "RSBUCS",
    "RSBUCW",
    "WDCNN",
    "ChannelPadShortcut",
    "ModelSpec",
    "ResidualShrinkageNetwork",
    "ResidualUnit",
    "Shrinkage",
    "Stage",
    "Stem",
    "create_model",
    "list_models",
    "model_info",
    "recording",
    "shrinkage_layers",
    "soft_threshold",
]
