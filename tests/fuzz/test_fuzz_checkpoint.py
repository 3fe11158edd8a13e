"""Fuzz the checkpoint reader: a file loads or raises ModelFileError naming it, never anything else.

`drsn-edge export`, `calibrate`, `evaluate` and `train --init` all start by reading a checkpoint;
a damaged or foreign one must be refused with the file's name and the fix, not with a pydantic
or torch traceback. Inputs: the packaged simulator checkpoint with top-level fields or metadata
fields replaced by values of the wrong type, or dropped.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from export.checkpoint_format import load_checkpoint
from runtime.errors import ModelFileError
from tests.fuzz.support import EXAMPLES, FUZZ

REPO = Path(__file__).resolve().parents[2]
REAL: dict[str, Any] = torch.load(
    REPO / "drsn_edge" / "assets" / "drsn_cw_sim.pt", map_location="cpu", weights_only=True
)
TOP = sorted(k for k in REAL if k not in ("format",))
META = sorted(REAL["metadata"])
_DIR = Path(tempfile.mkdtemp(prefix="drsn-fuzz-ckpt-"))

odd = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
    st.lists(st.integers(-2, 9), max_size=3), st.builds(dict),
    st.builds(lambda n: torch.zeros(n), st.integers(0, 3)),
)


def _load(doc: dict[str, Any]) -> None:
    path = _DIR / "fuzz.pt"
    torch.save(doc, path)
    with contextlib.suppress(ModelFileError):
        load_checkpoint(path)


def _mutate(data: st.DataObject, target: dict[str, Any], keys: list[str]) -> None:
    key = data.draw(st.sampled_from(keys))
    if data.draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = data.draw(odd)


# torch.save per example: a few hundred cover every field with every kind of odd value
@settings(FUZZ, max_examples=max(1, EXAMPLES // 40))
@given(st.data())
def test_a_damaged_checkpoint_loads_or_is_refused_with_a_model_file_error(data: st.DataObject) -> None:
    meta = dict(REAL["metadata"])
    for _ in range(data.draw(st.integers(0, 2))):  # metadata fields first: a top-level change may drop it
        _mutate(data, meta, META)
    doc = {**REAL, "metadata": meta}
    for _ in range(data.draw(st.integers(0, 2))):
        _mutate(data, doc, TOP)
    _load(doc)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("metadata", {**REAL["metadata"], "classes": "normal"}, "classes"),
        ("state_dict", [1, 2], "state_dict"),
        ("golden_inputs", [[0.0]], "golden_inputs"),
        ("model_kwargs", None, "model_kwargs"),
        ("version", "1", "version"),
    ],
)
def test_a_wrong_typed_field_is_named_with_the_fix(
    field: str, value: Any, named: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.pt"
    torch.save({**REAL, field: value}, path)
    with pytest.raises(ModelFileError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg and named in msg and "drsn-edge train" in msg


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    doc = {k: v for k, v in REAL.items() if k != "model_name"}
    torch.save(doc, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="missing 'model_name'"):
        load_checkpoint(tmp_path / "bad.pt")


def test_the_real_checkpoint_still_loads() -> None:
    ckpt = load_checkpoint(REPO / "drsn_edge" / "assets" / "drsn_cw_sim.pt")
    assert ckpt.metadata.classes == ["normal", "ball", "inner_race", "outer_race"]
