"""Fuzz the command parser: a command decodes or raises CommandError, and parse_command never raises.

A 2 KB command of 1,000 ``[`` and 1,000 ``]`` once raised RecursionError out of the parser, ended
paho's network thread and with it all event delivery. The properties cover random bytes, JSON
documents of any shape, deep nesting, huge integers, NaN/Infinity, bad UTF-8 and over-size payloads.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from runtime.mqtt.commands import CommandError, decode_command, log_throttle, parse_command
from runtime.mqtt.config import CommandsConfig
from tests.fuzz.support import FUZZ, nested

MAX = 4096
POLICY = CommandsConfig(allow=["reload"], max_payload_bytes=MAX)


def payloads() -> st.SearchStrategy[bytes]:
    """Bytes as an attacker on the command topic would send them."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
    docs = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)
    texts = st.one_of(
        docs.map(json.dumps),
        st.integers(min_value=1, max_value=3_000).map(nested),
        st.integers(min_value=1, max_value=3_000).map(lambda d: '{"action":' * d + '"reload"' + "}" * d),
        st.integers(min_value=4_000, max_value=4_080).map(
            lambda n: '{"action":"reload","n":' + "9" * n + "}"),
        st.sampled_from(["NaN", "Infinity", '{"action":"reload","v":NaN}', '{"action":"reload","v":1e400}']),
        st.text(max_size=64),
    )
    as_bytes = texts.map(lambda t: t.encode("utf-8", "surrogatepass"))
    commands = st.fixed_dictionaries(
        {"action": st.one_of(st.text(max_size=80), st.integers(), st.none(), st.just("reload"))},
        optional={"x": st.integers()},
    ).map(lambda d: json.dumps(d).encode())
    mangle = st.sampled_from([lambda b: b, lambda b: b[: len(b) // 2], lambda b: b + b"\xff\xfe"])
    return st.one_of(
        st.binary(max_size=512),
        st.integers(min_value=0, max_value=3 * MAX).map(lambda n: bytes(range(256)) * (n // 256)),
        st.tuples(st.one_of(as_bytes, commands), mangle).map(lambda pair: pair[1](pair[0])),
        st.integers(min_value=MAX - 40, max_value=2 * MAX).map(
            lambda n: b'{"action":"reload","p":"' + b"a" * n + b'"}'),
    )


def _decoded(data: bytes) -> dict[str, Any] | None:
    try:
        doc = decode_command(data, MAX)
    except CommandError:
        return None
    assert isinstance(doc, dict) and isinstance(doc["action"], str)
    return doc


@FUZZ
@given(payloads(), st.booleans())
def test_the_command_parser_is_total(data: bytes, retained: bool) -> None:
    doc = _decoded(data)
    got = parse_command("p/d/cmd", data, retained=retained, policy=POLICY)  # must never raise
    if got is not None:
        assert got == doc and got["action"] == "reload" and not retained
    if len(data) > MAX:
        assert doc is None


def test_the_payloads_of_the_defect_and_their_relatives_are_refused() -> None:
    log_throttle.reset()
    for data in (nested(1000).encode(), nested(100_000).encode()[:MAX], b'{"action":"reload","n":NaN}',
                 b'{"action":"reload","n":' + b"9" * 5000 + b"}", '{"action":"r\u00e9load"}'.encode(),
                 b'{"action":"' + b"x" * 65 + b'"}', b"\xc3\x28"):
        assert _decoded(data) is None, data[:40]
        assert parse_command("p/d/cmd", data, retained=False) is None
    assert decode_command(b'{"action":"reload","depth":' + nested(14).encode() + b"}") == {
        "action": "reload", "depth": json.loads(nested(14))}
