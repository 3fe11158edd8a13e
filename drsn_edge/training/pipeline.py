"""From a :class:`DataSpec` to normalised train/val/test arrays, the same way every time.

Training, evaluation, sweeps and the export gates all go through :func:`prepare`, so a model is
always scored on windows cut, split, noised and normalised exactly as it was trained.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from drsn_edge.training.datasource import DataSpec
from runtime.artifact import Normalization
from runtime.signals.normalize import normalize_windows

log = logging.getLogger(__name__)


def load_recordings(spec: DataSpec, select: dict[str, Any] | None = None) -> list[Any]:
    """Recordings of a 1-D source, filtered by metadata criteria."""
    if spec.source == "cwru":
        from drsn_edge.data.cwru import load_cwru

        return load_cwru(
            spec.path, sample_rate=spec.sample_rate or 12000, select=select or None, labels=spec.labels
        )
    if spec.source == "folder":
        from drsn_edge.data.folder import load_folder
        from drsn_edge.data.recordings import select as select_recordings

        recs = load_folder(str(spec.path), sample_rate=spec.sample_rate)
        return select_recordings(recs, **select) if select else recs
    if spec.source == "synthetic":
        from drsn_edge.data.synthetic import synthetic_recordings

        return synthetic_recordings(
            n_per_class=spec.synthetic_per_class,
            seconds=spec.synthetic_seconds,
            sample_rate=spec.sample_rate or 12000,
            seed=spec.seed,
            severity_range=spec.synthetic_severity,
        )
    raise ValueError(f"no recordings for source {spec.source!r}")


def default_hop(spec: DataSpec) -> int:
    return spec.hop or max(1, spec.window // 4)


def prepare(spec: DataSpec) -> tuple[Any, Normalization]:
    """Build the splits for ``spec`` and normalise every window; return (SplitData, normalisation)."""
    spec.validate()
    if spec.source == "mnist":
        from drsn_edge.data.mnist import load_mnist

        return load_mnist(spec.path, seed=spec.seed), Normalization(kind="none")
    from drsn_edge.data.noise import NoiseSpec
    from drsn_edge.data.splits import prepare_splits

    recordings = load_recordings(spec, spec.select)
    test_recordings = load_recordings(spec, spec.test_select) if spec.test_select else None
    data = prepare_splits(
        recordings,
        window=spec.window,
        hop=default_hop(spec),
        test_hop=spec.test_hop,
        split=spec.split,
        fractions=spec.fractions,
        noise=NoiseSpec.parse(spec.noise) if spec.noise else None,
        noise_protocol=spec.noise_protocol,
        seed=spec.seed,
        test_recordings=test_recordings,
    )
    norm = Normalization(kind="zscore")
    for name in ("train", "val", "test"):
        ws = getattr(data, name)
        setattr(data, name, dataclasses.replace(ws, x=normalize_windows(ws.x, norm)))
    log.info(
        "data: %d train / %d val / %d test windows, %d classes",
        len(data.train.y),
        len(data.val.y),
        len(data.test.y),
        len(data.classes),
    )
    return data, norm


def split_of_model(model_path: str, split: str = "test", data_dir: str | None = None) -> tuple[Any, Any]:
    """(windows, labels) of a split, rebuilt from the data spec recorded in an ONNX model's metadata.

    Export gates use this to measure on the real windows the model was tested on, not on a
    handful of golden ones. ``data_dir`` points at the data when it lives elsewhere on this host.
    """
    from runtime.artifact import read_onnx_metadata
    from runtime.errors import ConfigError

    meta = read_onnx_metadata(model_path)
    raw = meta.training.get("data_spec")
    if not raw:
        raise ConfigError(f"{model_path} records no data spec; pass --windows with an npz of windows instead")
    spec = DataSpec.from_dict(raw)
    if data_dir is not None:
        spec.path = data_dir
    data, _ = prepare(spec)
    ws = getattr(data, split)
    return ws.x, ws.y
