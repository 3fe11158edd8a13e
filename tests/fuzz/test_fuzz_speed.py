"""Fuzz the shaft-speed parser: any payload on a speed topic is a finite rpm >= 0 or a DataError.

A speed topic is written by drives, PLC bridges and gateways the daemon does not control; a payload
that escaped the parser with another exception would end the speed listener's network thread.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from runtime.diagnostics.speed import parse_speed
from runtime.errors import DataError
from tests.fuzz.support import FUZZ, json_text, nested

FIELDS = st.one_of(st.none(), st.sampled_from(["rpm", "a.b", "drive.axes.0.rpm", "0", "rpm.0.x"]))


@FUZZ
@given(payload=st.one_of(st.binary(max_size=300), json_text(max_depth=50).map(str.encode),
                         st.integers(min_value=0, max_value=3000).map(lambda d: nested(d).encode())),
       field=FIELDS, scale=st.floats(min_value=1e-3, max_value=1e3))
def test_the_speed_parser_is_total(payload: bytes, field: str | None, scale: float) -> None:
    try:
        rpm = parse_speed(payload, field, scale)
    except DataError:
        return
    assert isinstance(rpm, float) and math.isfinite(rpm) and rpm >= 0
