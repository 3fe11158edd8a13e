"""Shared settings of the parser fuzz tests.

Every parser must answer any input with a value or the project's own error. The suite runs
10,000 cases per property by default (the CI figure); ``DRSN_FUZZ_EXAMPLES`` lowers it for a
quick local run or raises it for a long one. No example database is written: a failure prints
the input that caused it, and CI machines keep nothing between runs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("DRSN_FUZZ_EXAMPLES", "10000"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    """``depth`` levels of nesting: the shape that overflowed the JSON parsers' recursion."""
    return open_ * depth + close * depth


def json_text(max_depth: int = 3_000) -> st.SearchStrategy[str]:
    """Small JSON-like documents, nesting up to ``max_depth``, huge integers, NaN/Infinity literals."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
    )
    import json

    docs = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)), max_leaves=20)
    return st.one_of(
        docs.map(json.dumps),
        st.integers(min_value=1, max_value=max_depth).map(nested),
        st.integers(min_value=1, max_value=max_depth).map(lambda d: '{"a":' * d + "1" + "}" * d),
        st.integers(min_value=4_000, max_value=6_000).map(
            lambda n: '{"seq": 1, "samples": [' + "9" * n + "]}"),
        st.sampled_from(["NaN", "Infinity", "-Infinity", '{"seq": 1, "samples": [NaN]}',
                         '{"seq": 1, "samples": [1e400]}', '{"seq": 1e400, "samples": [1]}']),
        st.text(max_size=200),
    )
