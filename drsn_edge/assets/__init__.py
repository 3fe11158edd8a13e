"""The models shipped inside the package: the one place their location is defined.

``drsn_cw_sim.onnx`` (the simulator-trained DRSN-CW the demo, ``bench daemon`` and ``bench
backends`` run by default) and the CWRU models with their checkpoints; ``models.json`` describes
them (see :mod:`drsn_edge.training.packaged`).
"""

from __future__ import annotations

from pathlib import Path

from runtime.errors import ModelFileError

#: the folder of the packaged model files
ASSETS = Path(__file__).resolve().parent
#: the model the demo and the benchmarks run when none is given
DEMO_MODEL = "drsn_cw_sim.onnx"


def packaged_model(name: str = DEMO_MODEL) -> Path:
    """The packaged model file ``name``; ModelFileError naming the fix when it is missing."""
    path = ASSETS / name
    if not path.is_file():
        raise ModelFileError(
            f"the packaged model {path} is missing; reinstall drsn-edge, or rebuild it (scripts/"
            "train-demo-model.sh for the demo model, scripts/train-cwru-models.sh for the CWRU ones), "
            "or pass --model"
        )
    return path
