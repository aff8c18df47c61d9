"""Unit and property tests of the emulator's DQL matcher (``emulator/dql.py``), a pure module:
examples of the platform semantics, then hypothesis properties against a straightforward
reference evaluator written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import dql

ROOT = Path(__file__).resolve().parents[1]


def _item(**fields):
    doc = {"id": "a" * 24, "hidden": False, "type": "file", "dir": "/", "filename": "/a.jpg", "metadata": {}}
    doc.update(fields)
    return doc


# ---------------------------------------------------------------------------- examples
@pytest.mark.parametrize("subset", ["train", "validation", "test"])
def test_packaged_subset_filters_select_their_tag(subset):
    query = json.loads((ROOT / "pipeline_configs" / f"{subset}_subset_filter.json").read_text())["filter"]
    match = dql.compile_filter(query)
    tagged = _item(metadata={"system": {"tags": {subset: True}}})
    other = _item(metadata={"system": {"tags": {"train" if subset != "train" else "test": True}}})
    assert match(tagged)
    assert not match(other)
    assert not match(_item(metadata={}))
    assert not match({**tagged, "hidden": True})
    assert not match({**tagged, "type": "dir"})


def test_dotted_and_nested_paths_are_the_same():
    doc = _item(metadata={"system": {"tags": {"train": True}}})
    assert dql.matches(doc, {"metadata.system.tags.train": True})
    assert dql.matches(doc, {"metadata": {"system": {"tags": {"train": True}}}})
    assert dql.matches(doc, {"metadata": {"system.tags": {"train": {"$eq": True}}}})
    assert not dql.matches(doc, {"metadata": {"system": {"tags": {"train": False}}}})


def test_missing_field_semantics():
    doc = _item()
    assert dql.matches(doc, {"metadata.user.x": {"$ne": 1}})
    assert dql.matches(doc, {"metadata.user.x": {"$exists": False}})
    assert not dql.matches(doc, {"metadata.user.x": {"$exists": True}})
    assert not dql.matches(doc, {"metadata.user.x": {"$gt": 0}})
    assert not dql.matches(doc, {"metadata.user.x": {"$lte": 0}})
    assert dql.matches(doc, {"metadata.user.x": None})
    assert dql.matches(doc, {"metadata.user.x": {"$nin": [1, 2]}})
    assert not dql.matches(doc, {"metadata.user.x": {"$in": [1, 2]}})


def test_arrays_match_any_element():
    doc = _item(metadata={"user": {"labels": ["cat", "dog"], "scores": [0.2, 0.9]}})
    assert dql.matches(doc, {"metadata.user.labels": "cat"})
    assert dql.matches(doc, {"metadata.user.labels": {"$in": ["bird", "dog"]}})
    assert not dql.matches(doc, {"metadata.user.labels": {"$nin": ["dog"]}})
    assert dql.matches(doc, {"metadata.user.labels": ["cat", "dog"]})
    assert dql.matches(doc, {"metadata.user.scores": {"$gt": 0.5}})
    assert not dql.matches(doc, {"metadata.user.scores": {"$gt": 0.95}})
    nested = {"annotations": [{"label": "cat"}, {"label": "dog"}]}
    assert dql.matches(nested, {"annotations.label": "dog"})


def test_booleans_are_not_numbers():
    assert not dql.matches({"x": True}, {"x": 1})
    assert not dql.matches({"x": 0}, {"x": False})
    assert dql.matches({"x": 1}, {"x": 1.0})
    assert not dql.matches({"x": True}, {"x": {"$gt": 0}})
    assert not dql.matches({"x": "abc"}, {"x": {"$gt": 1}})


def test_numeric_strings_compare_with_numbers_only_in_order_operators():
    # the cookbook's size filter: metadata.system.size gt "0" and lt "5242880"
    assert dql.matches({"size": 10}, {"size": {"$gt": "0", "$lt": "5242880"}})
    assert not dql.matches({"size": 0}, {"size": {"$gt": "0"}})
    assert dql.matches({"x": "5"}, {"x": {"$gt": 1}})
    assert not dql.matches({"x": "5"}, {"x": 5})  # equality keeps kinds apart
    assert not dql.matches({"x": True}, {"x": {"$gt": "0"}})
    assert not dql.matches({"x": 3}, {"x": {"$gt": "nan"}})


def test_logical_operators():
    doc = _item(metadata={"user": {"n": 3}})
    assert dql.matches(doc, {"$or": [{"metadata.user.n": 1}, {"metadata.user.n": 3}]})
    assert not dql.matches(doc, {"$and": [{"metadata.user.n": 3}, {"hidden": True}]})
    assert dql.matches(doc, {"$not": {"metadata.user.n": 1}})
    assert dql.matches(doc, {"metadata.user.n": {"$not": {"$lt": 2}}})
    assert dql.matches(doc, {"$nor": [{"hidden": True}]})
    assert dql.matches(doc, {}) and dql.matches(doc, None)


def test_wildcards_in_any_string_field():
    doc = _item(filename="/folder/sub/a.jpg", dir="/folder/sub", metadata={"system": {"mimetype": "video/mp4"}})
    assert dql.matches(doc, {"metadata.system.mimetype": "video*"})
    assert not dql.matches(doc, {"metadata.system.mimetype": "image*"})
    assert dql.matches(doc, {"filename": "/folder/**"})  # dtlpy's recursive filename filter
    assert dql.matches(doc, {"filename": "*.jpg"}) and dql.matches(doc, {"filename": "/folder/*.jpg"})
    assert not dql.matches(doc, {"filename": "/fold/**"})
    assert dql.matches(doc, {"dir": "/folder/su?"}) and not dql.matches(doc, {"dir": "/folder/s?"})
    assert dql.matches({"name": "abc"}, {"name": "a*"}) and dql.matches({"name": "a*c"}, {"name": "a*c"})
    assert dql.matches({"name": "a[b]"}, {"name": "a[b]*"})  # only * and ? are special
    assert dql.matches({"tags": ["xa", "yb"]}, {"tags": "y*"})
    assert dql.matches({"name": "abc"}, {"name": {"$in": ["z", "a?c"]}})
    assert dql.matches({"name": "abc"}, {"name": {"$ne": "b*"}})


def test_wildcards_are_linear():
    """Every ``*`` becomes an atomic group (``fnmatch.translate``): no backtracking, so matching is
    linear in the value (checked from the regex, not timed: benchmarks/bench_match.py times it)."""
    text = "a" * 5000
    assert not dql.matches({"name": text}, {"name": "*a*a*a*a*a*a*a*a*a*a*b"})
    translated = dql.wildcard_regex("*a*a*a*a*a*a*a*a*a*a*b").pattern
    assert translated.count("(?>") == 10  # each * followed by a literal is atomic


def test_match_operator_is_a_regex_or_a_wildcard():
    assert dql.matches({"name": "img-001.jpg"}, {"name": {"$match": r"^img-\d+"}})
    assert dql.matches({"filename": "/a/b.jpg"}, {"filename": {"$match": "*.jpg"}})  # the cookbook's form
    with pytest.raises(dql.DQLError, match=r"invalid pattern"):
        dql.compile_filter({"name": {"$match": "("}})


@pytest.mark.parametrize(
    "pattern",
    ["^(a+)+$", "(a*)*b", "(.*a){20}", "(a|aa)+$", r"(\w+)\1", "(?P<x>a)(?P=x)", "a*b*c*d*e", "x" * 1001],
)
def test_catastrophic_patterns_are_refused_quickly(pattern, monkeypatch):
    """Refused from the pattern's shape alone: nothing is matched (no automaton step is taken)."""

    def no_matching(*args, **kwargs):
        raise AssertionError("a refused pattern must not be matched")

    monkeypatch.setattr(dql._Program, "search", no_matching)
    with pytest.raises(dql.DQLError, match=r"refused"):
        dql.compile_filter({"name": {"$match": pattern}})


