"""DQL (Dataloop Query Language) matcher of the local platform: a pure module.

:func:`compile_filter` turns the ``filter`` of a query body into a predicate over plain JSON
documents (operators, wildcards, element matches, ``$match`` patterns run by the linear-time
automaton of :mod:`emulator.dql_match`); :func:`sort_key_function` / :func:`sort_documents` sort, and
:func:`split_id_keyset` takes out dtlpy's keyset clause. A malformed filter raises
:class:`DQLError` (HTTP 400). Every rule names its source in its function; the table of rules,
sources and assumptions is in emulator/README.md, "Queries".
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from emulator.dql_match import (  # noqa: F401  (re-exported: the $match automaton's names)
    _VISIT_COST,
    MAX_MATCH_WORK,
    MAX_PATTERN_LENGTH,
    MAX_PROGRAM_SIZE,
    MAX_VARIABLE_QUANTIFIERS,
    DQLError,
    _compile_pattern,
    _Program,
    check_pattern,
)

logger = logging.getLogger(__name__)

Predicate = Callable[[Mapping[str, Any]], bool]

#: Field operators understood by :func:`compile_filter` (dtlpy's ``FiltersOperations``).
FIELD_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$match"})
#: Logical operators understood by :func:`compile_filter`.
LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor", "$not"})
#: Wildcard characters of a field value (https://docs.dataloop.ai/docs/dql-operators, "Wildcards").
WILDCARDS = frozenset("*?")
#: The documented default sort of a DQL query (https://docs.dataloop.ai/docs/api-dql: "Sort is set
#: by default to include the attributes "type": "ascending" and "createdAt": "descending"").
DEFAULT_SORT = {"type": "ascending", "createdAt": "descending"}


class _Missing:
    """Marker of a field absent from the document."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def resolve(doc: Any, path: tuple[str, ...]) -> Any:
    """Value at ``path`` in ``doc``; :data:`MISSING` when absent.

    Arrays met on the way are traversed element-wise (MongoDB style): the result is then the
    flat list of the values found under each element.

    Example
    -------
    >>> resolve({"metadata": {"system": {"tags": {"train": True}}}}, ("metadata", "system", "tags", "train"))
    True
    >>> resolve({"a": [{"b": 1}, {"b": 2}, {}]}, ("a", "b"))
    [1, 2]
    >>> resolve({}, ("a",))
    MISSING
    """
    current = doc
    for index, key in enumerate(path):
        if isinstance(current, Mapping):
            if key not in current:
                return MISSING
            current = current[key]
        elif isinstance(current, list):
            rest = path[index:]
            found: list[Any] = []
            for element in current:
                value = resolve(element, rest)
                if value is MISSING:
                    continue
                if isinstance(value, list):
                    found.extend(value)
                else:
                    found.append(value)
            return found if found else MISSING
        else:
            return MISSING
    return current


