"""Validation of user DQL (the platform's query language) before it is sent.

Subsets and filters come from users (pipeline variables, node inputs, compare configs): data,
never code. This module walks the JSON and checks that every operator and query part is one the
platform documents, so a typo fails with a ``ValueError`` naming the path instead of silently
matching nothing. Used by Create New Model (train/validation subsets), Compare Models
(``test_subset``) and Select for Labeling (``pool``). What is accepted, and the source of each
form, is listed in docs/nodes.md ("User DQL"). Paths and values quoted in messages are cut
(``nodes.common.limits``), so no message exceeds ``MAX_MESSAGE_CHARS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.common.limits import join_path, short_path, shorten

#: DQL operators the platform understands (logical ones combine conditions).
LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor", "$not"})
COMPARISON_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$match"})
DQL_EXAMPLE = '{"filter": {"metadata.system.tags.train": true}}'
#: The parts of a DQL query that select documents (``page``, ``pageSize``, ``sort`` and
#: ``resource`` only page and order them).
QUERY_PARTS = ("filter", "join", "intersect", "except")
#: Keys of a ``join`` (``dtlpy/entities/filters.py``, ``add_join``) and of its ``on``.
JOIN_KEYS = frozenset({"filter", "on"})
JOIN_ON_KEYS = frozenset({"resource", "local", "forigen"})
_SET_EXAMPLE = '{"except": {"query": {"join": {"filter": {"label": "person"}}}}}'
_LOGICAL_EXAMPLE = '{"$and": [{"hidden": false}, {"metadata.system.tags.train": true}]}'
_FIELD_NAME_FIX = 'use a non-empty field name; example: {"metadata.system.tags.train": true}'

__all__ = [
    "COMPARISON_OPERATORS",
    "LOGICAL_OPERATORS",
    "QUERY_PARTS",
    "check_dql_condition",
    "check_dql_query",
]


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
        raise _error(path, f"{shorten(condition)} is not an object of conditions; example: {DQL_EXAMPLE}")
    for key, value in condition.items():
        if not isinstance(key, str) or not key:
            raise _error(path, f"{shorten(key)} is not a field name; {_FIELD_NAME_FIX}")
        key_path = join_path(path, key)
        if key.startswith("$"):
            if key in ("$and", "$or", "$nor"):
                if not isinstance(value, list) or not value:
                    raise _error(
                        key_path,
                        f"{shorten(value)} is not a non-empty list of conditions; "
                        f"example: {_LOGICAL_EXAMPLE.replace('$and', key)}",
                    )
                for index, sub in enumerate(value):
                    check_dql_condition(sub, join_path(key_path, index))
            elif key == "$not":
                check_dql_condition(value, key_path)
            else:
                raise _operator_error(key_path, key, LOGICAL_OPERATORS)
        else:
            _check_field_value(value, key_path)


def _check_field_value(value: Any, path: str) -> None:
    """A field's value: a plain value, a list, a nested field object or an operator object."""
    if isinstance(value, list):
        for index, element in enumerate(value):
            _check_field_value(element, join_path(path, index))
        return
    if not isinstance(value, Mapping):
        return
    for key, operand in value.items():
        if not isinstance(key, str) or not key:
            raise _error(path, f"{shorten(key)} is not a field name; {_FIELD_NAME_FIX}")
        key_path = join_path(path, key)
        if not key.startswith("$"):
            _check_field_value(operand, key_path)  # nested field, e.g. {"metadata": {"system": ...}}
        elif key == "$not":
            _check_field_value(operand, key_path)
        elif key not in COMPARISON_OPERATORS:
            raise _operator_error(key_path, key, COMPARISON_OPERATORS | {"$not"})
        elif key in ("$in", "$nin") and not isinstance(operand, list):
            raise _error(key_path, f'{shorten(operand)} is not a list; example: {{"{key}": ["a", "b"]}}')
        elif key == "$exists" and not isinstance(operand, bool):
            raise _error(key_path, f'{shorten(operand)} is not true or false; example: {{"$exists": true}}')
        elif key == "$match" and isinstance(operand, Mapping):
            _check_element_conditions(operand, key_path)
        elif key == "$match" and not isinstance(operand, str):
            raise _error(
                key_path,
                f"{shorten(operand)} is not a regular expression string or an object of element conditions; "
                'examples: "^cat", {"id": "<task id>", "metadata": {"status": {"$exists": true}}}',
            )
        elif key in ("$gt", "$gte", "$lt", "$lte") and isinstance(operand, Mapping | list):
            raise _error(
                key_path,
                f"{shorten(operand)} is not a plain value; compare with a string, number or boolean; "
                f'example: {{"{key}": 10}}',
            )
        elif key in ("$eq", "$ne") and isinstance(operand, Mapping):
            raise _error(
                key_path,
                f'{shorten(operand)} is not a plain value or a list; compare with a value; example: {{"{key}": "cat"}}',
            )