@pytest.mark.parametrize("pattern", [r"^img-\d+\.jpg$", "(cat|dog)", "(a|b)+", r"\d{4}-\d{2}-\d{2}", "^a.*b.*c$"])
def test_ordinary_patterns_pass(pattern):
    dql.compile_filter({"name": {"$match": pattern}})


def test_match_object_is_an_element_match():
    refs = {"refs": [{"id": "t1", "type": "task"}, {"id": "t2", "metadata": {"status": "done"}}]}
    assert dql.matches(refs, {"refs": {"$match": {"id": "t2", "metadata": {"status": {"$exists": True}}}}})
    assert not dql.matches(refs, {"refs": {"$match": {"id": "t1", "metadata": {"status": {"$exists": True}}}}})
    assert dql.matches(refs, {"refs": {"$match": {"id": "t1", "metadata.status": {"$exists": False}}}})
    assert not dql.matches({"refs": {"id": "t1"}}, {"refs": {"$match": {"id": "t1"}}})  # not an array
    assert dql.matches({"scores": [1, 5]}, {"scores": {"$match": {"$gt": 2, "$lt": 6}}})
    assert not dql.matches({"scores": [1, 9]}, {"scores": {"$match": {"$gt": 2, "$lt": 6}}})
    with pytest.raises(dql.DQLError, match=r"\$match at 'refs'"):
        dql.compile_filter({"refs": {"$match": 3}})