def _same_kind(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return True
    return type(a) is type(b) or (isinstance(a, str) and isinstance(b, str))


def values_equal(a: Any, b: Any) -> bool:
    """Platform equality: like ``==`` but ``True`` never equals ``1`` (also inside lists/dicts).

    Example
    -------
    >>> values_equal(1, 1.0), values_equal(True, 1), values_equal([1, True], [1, True])
    (True, False, True)
    """
    if a is None or b is None:
        return a is None and b is None
    if not _same_kind(a, b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return a == b


def is_wildcard(value: Any) -> bool:
    """Whether a field value is a wildcard pattern (a string holding ``*`` or ``?``).

    Source: https://docs.dataloop.ai/docs/dql-operators, "Wildcards '*' and '?' are supported in
    field value: * will match zero or more characters, ? will match one character"; the DQL
    example of https://docs.dataloop.ai/docs/api-dql filters ``"metadata.system.mimetype":
    "video*"``. Assumption: there is no escape for a literal ``*`` or ``?``.

    Example
    -------
    >>> is_wildcard("video*"), is_wildcard("a?c"), is_wildcard("plain"), is_wildcard(3)
    (True, True, False, False)
    """
    return isinstance(value, str) and not WILDCARDS.isdisjoint(value)


@functools.lru_cache(maxsize=256)
def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """The whole-value regular expression of a wildcard pattern.

    ``*`` matches zero or more characters (``/`` included: the cookbook's ``filename: "*.jpg"``
    finds ``/folder/a.jpg``, and dtlpy's recursive ``"/folder/**"`` finds every file under
    ``/folder``), ``?`` exactly one; every other character is literal (``[`` too). Built with
    :func:`fnmatch.translate`, whose atomic groups keep matching linear in the value's length
    whatever the number of stars.

    Example
    -------
    >>> bool(wildcard_regex("video*").match("video/mp4")), bool(wildcard_regex("video*").match("image/png"))
    (True, False)
    >>> bool(wildcard_regex("/folder/**").match("/folder/sub/a.jpg")), bool(wildcard_regex("a?c").match("abbc"))
    (True, False)
    """
    return re.compile(fnmatch.translate(pattern.replace("[", "[[]")))


def _wildcard_predicate(pattern: str) -> Callable[[Any], bool]:
    regex = wildcard_regex(pattern)

    def wildcard_match(value: Any) -> bool:
        if isinstance(value, list):
            return any(isinstance(v, str) and regex.match(v) is not None for v in value)
        return isinstance(value, str) and regex.match(value) is not None

    return wildcard_match


def _equals_predicate(field: str, expected: Any) -> Callable[[Any], bool]:
    """Test of one resolved value against an equality operand (implicit or ``$eq``)."""
    if is_wildcard(expected):
        return _wildcard_predicate(expected)

    def equal(value: Any) -> bool:
        if value is MISSING:
            return expected is None
        if isinstance(value, list) and not isinstance(expected, list):
            return any(values_equal(v, expected) for v in value)
        if isinstance(value, list) and isinstance(expected, list):
            # the whole array, or an element that is this array (cookbook: annotationStatus
            # ["completed"] is "only completed", "completed" is "completed, approved included")
            return values_equal(value, expected) or any(values_equal(v, expected) for v in value)
        return values_equal(value, expected)

    return equal


_NUMBER_TEXT = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*\Z")


def _as_number(text: str) -> float | None:
    """The number a numeric string spells (``"5242880"``), else ``None``."""
    if _NUMBER_TEXT.match(text):
        number = float(text)
        return number if math.isfinite(number) else None
    return None


def _compare(op: str, value: Any, operand: Any) -> bool:
    """``$gt`` / ``$gte`` / ``$lt`` / ``$lte`` of one value.

    Numbers with numbers, strings with strings (ISO dates compare as text, as in the
    ``createdAt`` examples of https://docs.dataloop.ai/docs/dql-operators), booleans with
    booleans. A number and a numeric string compare as numbers: the cookbook (dtlpy-documentation
    ``dataloop_query_language/more_examples``, "Size-Based Sorting") finds files between 0 and
    5 MB with ``metadata.system.size`` ``gt "0"`` and ``lt "5242880"``. Any other pair of kinds
    never matches (assumption: MongoDB's type bracketing).
    """
    if value is MISSING or value is None or operand is None:
        return False
    if isinstance(value, list):
        return any(_compare(op, v, operand) for v in value)
    if isinstance(value, (dict, list)):
        return False
    if not _same_kind(value, operand):
        number_value = isinstance(value, (int, float)) and not isinstance(value, bool)
        number_operand = isinstance(operand, (int, float)) and not isinstance(operand, bool)
        if number_value and isinstance(operand, str):
            operand = _as_number(operand)
        elif number_operand and isinstance(value, str):
            value = _as_number(value)
        else:
            return False
        if value is None or operand is None:
            return False
    try:
        if op == "$gt":
            return value > operand
        if op == "$gte":
            return value >= operand
        if op == "$lt":
            return value < operand
        return value <= operand
    except TypeError:
        return False


def _in_predicate(field: str, operand: list[Any]) -> Callable[[Any], bool]:
    """``$in``: any candidate equals the value (same meaning as ``$or`` of ``$eq``), with sets.

    Strings, numbers and booleans are looked up in one set per kind (so ``True`` never meets
    ``1``); ``None``, NaN, lists, objects and wildcard patterns keep the per-candidate test. A
    1,000-id bulk-update filter then costs one set lookup per document, not 1,000.

    Example
    -------
    >>> test = _in_predicate("a", ["cat", 1, True, None])
    >>> [test(v) for v in ("cat", 1.0, True, MISSING, ["dog", 1], 2, False, "1")]
    [True, True, True, True, True, False, False, False]
    """
    strings: set[str] = set()
    numbers: set[int | float] = set()
    booleans: set[bool] = set()
    slow: list[Callable[[Any], bool]] = []
    for candidate in operand:
        if isinstance(candidate, bool):
            booleans.add(candidate)
        elif isinstance(candidate, str) and not is_wildcard(candidate):
            strings.add(candidate)
        elif isinstance(candidate, (int, float)) and not (isinstance(candidate, float) and math.isnan(candidate)):
            numbers.add(candidate)
        else:
            slow.append(_equals_predicate(field, candidate))

    def scalar_hit(value: Any) -> bool:
        if isinstance(value, bool):
            return value in booleans
        if isinstance(value, str):
            return value in strings
        if isinstance(value, (int, float)):
            return value in numbers
        return False

    def test(value: Any) -> bool:
        if isinstance(value, list):
            if any(scalar_hit(v) for v in value):
                return True
        elif scalar_hit(value):
            return True
        return any(t(value) for t in slow)

    return test


def id_restriction(query: Mapping[str, Any] | None) -> frozenset[str] | None:
    """The ids a filter can match at most, when it requires ``id $in [...]`` at its top level.

    The filter is ``{"id": {"$in": [...]}}`` or an ``$and`` with such a clause (dtlpy's bulk
    update filter, with or without its ``hidden`` / ``type`` clauses). Any match of the filter has
    one of these ids, so a store can test only those documents (with the full filter) instead of
    scanning a dataset. ``None`` when the filter has no such clause.

    Example
    -------
    >>> sorted(id_restriction({"$and": [{"hidden": False}, {"id": {"$in": ["b", "a", 3]}}]}))
    ['a', 'b']
    >>> id_restriction({"$or": [{"id": {"$in": ["a"]}}, {"hidden": True}]}) is None
    True
    """
    if not isinstance(query, Mapping):
        return None
    clauses = query.get("$and") if set(query) == {"$and"} else [query]
    if not isinstance(clauses, list):
        return None
    found: frozenset[str] | None = None
    for clause in clauses:
        if not (isinstance(clause, Mapping) and set(clause) == {"id"} and isinstance(clause["id"], Mapping)):
            continue
        condition = clause["id"]
        if set(condition) != {"$in"} or not isinstance(condition["$in"], list):
            continue
        ids = frozenset(v for v in condition["$in"] if isinstance(v, str))  # an id is a string
        found = ids if found is None else found & ids
    return found


def _pattern_search(operand: str, where: str) -> Callable[[str], bool]:
    """The search function of a ``$match`` string (the pattern searched in the value).

    dtlpy sends ``FiltersOperations.MATCH`` as ``$match`` with the caller's string; the cookbook
    (``more_examples``, "Working with Hidden Items") sends ``filename $match "*.jpg"``, which is
    not a regular expression: a string that does not parse as one but holds ``*`` / ``?`` is
    read as a wildcard pattern (assumption: how the platform reads it is undocumented).
    """
    try:
        return _compile_pattern(operand, where).search
    except re.error as error:
        if is_wildcard(operand):
            regex = wildcard_regex(operand)
            return lambda value: regex.match(value) is not None
        raise DQLError(f"$match at '{where}': invalid pattern {operand!r}: {error}") from None


def _element_match(operand: Mapping[str, Any]) -> Callable[[Any], bool]:
    """``$match`` with an object: an array with one element matching every condition.

    Sources: ``dtlpy/repositories/tasks.py`` (``metadata.system.refs`` ``$match`` ``{"id": task,
    "type": "task", "metadata": {"status": {"$exists": true}}}``) and the cookbook
    (``more_examples``, "Check Remaining Items in Task"). Conditions are on the element's fields;
    an object of only operators (``{"$gt": 1}``) tests scalar elements. A value that is not an
    array never matches (assumption, as MongoDB's ``$elemMatch``).
    """
    if any(isinstance(k, str) and k in FIELD_OPERATORS for k in operand):
        inner = _compile_field(("element",), operand)

        def test_element(element: Any) -> bool:
            return inner({"element": element})

    else:
        sub = compile_filter(operand)

        def test_element(element: Any) -> bool:
            return isinstance(element, Mapping) and sub(element)

    def element_match(value: Any) -> bool:
        return isinstance(value, list) and any(test_element(e) for e in value)

    return element_match


def _field_operator(field: str, op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if op == "$eq":
        return _equals_predicate(field, operand)
    if op == "$ne":
        eq = _equals_predicate(field, operand)
        return lambda value: not eq(value)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if isinstance(operand, (dict, list)):
            raise DQLError(f"{op} at '{where}' needs a number, string or boolean, got {json.dumps(operand)}")
        return lambda value: _compare(op, value, operand)
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise DQLError(f"{op} at '{where}' needs a list, got {json.dumps(operand)}")
        test = _in_predicate(field, operand)
        if op == "$in":
            return test
        return lambda value: not test(value)
    if op == "$exists":
        wanted = bool(operand)
        return lambda value: (value is not MISSING) == wanted
    if op == "$match":
        if isinstance(operand, Mapping):
            return _element_match(operand)
        if not isinstance(operand, str):
            raise DQLError(
                f"$match at '{where}' needs a pattern string or an object of element conditions, "
                f"got {json.dumps(operand)[:200]}"
            )
        search = _pattern_search(operand, where)

        def match(value: Any) -> bool:
            if isinstance(value, list):
                return any(isinstance(v, str) and search(v) for v in value)
            return isinstance(value, str) and search(value)

        return match
    raise DQLError(f"unknown DQL operator '{op}' at '{where}'; supported: {', '.join(sorted(FIELD_OPERATORS))}")


def _object_conditions(path: tuple[str, ...], nested: Mapping[str, Any]) -> Predicate:
    """An object of conditions on the field at ``path`` (``{"refs": {"id": X, "metadata": ...}}``).

    On an object it is the same as the dotted paths; on an array of objects the conditions hold
    together on one element (the cookbook's ``metadata.system.refs`` "keep refs whose id ==
    TASK_ID AND whose status == completed"); a missing field or a scalar is tested as an empty
    object, so that ``$ne`` / ``$exists: false`` below it still match, as on dotted paths.
    """
    sub = compile_filter(nested)
    empty: dict[str, Any] = {}

    def conditions(doc: Mapping[str, Any]) -> bool:
        value = resolve(doc, path)
        if isinstance(value, Mapping):
            return sub(value)
        if isinstance(value, list):
            return any(sub(e if isinstance(e, Mapping) else empty) for e in value)
        return sub(empty)

    return conditions


def _compile_field(path: tuple[str, ...], condition: Any) -> Predicate:
    where = ".".join(path)
    field = where
    if isinstance(condition, Mapping) and condition:
        operators = {k: v for k, v in condition.items() if isinstance(k, str) and k.startswith("$")}
        nested = {k: v for k, v in condition.items() if k not in operators}
        parts: list[Predicate] = []
        if operators:
            if "$not" in operators:
                inner = _compile_field(path, operators.pop("$not"))
                parts.append(lambda doc, inner=inner: not inner(doc))
            for op in operators:
                if op in LOGICAL_OPERATORS:
                    raise DQLError(f"operator '{op}' is not allowed inside field '{where}'")
            tests = [_field_operator(field, op, operand, where) for op, operand in operators.items()]
            if tests:

                def field_test(doc: Mapping[str, Any], tests=tests) -> bool:
                    value = resolve(doc, path)
                    return all(test(value) for test in tests)

                parts.append(field_test)
        if nested:
            for key in nested:
                if not isinstance(key, str):
                    raise DQLError(f"DQL keys must be strings, got {key!r} at '{where}'")
            parts.append(_object_conditions(path, nested))
        if len(parts) == 1:
            return parts[0]
        return lambda doc: all(part(doc) for part in parts)
    test = _equals_predicate(field, condition)
    return lambda doc: test(resolve(doc, path))


def compile_filter(query: Mapping[str, Any] | None) -> Predicate:
    """Compile a DQL ``filter`` dict into a predicate over JSON documents.

    Parameters
    ----------
    query : dict or None
        The ``filter`` part of a DQL body. ``None`` or ``{}`` match everything.

    Returns
    -------
    callable
        ``predicate(doc) -> bool``.

    Raises
    ------
    DQLError
        On an unknown ``$operator`` or a malformed operand (e.g. ``$in`` without a list).

    Example
    -------
    >>> match = compile_filter({"$and": [{"hidden": False}, {"metadata.system.tags.train": True}]})
    >>> match({"hidden": False, "metadata": {"system": {"tags": {"train": True}}}})
    True
    >>> match({"hidden": False, "metadata": {}})
    False
    """
    if query is None:
        return lambda doc: True
    if not isinstance(query, Mapping):
        raise DQLError(f"a DQL filter must be an object, got {json.dumps(query)[:200]}")
    parts: list[Predicate] = []
    for key, value in query.items():
        if not isinstance(key, str):
            raise DQLError(f"DQL keys must be strings, got {key!r}")
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list):
                raise DQLError(f"{key} needs a list of filters, got {json.dumps(value)[:200]}")
            subs = [compile_filter(sub) for sub in value]
            if key == "$and":
                parts.append(lambda doc, subs=subs: all(sub(doc) for sub in subs))
            elif key == "$or":
                parts.append(lambda doc, subs=subs: any(sub(doc) for sub in subs))
            else:
                parts.append(lambda doc, subs=subs: not any(sub(doc) for sub in subs))
        elif key == "$not":
            inner = compile_filter(value)
            parts.append(lambda doc, inner=inner: not inner(doc))
        elif key.startswith("$"):
            raise DQLError(
                f"unknown DQL operator '{key}'; supported: {', '.join(sorted(LOGICAL_OPERATORS | FIELD_OPERATORS))}"
            )
        else:
            parts.append(_compile_field(tuple(key.split(".")), value))
    if not parts:
        return lambda doc: True
    if len(parts) == 1:
        return parts[0]
    return lambda doc: all(part(doc) for part in parts)


def matches(doc: Mapping[str, Any], query: Mapping[str, Any] | None) -> bool:
    """Whether ``doc`` matches the DQL ``query`` (compiles each time; use :func:`compile_filter` in loops).

    Example
    -------
    >>> matches({"label": "cat"}, {"label": {"$in": ["cat", "dog"]}})
    True
    """
    return compile_filter(query)(doc)


def split_id_keyset(query: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Separate dtlpy's keyset paging clauses on ``id`` from the rest of a filter.

    dtlpy pages items and annotations by adding ``{"id": {"$gt": last_id}}`` (``$lt`` when sorting
    descending) to the top-level ``$and``. Taking it out lets the store jump to the position with
    a binary search instead of scanning from the start.

    Returns
    -------
    rest : dict or None
        The filter without the keyset clauses (``None`` if nothing is left).
    bounds : dict
        ``{"$gt": id}`` and/or ``{"$lt": id}`` (and ``$gte`` / ``$lte``) when found, else ``{}``.

    Example
    -------
    >>> split_id_keyset({"$and": [{"hidden": False}, {"id": {"$gt": "00a"}}]})
    ({'$and': [{'hidden': False}]}, {'$gt': '00a'})
    """
    if not query:
        return None, {}
    if set(query.keys()) - {"$and"} or not isinstance(query.get("$and"), list):
        # a top-level id clause outside of $and
        if set(query.keys()) == {"id"} and isinstance(query["id"], Mapping):
            bounds = _id_bounds(query["id"])
            if bounds is not None:
                return None, bounds
        return dict(query), {}
    rest: list[Any] = []
    bounds: dict[str, Any] = {}
    for clause in query["$and"]:
        if isinstance(clause, Mapping) and set(clause.keys()) == {"id"} and isinstance(clause["id"], Mapping):
            found = _id_bounds(clause["id"])
            if found is not None and not (set(found) & set(bounds)):
                bounds.update(found)
                continue
        rest.append(clause)
    if not bounds:
        return dict(query), {}
    return ({"$and": rest} if rest else None), bounds


def _id_bounds(condition: Mapping[str, Any]) -> dict[str, Any] | None:
    if condition and all(op in ("$gt", "$gte", "$lt", "$lte") for op in condition):
        if all(isinstance(v, str) for v in condition.values()):
            return dict(condition)
    return None


def sort_key_function(sort: Mapping[str, Any] | None) -> tuple[list[tuple[tuple[str, ...], bool]], bool]:
    """Parse a DQL ``sort`` object (``{"field": "ascending"|"descending"|1|-1}``).

    Returns
    -------
    keys : list of (path, descending)
        The sort fields in order (empty when only ``id`` ascending is asked).
    id_only : bool
        True when the sort is the natural id order (ascending or descending on ``id`` only).

    Example
    -------
    >>> sort_key_function({"id": "descending"})
    ([(('id',), True)], True)
    """
    if not sort:
        return [], True
    if not isinstance(sort, Mapping):
        raise DQLError(f'sort must be an object like {{"id": "ascending"}}, got {json.dumps(sort)[:200]}')
    keys: list[tuple[tuple[str, ...], bool]] = []
    for field, direction in sort.items():
        if isinstance(direction, str):
            lowered = direction.lower()
            if lowered in ("ascending", "asc"):
                descending = False
            elif lowered in ("descending", "desc"):
                descending = True
            else:
                raise DQLError(f"sort.{field}: {direction!r} is not 'ascending' or 'descending'")
        elif direction in (1, -1) and not isinstance(direction, bool):
            descending = direction == -1
        else:
            raise DQLError(f"sort.{field}: {direction!r} is not 'ascending' or 'descending'")
        keys.append((tuple(str(field).split(".")), descending))
    id_only = len(keys) == 1 and keys[0][0] == ("id",)
    return keys, id_only


def _sortable(value: Any) -> tuple[int, Any]:
    if value is MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, json.dumps(value, sort_keys=True, default=str))


def sort_documents(docs: list[Mapping[str, Any]], keys: list[tuple[tuple[str, ...], bool]]) -> list[Mapping[str, Any]]:
    """Stable multi-key sort of ``docs`` (missing values first when ascending); ``id`` breaks ties.

    Example
    -------
    >>> [d["id"] for d in sort_documents([{"id": "b", "n": 1}, {"id": "a", "n": 2}], [(("n",), True)])]
    ['a', 'b']
    """
    result = sorted(docs, key=lambda d: d.get("id", ""))
    for path, descending in reversed(keys):
        result.sort(key=lambda d, path=path: _sortable(resolve(d, path)), reverse=descending)
    return result


#: :data:`DEFAULT_SORT` as sort keys, with ``id`` descending breaking ties between documents
#: created in the same millisecond (assumption: newest first, as ``createdAt`` descending).
DEFAULT_SORT_KEYS: list[tuple[tuple[str, ...], bool]] = [(("type",), False), (("createdAt",), True), (("id",), True)]
