"""Fuzz the model-metadata readers: a document parses or raises ModelFileError, never anything else.

The metadata decides classes, rate and window on the device, and its golden windows gate every
backend at load, so a corrupt or hostile model file must be refused with a message, not crash the
daemon (or its reload) with a traceback. Inputs: the packaged model's real document with values
replaced, keys dropped and bytes cut; random JSON, deep nesting and huge numbers; engine-file
headers with any length and content.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from runtime.artifact import _LEN, ENGINE_MAGIC, Golden, ModelMetadata, read_engine_file, read_onnx_metadata
from runtime.errors import ModelFileError
from tests.fuzz.support import FUZZ, json_text

REPO = Path(__file__).resolve().parents[2]
#: the packaged model's document with its free-form training summary cut short and golden windows of
#: two times four samples: the real ones are 100 KB of text that every example would copy and
#: re-encode, for no extra coverage of the parser
REAL = json.loads(read_onnx_metadata(REPO / "drsn_edge" / "assets" / "drsn_cw_sim.onnx").model_copy(
    update={"golden": Golden.from_arrays(np.zeros((2, 1, 4), np.float32), np.zeros((2, 4), np.float32)),
            "training": {"epochs": 1, "metrics": {"accuracy": 0.99}}}
).to_json())
_DIR = Path(tempfile.mkdtemp(prefix="drsn-fuzz-meta-"))

# st.builds(dict): a fresh {} each draw; one shared object placed at two paths could be nested into
# itself and make the generator's own json.dumps fail
odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.lists(st.integers(-3, 5000), max_size=4), st.builds(dict),
    st.sampled_from(["AAAA", "!!not base64", "", "fp16", "NCHW"]),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    return out


PATHS = _paths(REAL)[1:]


@st.composite
def mutated_real(draw: st.DrawFn) -> str:
    """The packaged model's metadata with a few values replaced or keys dropped."""
    doc = json.loads(json.dumps(REAL))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = doc
        for k in path[:-1]:
            parent = parent.get(k) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(odd_values)
    text = json.dumps(doc)
    cut = draw(st.one_of(st.just(len(text)), st.integers(0, len(text))))
    return text[:cut]


def _total_metadata(text: str | bytes) -> None:
    try:
        meta = ModelMetadata.from_json(text, source="fuzz")
    except ModelFileError:
        return
    assert isinstance(meta, ModelMetadata)
    if meta.golden is not None:  # what every backend decodes at load for its golden gate
        try:
            x, y = meta.golden.arrays()
            meta.golden.features()
        except ModelFileError:
            return
        assert x.shape[0] == y.shape[0] == meta.golden.shape[0]


engine_files = st.one_of(
    st.builds(lambda n, body: ENGINE_MAGIC + _LEN.pack(n) + body, st.integers(0, 2**32 - 1),
              st.binary(max_size=200)),
    st.builds(lambda doc, tail: ENGINE_MAGIC + _LEN.pack(len(doc.encode())) + doc.encode() + tail,
              st.one_of(mutated_real().map(lambda m: '{"model": ' + m + ', "engine": {}}'), json_text(60)),
              st.binary(max_size=16)),
)


@FUZZ
@given(st.one_of(
    mutated_real(), json_text(), json_text().map(lambda t: t.encode()), st.binary(max_size=200),
    engine_files.map(lambda data: ("engine", data)),
))
def test_metadata_parses_or_raises_model_file_error(case: str | bytes | tuple[str, bytes]) -> None:
    """A metadata document (ONNX metadata_props) or an engine file's header."""
    if not isinstance(case, tuple):
        _total_metadata(case)
        return
    path = _DIR / "model.engine"
    path.write_bytes(case[1])
    with contextlib.suppress(ModelFileError):
        read_engine_file(path)


def test_an_empty_input_shape_is_a_model_file_error() -> None:
    """Found by this fuzz: ``input.shape: []`` raised IndexError inside the metadata's own check."""
    doc = json.loads(json.dumps(REAL))
    doc["input"]["shape"] = []
    try:
        ModelMetadata.from_json(json.dumps(doc), source="fuzz")
    except ModelFileError as exc:
        assert "input.shape" in str(exc)
    else:
        raise AssertionError("an input without a shape is not a model")
