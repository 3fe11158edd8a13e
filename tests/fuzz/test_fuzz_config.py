"""Fuzz the config loader: any file gives a DaemonConfig or a ConfigError, never anything else.

``validate-config`` is the systemd unit's ExecStartPre: a traceback there tells the operator
nothing. Inputs: random text and bytes (bad UTF-8), the shipped example configs with lines
dropped, repeated and overwritten, deep nesting, huge numbers and environment references.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from runtime.config import DaemonConfig, load_config, parse_config_text
from runtime.errors import ConfigError
from tests.fuzz.support import FUZZ, json_text, nested

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "deploy" / "examples").glob("*.yaml"))
EXAMPLE_LINES = [p.read_text().splitlines() for p in EXAMPLES]
_DIR = Path(tempfile.mkdtemp(prefix="drsn-fuzz-config-"))
ENV = {"BROKER": "localhost", "EMPTY": ""}


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    """One of the shipped configs with a few lines dropped, repeated or overwritten."""
    lines = list(draw(st.sampled_from(EXAMPLE_LINES)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "repeat", "replace", "env", "number"]))
        if op == "drop":
            del lines[i]
        elif op == "repeat":
            lines.insert(i, lines[i])
        elif op == "replace":
            lines[i] = draw(st.text(max_size=40))
        elif op == "env":
            lines[i] = lines[i] + draw(st.sampled_from([" ${NOPE}", " ${BROKER}", " ${EMPTY:-x}", " ${"]))
        else:
            head = lines[i].split(":", 1)[0]
            value = draw(st.sampled_from(["1e400", "-1", "nan", ".inf", "9" * 5000, "[]", "{}"]))
            lines[i] = f"{head}: {value}"
        if not lines:
            break
    return "\n".join(lines) + "\n"


texts = st.one_of(
    mutated_examples(),
    st.text(max_size=300),
    st.integers(1, 3_000).map(nested),
    st.integers(1, 60).map(lambda d: "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, d + 1))),
    st.integers(1, 3_000).map(lambda d: "{" * d + "}" * d),
)


def _check(data: bytes, suffix: str) -> None:
    path = _DIR / f"config{suffix}"
    path.write_bytes(data)
    try:
        cfg = load_config(path, env=ENV)
    except ConfigError:
        return
    assert isinstance(cfg, DaemonConfig)


@FUZZ
@given(st.one_of(texts, json_text(max_depth=60)).map(lambda t: t.encode("utf-8")) | st.binary(max_size=300),
       st.sampled_from([".yaml", ".toml", ".json"]))
def test_config_files_load_or_raise_config_error(data: bytes, suffix: str) -> None:
    """Read, substitute, parse and validate, exactly as ``run`` and ``validate-config`` do."""
    _check(data, suffix)


def test_nesting_beyond_the_recursion_limit_is_a_config_error() -> None:
    for suffix in (".yaml", ".json", ".toml"):
        _check(nested(1_100).encode(), suffix)


def test_duplicate_keys_are_config_errors_naming_the_key_and_lines() -> None:
    text = "model: a.onnx\nmqtt:\n  host: broker-a\n  port: 1883\n  host: broker-b\n"
    try:
        parse_config_text(text, ".yaml")
    except ConfigError as exc:
        assert "'host' appears twice" in str(exc) and "line 5" in str(exc) and "line 3" in str(exc)
    else:
        raise AssertionError("a duplicate YAML key must be an error, not last-wins")
    try:
        parse_config_text('{"model": "a.onnx", "model": "b.onnx"}', ".json")
    except ConfigError as exc:
        assert "'model' appears twice" in str(exc)
    else:
        raise AssertionError("a duplicate JSON key must be an error, not last-wins")
    # a YAML merge key may be overridden: that is not a duplicate
    assert parse_config_text("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n", ".yaml")["c"] == {"b": 2}


def test_a_config_file_that_is_not_utf8_is_a_config_error() -> None:
    path = _DIR / "latin1.yaml"
    path.write_bytes("model: m\xe9.onnx\n".encode("latin-1"))
    try:
        load_config(path)
    except ConfigError as exc:
        assert "not UTF-8" in str(exc)
    else:
        raise AssertionError("bad UTF-8 must be a ConfigError")