def _check_element_conditions(operand: Mapping, path: str) -> None:
    """``$match`` with an object: field conditions on the element, or operators on a scalar element."""
    if any(isinstance(k, str) and k in COMPARISON_OPERATORS for k in operand):
        _check_field_value(operand, path)
    else:
        check_dql_condition(operand, path)


def check_dql_query(query: Any, path: str, allowed: tuple[str, ...] = QUERY_PARTS) -> None:
    """Check the parts of a DQL query that select documents: ``filter``, ``join``, ``intersect``, ``except``.

    ``allowed`` lists the keys the caller accepts (other keys, e.g. ``page``, are the caller's to
    check). ``intersect`` / ``except`` hold ``{"query": {...}}``, a query checked the same way
    (its ``filter`` may be left out, as in the cookbook's ``except`` example).

    Raises
    ------
    ValueError
        Naming the dotted path of the bad part, the bad value and the fix.

    Examples
    --------
    >>> check_dql_query({"filter": {"type": "file"}, "except": {"query": {"join": {"filter": {"label": "person"}}}}}, "q")
    >>> check_dql_query({"filter": {}, "intersect": {"filter": {}}}, "q")
    Traceback (most recent call last):
    ...
    ValueError: q.intersect: {'filter': {}} is not {"query": {...}}; example: {"except": {"query": {"join": {"filter": {"label": "person"}}}}}
    """
    if not isinstance(query, Mapping):
        raise _error(path, f"{shorten(query)} is not a DQL query object; example: {DQL_EXAMPLE}")
    for key in query:
        if key not in allowed:
            raise _error(
                path,
                f"unknown query key {shorten(key)}; a query has {', '.join(allowed)}: remove or rename it; "
                f"example: {DQL_EXAMPLE}",
            )
    if "filter" in query:
        check_dql_condition(query["filter"], join_path(path, "filter"))
    if "join" in query:
        join = query["join"]
        join_at = join_path(path, "join")
        if not isinstance(join, Mapping) or not set(join) <= JOIN_KEYS:
            raise _error(
                join_at,
                f'{shorten(join)} is not {{"filter": ..., "on": ...}}; example: {{"filter": {{"label": "cat"}}}}',
            )
        if "filter" in join:
            check_dql_condition(join["filter"], join_path(join_at, "filter"))
        on = join.get("on")
        if on is not None and (not isinstance(on, Mapping) or not set(on) <= JOIN_ON_KEYS):
            raise _error(
                join_path(join_at, "on"),
                f'{shorten(on)} is not {{"resource", "local", "forigen"}}; '
                'example: {"resource": "annotations", "local": "itemId", "forigen": "id"}',
            )
    for key in ("intersect", "except"):
        if key in query:
            part = query[key]
            if not isinstance(part, Mapping) or set(part) != {"query"}:
                raise _error(
                    join_path(path, key), f'{shorten(part)} is not {{"query": {{...}}}}; example: {_SET_EXAMPLE}'
                )
            check_dql_query(part["query"], join_path(join_path(path, key), "query"), QUERY_PARTS)


def _error(path: str, problem: str) -> ValueError:
    """``<path>: <problem>`` with the path cut to ``MAX_PATH_CHARS`` (values are cut by the caller)."""
    return ValueError(f"{short_path(path)}: {problem}")


def _operator_error(path: str, operator: str, allowed: frozenset[str]) -> ValueError:
    return _error(
        path, f"{shorten(operator)} is not a supported operator here; use one of {', '.join(sorted(allowed))}"
    )
