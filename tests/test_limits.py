"""nodes/common/limits.py: hostile JSON is refused with the path, never a RecursionError."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes.common.limits import MAX_BYTES, MAX_DEPTH, check_json_value, shorten


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_depth_limit_is_exact():
    check_json_value(_nested(MAX_DEPTH), "cfg")
    with pytest.raises(ValueError, match=rf"nested deeper than {MAX_DEPTH} levels"):
        check_json_value(_nested(MAX_DEPTH + 1), "cfg")


def test_absurd_depth_is_a_value_error_with_a_short_message():
    with pytest.raises(ValueError) as error:
        check_json_value(_nested(200_000), "cfg")
    assert len(str(error.value)) <= 1000 and str(error.value).startswith("cfg[0]")


def test_size_limit_is_exact():
    # '"' + text + '"' is len + 2 bytes of compact JSON
    check_json_value("x" * (MAX_BYTES - 2), "cfg")
    with pytest.raises(ValueError, match=r"cfg: 1,000,001 bytes of JSON is over the 1,000,000-byte limit"):
        check_json_value("x" * (MAX_BYTES - 1), "cfg")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_name_their_path(bad):
    with pytest.raises(ValueError, match=r"^cfg\.a\.b\[1\]: (nan|inf|-inf) is not a JSON number"):
        check_json_value({"a": {"b": [0, bad]}}, "cfg")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "x"}, r"cfg: key 1 is not a string"),
        ({"a": {1, 2}}, r"cfg\.a: a set .* is not JSON"),
        ({"a": 10**400}, r"cfg\.a: an integer of \d+ bits is too large"),
        ({"k" * 100_000: math.nan}, r"^cfg\.k+\.\.\.k+: nan"),
    ],
)
def test_other_hostile_values(value, message):
    with pytest.raises(ValueError, match=message) as error:
        check_json_value(value, "cfg")
    assert len(str(error.value)) <= 1000


def test_shorten_cuts_long_values():
    assert shorten("abc") == "'abc'"
    assert len(shorten("x" * 10_000)) == 200 and shorten("x" * 10_000).endswith("...")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(json_values)
def test_every_small_finite_json_value_passes(value):
    check_json_value(value, "cfg")
