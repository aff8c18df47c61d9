"""DQL (Dataloop Query Language) matcher of the local platform: a pure module.

The emulator's query endpoints (``POST /datasets/{id}/query``, ``POST /ml/models/query``,
``POST /ml/metrics/query``) compile the ``filter`` of the request body with
:func:`compile_filter` into a predicate over plain JSON documents, then evaluate it lazily.
No I/O, no globals: everything here works on dicts and is tested on its own
(``tests/test_dql.py``).

Supported: ``$and`` / ``$or`` / ``$nor`` / ``$not`` combinators; ``$eq``, ``$ne``, ``$gt``, ``$gte``,
``$lt``, ``$lte``, ``$in``, ``$nin``, ``$exists`` and ``$match`` (a regular expression, which
dtlpy's ``FiltersOperations.MATCH`` sends) on fields; implicit equality (``{"hidden": false}``);
dotted paths (``"metadata.system.tags.train"``) and nested dict paths
(``{"metadata": {"system": {"tags": {"train": true}}}}``, as in ``pipeline_configs/*.json``).
Semantics follow the platform (MongoDB-like): a missing field is ``$ne`` anything and ``$eq``
only ``None``; on an array field ``$eq`` / ``$in`` / comparisons match if any element does;
``$exists: false`` matches a missing field; booleans never equal numbers. For the ``filename``
and ``dir`` fields a string containing ``*`` is a glob (``"/folder/**"``, ``"*.jpg"``), as dtlpy
sends for recursive directory filters. Any other ``$operator`` raises :class:`DQLError`, which
the server turns into HTTP 400 so that dtlpy raises ``dl.exceptions.BadRequest``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

Predicate = Callable[[Mapping[str, Any]], bool]

#: Field operators understood by :func:`compile_filter`.
FIELD_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$match"})
#: Logical operators understood by :func:`compile_filter`.
LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor", "$not"})
#: Fields whose string values may be globs.
GLOB_FIELDS = frozenset({"filename", "dir"})


class DQLError(ValueError):
    """A filter the platform would reject (unknown operator, malformed operand).

    Example
    -------
    >>> try:
    ...     compile_filter({"size": {"$regex": "x"}})
    ... except DQLError as error:
    ...     print(error)
    unknown DQL operator '$regex' at 'size'; supported: $eq, $exists, $gt, $gte, $in, $lt, $lte, $match, $ne, $nin
    """


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


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """Compile a Dataloop path glob: ``**`` spans folders, ``*`` and ``?`` stay within one.

    ``"/folder/**"`` also matches ``"/folder"`` itself (dtlpy's recursive directory filter).
    """
    suffix = ""
    if pattern.endswith("/**"):
        pattern, suffix = pattern[:-3], "(/.*)?"
    regex = []
    for part in re.split(r"(\*\*|\*|\?)", pattern):
        if part == "**":
            regex.append(".*")
        elif part == "*":
            regex.append("[^/]*")
        elif part == "?":
            regex.append("[^/]")
        else:
            regex.append(re.escape(part))
    return re.compile("".join(regex) + suffix + r"\Z", re.DOTALL)


def _equals_predicate(field: str, expected: Any) -> Callable[[Any], bool]:
    """Test of one resolved value against an equality operand (implicit or ``$eq``)."""
    if field in GLOB_FIELDS and isinstance(expected, str) and "*" in expected:
        regex = _glob(expected)

        def glob_match(value: Any) -> bool:
            if isinstance(value, list):
                return any(isinstance(v, str) and regex.match(v) for v in value)
            return isinstance(value, str) and regex.match(value) is not None

        return glob_match

    def equal(value: Any) -> bool:
        if value is MISSING:
            return expected is None
        if isinstance(value, list) and not isinstance(expected, list):
            return any(values_equal(v, expected) for v in value)
        if isinstance(value, list) and isinstance(expected, list):
            return values_equal(value, expected) or any(values_equal(v, expected) for v in value)
        return values_equal(value, expected)

    return equal


def _compare(op: str, value: Any, operand: Any) -> bool:
    if value is MISSING or value is None or operand is None:
        return False
    if isinstance(value, list):
        return any(_compare(op, v, operand) for v in value)
    if not _same_kind(value, operand) or isinstance(value, (dict, list)):
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
    ``1``); ``None``, NaN, lists, objects and globs on ``filename``/``dir`` keep the per-candidate
    test. A 1,000-id bulk-update filter then costs one set lookup per document, not 1,000.

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
        elif isinstance(candidate, str) and not (field in GLOB_FIELDS and "*" in candidate):
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
        if not isinstance(operand, str):
            raise DQLError(f"$match at '{where}' needs a string pattern, got {json.dumps(operand)}")
        try:
            regex = re.compile(operand)
        except re.error as error:
            raise DQLError(f"$match at '{where}': invalid pattern {operand!r}: {error}") from None

        def match(value: Any) -> bool:
            if isinstance(value, list):
                return any(isinstance(v, str) and regex.search(v) for v in value)
            return isinstance(value, str) and regex.search(value) is not None

        return match
    raise DQLError(f"unknown DQL operator '{op}' at '{where}'; supported: {', '.join(sorted(FIELD_OPERATORS))}")


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
        for key, sub in nested.items():
            parts.append(_compile_field(path + tuple(str(key).split(".")), sub))
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
