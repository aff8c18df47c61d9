"""Validation of user DQL (the platform's query language) before it is sent.

Subsets and filters come from users (pipeline variables, node inputs, compare configs). They are
data, never code: this module only walks the JSON and checks that every operator is one the
platform understands, so a typo fails with a message naming the field instead of silently
matching nothing. Used by Create New Model (train/validation subsets), Compare Models
(``test_subset``) and Select for Labeling (``pool``).

What is accepted is what the Dataloop documentation shows, and nothing it does not:

- operators: dtlpy's ``FiltersOperations`` (``dtlpy/entities/filters.py``: ``$eq $ne $gt $gte $lt
  $lte $in $nin $exists $match`` and ``$and`` / ``$or``), https://docs.dataloop.ai/docs/dql-operators;
  ``$nor`` and ``$not`` as before (MongoDB's, which the platform's DQL follows: an assumption);
- values: plain values, lists (array equality, the cookbook's ``annotationStatus`` example),
  wildcard strings (``"video*"``, https://docs.dataloop.ai/docs/api-dql), objects of conditions on
  an array of objects (the cookbook's ``metadata.system.refs`` example);
- ``$match``: a pattern string, or an object of element conditions (``dtlpy/repositories/tasks.py``
  and the cookbook's "Check Remaining Items in Task");
- query parts (:func:`check_dql_query`): ``filter``, ``join`` (``{"filter", "on"}``,
  https://docs.dataloop.ai/docs/dql-operators) and ``intersect`` / ``except`` (``{"query": {...}}``,
  the DQL cookbook: dtlpy-documentation
  ``tutorials/data_management/dataloop_query_language/more_examples/chapter.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.common.limits import shorten

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
        raise ValueError(f"{path}: {shorten(condition)} is not an object of conditions; example: {DQL_EXAMPLE}")
    for key, value in condition.items():
        key_path = f"{path}.{key}"
        if not isinstance(key, str) or not key:
            raise ValueError(f"{path}: {shorten(key)} is not a field name; {_FIELD_NAME_FIX}")
        if key.startswith("$"):
            if key in ("$and", "$or", "$nor"):
                if not isinstance(value, list) or not value:
                    raise ValueError(
                        f"{key_path}: {shorten(value)} is not a non-empty list of conditions; "
                        f"example: {_LOGICAL_EXAMPLE.replace('$and', key)}"
                    )
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
            raise ValueError(f"{path}: {shorten(key)} is not a field name; {_FIELD_NAME_FIX}")
        if not key.startswith("$"):
            _check_field_value(operand, key_path)  # nested field, e.g. {"metadata": {"system": ...}}
        elif key == "$not":
            _check_field_value(operand, key_path)
        elif key not in COMPARISON_OPERATORS:
            raise ValueError(_operator_error(key_path, key, COMPARISON_OPERATORS | {"$not"}))
        elif key in ("$in", "$nin") and not isinstance(operand, list):
            raise ValueError(f'{key_path}: {shorten(operand)} is not a list; example: {{"{key}": ["a", "b"]}}')
        elif key == "$exists" and not isinstance(operand, bool):
            raise ValueError(f'{key_path}: {shorten(operand)} is not true or false; example: {{"$exists": true}}')
        elif key == "$match" and isinstance(operand, Mapping):
            _check_element_conditions(operand, key_path)
        elif key == "$match" and not isinstance(operand, str):
            raise ValueError(
                f'{key_path}: {shorten(operand)} is not a regular expression string or an object of element conditions; examples: "^cat", '
                '{"id": "<task id>", "metadata": {"status": {"$exists": true}}}'
            )
        elif key in ("$gt", "$gte", "$lt", "$lte") and isinstance(operand, Mapping | list):
            raise ValueError(
                f"{key_path}: {shorten(operand)} is not a plain value; compare with a string, number or boolean; "
                f'example: {{"{key}": 10}}'
            )
        elif key in ("$eq", "$ne") and isinstance(operand, Mapping):
            raise ValueError(
                f"{key_path}: {shorten(operand)} is not a plain value or a list; compare with a value; "
                f'example: {{"{key}": "cat"}}'
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
        raise ValueError(f"{path}: {shorten(query)} is not a DQL query object; example: {DQL_EXAMPLE}")
    for key in query:
        if key not in allowed:
            raise ValueError(
                f"{path}: unknown query key {shorten(key)}; a query has {', '.join(allowed)}: remove or rename it; "
                f"example: {DQL_EXAMPLE}"
            )
    if "filter" in query:
        check_dql_condition(query["filter"], f"{path}.filter")
    if "join" in query:
        join = query["join"]
        if not isinstance(join, Mapping) or not set(join) <= JOIN_KEYS:
            raise ValueError(
                f'{path}.join: {shorten(join)} is not {{"filter": ..., "on": ...}}; example: {{"filter": {{"label": "cat"}}}}'
            )
        if "filter" in join:
            check_dql_condition(join["filter"], f"{path}.join.filter")
        on = join.get("on")
        if on is not None and (not isinstance(on, Mapping) or not set(on) <= JOIN_ON_KEYS):
            raise ValueError(
                f'{path}.join.on: {shorten(on)} is not {{"resource", "local", "forigen"}}; '
                'example: {"resource": "annotations", "local": "itemId", "forigen": "id"}'
            )
    for key in ("intersect", "except"):
        if key in query:
            part = query[key]
            if not isinstance(part, Mapping) or set(part) != {"query"}:
                raise ValueError(f'{path}.{key}: {shorten(part)} is not {{"query": {{...}}}}; example: {_SET_EXAMPLE}')
            check_dql_query(part["query"], f"{path}.{key}.query", QUERY_PARTS)


def _operator_error(path: str, operator: str, allowed: frozenset[str]) -> str:
    return f"{path}: {shorten(operator)} is not a supported operator here; use one of {', '.join(sorted(allowed))}"