def test_object_of_conditions_on_an_array_holds_on_one_element():
    doc = {"refs": [{"id": "t1", "status": "discard"}, {"id": "t2", "status": "completed"}]}
    assert not dql.matches(doc, {"refs": {"id": "t1", "status": "completed"}})
    assert dql.matches(doc, {"refs": {"id": "t2", "status": "completed"}})
    # dotted paths stay independent (each may match another element)
    assert dql.matches(doc, {"refs.id": "t1", "refs.status": "completed"})
    # on an object or a missing field, the object form is the dotted form
    assert dql.matches({"m": {}}, {"m": {"x": {"$exists": False}}}) and dql.matches({}, {"m": {"x": {"$ne": 1}}})


def test_default_sort_keys():
    docs = [
        {"id": "1", "type": "file", "createdAt": "2024-01-01"},
        {"id": "2", "type": "dir", "createdAt": "2023-01-01"},
        {"id": "3", "type": "file", "createdAt": "2024-02-01"},
        {"id": "4", "type": "file", "createdAt": "2024-02-01"},
    ]
    assert [d["id"] for d in dql.sort_documents(docs, dql.DEFAULT_SORT_KEYS)] == ["2", "4", "3", "1"]


@pytest.mark.parametrize(
    "query, named",
    [
        ({"size": {"$regex": "x"}}, "$regex"),
        ({"$where": "1"}, "$where"),
        ({"$and": [{"a": {"$elemMatch": {}}}]}, "$elemMatch"),
        ({"metadata": {"user": {"x": {"$size": 2}}}}, "$size"),
    ],
)
def test_unknown_operators_are_named(query, named):
    with pytest.raises(dql.DQLError) as error:
        dql.compile_filter(query)
    assert named in str(error.value)


@pytest.mark.parametrize(
    "query, fragment",
    [
        ({"a": {"$in": 3}}, "$in at 'a' needs a list"),
        ({"$and": {"a": 1}}, "$and needs a list"),
        ([{"a": 1}], "must be an object"),
        ({"a": {"$gt": [1]}}, "$gt at 'a'"),
    ],
)
def test_malformed_operands(query, fragment):
    with pytest.raises(dql.DQLError, match=fragment.replace("$", r"\$").replace("[", r"\[")):
        dql.compile_filter(query)


def test_split_id_keyset():
    rest, bounds = dql.split_id_keyset({"$and": [{"hidden": False}, {"id": {"$gt": "b"}}]})
    assert rest == {"$and": [{"hidden": False}]} and bounds == {"$gt": "b"}
    assert dql.split_id_keyset({"$and": [{"id": {"$lt": "c"}}]}) == (None, {"$lt": "c"})
    assert dql.split_id_keyset({"id": {"$gte": "a"}}) == (None, {"$gte": "a"})
    untouched = {"$or": [{"id": {"$gt": "b"}}]}
    assert dql.split_id_keyset(untouched) == (untouched, {})
    assert dql.split_id_keyset({"$and": [{"id": "x"}]}) == ({"$and": [{"id": "x"}]}, {})


def test_sorting():
    docs = [{"id": "1", "n": 2}, {"id": "2"}, {"id": "3", "n": 1}]
    keys, id_only = dql.sort_key_function({"n": "ascending"})
    assert not id_only
    assert [d["id"] for d in dql.sort_documents(docs, keys)] == ["2", "3", "1"]
    keys, _ = dql.sort_key_function({"n": "descending"})
    assert [d["id"] for d in dql.sort_documents(docs, keys)] == ["1", "3", "2"]
    assert dql.sort_key_function({"id": "ascending"})[1] is True
    with pytest.raises(dql.DQLError, match="sort.n"):
        dql.sort_key_function({"n": "sideways"})


# ---------------------------------------------------------------------------- properties
MISSING = object()
FIELDS = ["a", "metadata.user.x", "metadata.system.tags.train"]
# a small pool of values so that documents and operands often meet (and booleans meet 0 / 1)
scalars = st.sampled_from([None, True, False, 0, 1, 2, 1.0, "", "cat", "dog"])
leaf_values = st.one_of(scalars, scalars, st.lists(scalars, max_size=3))


