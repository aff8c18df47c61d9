"""Validation of user DQL (the platform's query language) before it is sent.

Subsets and filters come from users (pipeline variables, node inputs, compare configs). They are
data, never code: this module only walks the JSON and checks that every operator is one the
platform understands, so a typo fails with a message naming the field instead of silently
matching nothing. Used by Create New Model (train/validation subsets) and Compare Models
(``test_subset``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: DQL operators the platform understands (logical ones combine conditions).
LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor", "$not"})
COMPARISON_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$match"})
DQL_EXAMPLE = '{"filter": {"metadata.system.tags.train": true}}'

__all__ = ["COMPARISON_OPERATORS", "LOGICAL_OPERATORS", "check_dql_condition"]


def check_dql_condition(condition: Any, path: str) -> None:
    """Check a DQL condition: logical operators and field names mapping to values or operator objects.

    Raises ``ValueError`` naming the dotted ``path`` inside the filter, the bad value and the
    fix; nothing is sent anywhere, so a user's DQL is rejected before any request.

    Examples
    --------
    >>> check_dql_condition({"$and": [{"metadata.system.tags.test": True}]}, "test_subset.filter")
    >>> check_dql_condition({"name": {"$regexx": "a"}}, "test_subset.filter")
    Traceback (most recent call last):
    ...
    ValueError: test_subset.filter.name.$regexx: '$regexx' is not a supported operator here; use one of $eq, $exists, $gt, $gte, $in, $lt, $lte, $match, $ne, $nin, $not
    """
    if not isinstance(condition, Mapping):
        raise ValueError(f"{path}: {condition!r} is not an object of conditions; example: {DQL_EXAMPLE}")
    for key, value in condition.items():
        key_path = f"{path}.{key}"
        if not isinstance(key, str) or not key:
            raise ValueError(f"{path}: {key!r} is not a field name")
        if key.startswith("$"):
            if key in ("$and", "$or", "$nor"):
                if not isinstance(value, list) or not value:
                    raise ValueError(f"{key_path}: {value!r} is not a non-empty list of conditions")
                for index, sub in enumerate(value):
                    check_dql_condition(sub, f"{key_path}[{index}]")
            elif key == "$not":
                check_dql_condition(value, key_path)
            else:
                raise ValueError(_operator_error(key_path, key, LOGICAL_OPERATORS))
        else:
            _check_field_value(value, key_path)


def _check_field_value(value: Any, path: str) -> None:
    """A field's value: a plain value, a list, a nested field object or an operator object."""
    if isinstance(value, list):
        for index, element in enumerate(value):
            _check_field_value(element, f"{path}[{index}]")
        return
    if not isinstance(value, Mapping):
        return
    for key, operand in value.items():
        key_path = f"{path}.{key}"
        if not isinstance(key, str) or not key:
            raise ValueError(f"{path}: {key!r} is not a field name")
        if not key.startswith("$"):
            _check_field_value(operand, key_path)  # nested field, e.g. {"metadata": {"system": ...}}
        elif key == "$not":
            _check_field_value(operand, key_path)
        elif key not in COMPARISON_OPERATORS:
            raise ValueError(_operator_error(key_path, key, COMPARISON_OPERATORS | {"$not"}))
        elif key in ("$in", "$nin") and not isinstance(operand, list):
            raise ValueError(f'{key_path}: {operand!r} is not a list; example: {{"{key}": ["a", "b"]}}')
        elif key == "$exists" and not isinstance(operand, bool):
            raise ValueError(f"{key_path}: {operand!r} is not true or false")
        elif key == "$match" and not isinstance(operand, str):
            raise ValueError(f'{key_path}: {operand!r} is not a regular expression string; example: "^cat"')
        elif key in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte") and isinstance(operand, Mapping | list):
            raise ValueError(f"{key_path}: {operand!r} is not a plain value; compare with a string, number or boolean")


def _operator_error(path: str, operator: str, allowed: frozenset[str]) -> str:
    return f"{path}: {operator!r} is not a supported operator here; use one of {', '.join(sorted(allowed))}"
