"""nodes/common/limits.py: hostile JSON is refused with the path, never a RecursionError."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes.common.limits import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_KEY_CHARS,
    MAX_PATH_CHARS,
    DuplicateKeyError,
    check_json_value,
    join_path,
    no_duplicate_keys,
    short_path,
    shorten,
)


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
        ({"k" * 100_000: math.nan}, r"^cfg\.k{61}\.\.\.: nan"),
    ],
)
def test_other_hostile_values(value, message):
    with pytest.raises(ValueError, match=message) as error:
        check_json_value(value, "cfg")
    assert len(str(error.value)) <= 1000


def test_shorten_cuts_long_values():
    assert shorten("abc") == "'abc'"
    assert len(shorten("x" * 10_000)) == 200 and shorten("x" * 10_000).endswith("...")


def test_short_path_keeps_start_and_end():
    path = "a" * 300 + "b" * 300
    assert short_path(path) == "a" * 198 + "..." + "b" * 198 and len(short_path(path)) == 399
    assert short_path("x" * MAX_PATH_CHARS) == "x" * MAX_PATH_CHARS  # at the limit: whole
    assert short_path("x" * (MAX_PATH_CHARS + 1)) != "x" * (MAX_PATH_CHARS + 1)


def test_join_path_cuts_long_keys_and_long_paths():
    assert join_path("cfg", "k" * MAX_KEY_CHARS) == "cfg." + "k" * MAX_KEY_CHARS  # at the limit: whole
    assert join_path("cfg", "k" * (MAX_KEY_CHARS + 1)) == "cfg." + "k" * (MAX_KEY_CHARS - 3) + "..."
    assert join_path("cfg", 7) == "cfg[7]" and join_path("cfg", True) == "cfg.True"
    path = "cfg"
    for _ in range(1000):
        path = join_path(path, "k" * 100)
        assert len(path) <= MAX_PATH_CHARS
    assert path.startswith("cfg.kkk") and path.endswith("k" * (MAX_KEY_CHARS - 3) + "...")


def test_deep_long_keys_give_a_short_path_naming_start_and_end():
    value: object = [0, math.inf]
    for level in range(40):
        value = {f"L{level}" + "k" * 20_000: value}
    with pytest.raises(ValueError) as error:
        check_json_value(value, "cfg")
    message = str(error.value)
    assert message.startswith("cfg.L39kkk") and "...[1]: inf is not a JSON number" in message
    assert len(message) <= 1000


def test_duplicate_keys_in_json_text_are_refused_at_any_depth():
    assert json.loads('{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}', object_pairs_hook=no_duplicate_keys) == {
        "a": {"a": 1},
        "b": [{"a": 2}, {"a": 3}],
    }
    assert json.loads('{"a": 1, "A": 2}', object_pairs_hook=no_duplicate_keys) == {"a": 1, "A": 2}
    with pytest.raises(DuplicateKeyError) as error:
        json.loads('{"x": [{"min_delta": 0, "min_delta": 1}]}', object_pairs_hook=no_duplicate_keys)
    assert error.value.key == "min_delta" and isinstance(error.value, ValueError)
    assert str(error.value).startswith("key 'min_delta' is given twice in one object; keep one")
    with pytest.raises(DuplicateKeyError) as error:
        json.loads(
            json.dumps({"k" * 10_000: 1})[:-1] + ', "' + "k" * 10_000 + '": 2}', object_pairs_hook=no_duplicate_keys
        )
    assert len(str(error.value)) < 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(json_values)
def test_every_small_finite_json_value_passes(value):
    check_json_value(value, "cfg")