def _set_path(doc: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    doc[last] = value


@st.composite
def documents(draw):
    doc: dict = {}
    for field in FIELDS:
        value = draw(st.one_of(st.just(MISSING), st.just(MISSING), leaf_values))
        if value is not MISSING:
            _set_path(doc, field, value)
    return doc


def ref_get(doc, dotted):
    current = doc
    for key in dotted.split("."):
        if not isinstance(current, dict) or key not in current:
            return MISSING
        current = current[key]
    return current


def ref_same(a, b):
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(ref_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, list) or isinstance(b, list):
        return False
    if (a is None) != (b is None):
        return False
    if isinstance(a, str) != isinstance(b, str):
        return False
    return a == b


def ref_eq(value, wanted):
    if value is MISSING:
        return wanted is None
    if isinstance(value, list):
        return ref_same(value, wanted) or any(ref_same(v, wanted) for v in value)
    return ref_same(value, wanted)


def ref_cmp(value, op, operand):
    if value is MISSING or value is None or operand is None:
        return False
    if isinstance(value, list):
        return any(ref_cmp(v, op, operand) for v in value)
    number = (int, float)
    both_numbers = (
        isinstance(value, number)
        and isinstance(operand, number)
        and not isinstance(value, bool)
        and not isinstance(operand, bool)
    )
    both_strings = isinstance(value, str) and isinstance(operand, str)
    both_bools = isinstance(value, bool) and isinstance(operand, bool)
    if not (both_numbers or both_strings or both_bools):
        return False
    return {"$gt": value > operand, "$gte": value >= operand, "$lt": value < operand, "$lte": value <= operand}[op]


def ref_field(value, op, operand):
    if op == "$eq":
        return ref_eq(value, operand)
    if op == "$ne":
        return not ref_eq(value, operand)
    if op == "$in":
        return any(ref_eq(value, o) for o in operand)
    if op == "$nin":
        return not any(ref_eq(value, o) for o in operand)
    if op == "$exists":
        return (value is not MISSING) == operand
    return ref_cmp(value, op, operand)


def ref_match(doc, query) -> bool:
    """The reference: a direct reading of a query built by ``queries()`` below."""
    kind = query[0]
    if kind == "and":
        return all(ref_match(doc, q) for q in query[1])
    if kind == "or":
        return any(ref_match(doc, q) for q in query[1])
    if kind == "not":
        return not ref_match(doc, query[1])
    _, field, op, operand, _style = query
    return ref_field(ref_get(doc, field), op, operand)


def to_dql(query) -> dict:
    kind = query[0]
    if kind in ("and", "or"):
        return {f"${kind}": [to_dql(q) for q in query[1]]}
    if kind == "not":
        return {"$not": to_dql(query[1])}
    _, field, op, operand, style = query
    condition = operand if (op == "$eq" and style == "implicit" and not isinstance(operand, dict)) else {op: operand}
    if style == "nested":
        nested: dict = {}
        _set_path(nested, field, condition)
        return nested
    return {field: condition}


field_ops = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne"]), leaf_values),
    st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), scalars),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(scalars, max_size=3)),
    st.tuples(st.just("$exists"), st.booleans()),
)


@st.composite
def field_queries(draw):
    op, operand = draw(field_ops)
    return (
        "field",
        draw(st.sampled_from(FIELDS)),
        op,
        operand,
        draw(st.sampled_from(["implicit", "dotted", "nested"])),
    )


queries = st.recursive(
    field_queries(),
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, min_size=1, max_size=3)),
        st.tuples(st.just("not"), inner),
    ),
    max_leaves=6,
)


@settings(max_examples=100, deadline=None)
@given(docs=st.lists(documents(), min_size=1, max_size=12), query=queries)
def test_matcher_agrees_with_reference(docs, query):
    match = dql.compile_filter(to_dql(query))
    assert [match(doc) for doc in docs] == [ref_match(doc, query) for doc in docs]


@settings(max_examples=80, deadline=None)
@given(doc=documents(), query=field_queries())
def test_negations_are_complements(doc, query):
    _, field, op, operand, style = query
    positive = dql.compile_filter(to_dql(query))(doc)
    assert dql.compile_filter({"$not": to_dql(query)})(doc) is (not positive)
    complements = {"$eq": "$ne", "$ne": "$eq", "$in": "$nin", "$nin": "$in"}
    if op in complements:
        flipped = dql.compile_filter(to_dql(("field", field, complements[op], operand, style)))(doc)
        assert flipped is (not positive)


@settings(max_examples=60, deadline=None)
@given(
    doc=documents(),
    query=queries,
    doc_id=st.sampled_from(["0a", "0b", "0c", "1f"]),
    bound=st.sampled_from(["0a", "0b", "0c"]),
    op=st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
)
def test_keyset_split_keeps_meaning(doc, query, doc_id, bound, op):
    doc = {**doc, "id": doc_id}
    full = {"$and": [to_dql(query), {"id": {op: bound}}]}
    rest, bounds = dql.split_id_keyset(full)
    assert bounds == {op: bound}
    in_bounds = dql.compile_filter({"id": bounds})(doc)
    assert dql.compile_filter(full)(doc) == (dql.compile_filter(rest)(doc) and in_bounds)


# ---------------------------------------------------------------------------- $in fast path
# $in / $nin use per-kind sets for strings, numbers and booleans; the oracle is the per-candidate
# reading: $in == $or of $eq (empty list: nothing), with globs on filename/dir, None, NaN, lists.
in_scalars = st.sampled_from(
    [None, True, False, 0, 1, 2, 1.0, 2.5, float("nan"), "", "cat", "dog", "a.jpg", "*.jpg", "/x/**", "/x", "/x/y"]
)
in_values = st.one_of(in_scalars, in_scalars, st.lists(in_scalars, max_size=4), st.just({"k": 1}))
IN_FIELDS = ["a", "filename", "dir", "metadata.user.x"]


@st.composite
def in_documents(draw):
    doc: dict = {}
    for field in IN_FIELDS:
        if draw(st.booleans()):
            _set_path(doc, field, draw(in_values))
    return doc


@settings(max_examples=150, deadline=None)
@given(
    docs=st.lists(in_documents(), min_size=1, max_size=8),
    field=st.sampled_from(IN_FIELDS),
    operand=st.lists(st.one_of(in_scalars, st.lists(in_scalars, max_size=2)), max_size=12),
)
def test_in_fast_path_equals_or_of_eq(docs, field, operand):
    fast_in = dql.compile_filter({field: {"$in": operand}})
    fast_nin = dql.compile_filter({field: {"$nin": operand}})
    slow = dql.compile_filter({"$or": [{field: {"$eq": o}} for o in operand]}) if operand else (lambda doc: False)
    for doc in docs:
        assert fast_in(doc) is slow(doc)
        assert fast_nin(doc) is (not slow(doc))


def test_in_fast_path_keeps_kinds_apart_and_globs():
    assert dql.matches({"a": True}, {"a": {"$in": [1, "True"]}}) is False
    assert dql.matches({"a": 1}, {"a": {"$in": [True, 1.0]}}) is True
    assert dql.matches({"a": [False, "x"]}, {"a": {"$in": [0, "x"]}}) is True
    assert dql.matches({"a": float("nan")}, {"a": {"$in": [float("nan")]}}) is False
    assert dql.matches({}, {"a": {"$in": ["x", None]}}) is True
    assert dql.matches({"filename": "/d/a.jpg"}, {"filename": {"$in": ["/d/*.jpg"]}}) is True
    assert dql.matches({"a": "/d/a.jpg"}, {"a": {"$in": ["/d/*.jpg"]}}) is True  # wildcards in any field
    assert dql.matches({"a": "/d/a.png"}, {"a": {"$in": ["/d/*.jpg"]}}) is False


@settings(max_examples=100, deadline=None)
@given(
    doc_id=st.sampled_from(["0a", "0b", "0c"]),
    hidden=st.booleans(),
    in_ids=st.lists(st.sampled_from(["0a", "0b", "0c", "zz", 1]), max_size=4),
    extra=st.lists(field_queries(), max_size=2),
    second=st.none() | st.lists(st.sampled_from(["0a", "0b"]), max_size=2),
)
def test_id_restriction_never_excludes_a_match(doc_id, hidden, in_ids, extra, second):
    doc = {"id": doc_id, "hidden": hidden}
    clauses = [{"hidden": False}, {"id": {"$in": in_ids}}, *[to_dql(q) for q in extra]]
    if second is not None:
        clauses.append({"id": {"$in": second}})
    query = {"$and": clauses}
    restriction = dql.id_restriction(query)
    assert restriction is not None
    if dql.compile_filter(query)(doc):
        assert doc_id in restriction
    assert dql.id_restriction({"id": {"$in": in_ids}}) == {i for i in in_ids if isinstance(i, str)}


def test_id_restriction_only_for_a_top_level_in():
    assert dql.id_restriction(None) is None
    assert dql.id_restriction({"$and": [{"hidden": False}]}) is None
    assert dql.id_restriction({"$or": [{"id": {"$in": ["a"]}}]}) is None
    assert dql.id_restriction({"$and": [{"id": {"$in": ["a"], "$ne": "b"}}]}) is None
    assert dql.id_restriction({"$and": [{"$not": {"id": {"$in": ["a"]}}}]}) is None
    assert dql.id_restriction({"id": {"$nin": ["a"]}}) is None
