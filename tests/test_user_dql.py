"""nodes/common/dql.py: user DQL is checked as data before any request (subsets, test_subset)."""

from __future__ import annotations

import doctest

import pytest

from nodes.common import dql
from nodes.common.limits import MAX_KEY_CHARS, MAX_MESSAGE_CHARS
from nodes.compare_models import CompareConfig
from nodes.create_new_model import normalize_subset_query
from nodes.select_for_labeling.config import SelectionConfig


def test_docstring_examples():
    assert doctest.testmod(dql, raise_on_error=False).failed == 0


@pytest.mark.parametrize(
    ("condition", "path_in_message"),
    [
        ({"dir": {"$regexx": "^/a"}}, "f.dir.$regexx"),
        ({"$xor": [{"a": 1}]}, "f.$xor"),
        ({"$and": []}, "f.$and"),
        ({"$or": [{"a": {"$in": "x"}}]}, "f.$or[0].a.$in"),
        ({"metadata": {"system": {"tags": {"train": {"$exists": "yes"}}}}}, "f.metadata.system.tags.train.$exists"),
    ],
)
def test_bad_conditions_name_the_path(condition, path_in_message):
    with pytest.raises(ValueError, match=path_in_message.replace("$", r"\$").replace("[", r"\[").replace("]", r"\]")):
        dql.check_dql_condition(condition, "f")


def test_the_packaged_filters_and_platform_forms_pass():
    for condition in (
        {"$and": [{"hidden": False}, {"$or": [{"metadata": {"system": {"tags": {"train": True}}}}]}, {"type": "file"}]},
        {"metadata.user.model": {"$exists": False}, "label": {"$in": ["cat", "dog"]}},
        {"$not": {"dir": {"$match": "^/x"}}},
    ):
        dql.check_dql_condition(condition, "f")


def test_both_nodes_use_the_same_check():
    with pytest.raises(ValueError, match=r"train_subset\.filter\.dir\.\$regexx"):
        normalize_subset_query({"dir": {"$regexx": "a"}}, "train_subset")
    with pytest.raises(ValueError, match=r"precision_recall\.test_subset\.filter\.dir\.\$regexx"):
        CompareConfig.from_json({"precision_recall": {"test_subset": {"filter": {"dir": {"$regexx": "a"}}}}})


DOCUMENTED_QUERIES = [
    # https://docs.dataloop.ai/docs/api-dql: a wildcard value
    {"filter": {"$and": [{"hidden": False}, {"type": "file"}, {"metadata.system.mimetype": "video*"}]}},
    # cookbook (dtlpy-documentation dataloop_query_language/more_examples): intersect
    {
        "filter": {"$and": [{"hidden": False}, {"type": "file"}]},
        "join": {"filter": {"label": "car"}, "on": {"resource": "annotations", "local": "itemId", "forigen": "id"}},
        "intersect": {"query": {"filter": {"type": "file"}, "join": {"filter": {"label": "person"}}}},
    },
    # cookbook: except, its query without a filter
    {"filter": {"type": "file"}, "except": {"query": {"join": {"filter": {"label": "person"}}}}},
    # cookbook / dtlpy repositories/tasks.py: $match with an object on refs
    {
        "filter": {
            "metadata.system.refs": {"$match": {"id": {"$in": ["t"]}, "metadata": {"status": {"$exists": False}}}}
        }
    },
    # cookbook: an implicit object of conditions on refs, a list value, an empty list
    {"filter": {"metadata.system.refs": {"id": {"$in": ["t"]}, "metadata": {"status": {"$in": ["completed"]}}}}},
    {"filter": {"metadata.system.annotationStatus": ["completed", "approved"]}},
    {"filter": {"metadata.system.refs": []}},
    # cookbook: $match with a wildcard string; size compared with numeric strings
    {"filter": {"filename": {"$match": "*.jpg"}, "metadata.system.size": {"$gt": "0", "$lt": "5242880"}}},
    # dtlpy FiltersOperations: $eq with a list (dtlpy sends the values as given)
    {"filter": {"metadata.user.tags": {"$eq": ["a", "b"]}}},
]


@pytest.mark.parametrize("query", DOCUMENTED_QUERIES)
def test_documented_queries_are_accepted(query):
    dql.check_dql_query(query, "q")
    dql.check_dql_condition(query["filter"], "q.filter")


@pytest.mark.parametrize("query", DOCUMENTED_QUERIES)
def test_every_node_accepts_the_documented_queries(query):
    from nodes.select_for_labeling.config import _pool_query

    normalize_subset_query(query, "train_subset")
    CompareConfig.from_json({"precision_recall": {"test_subset": query}})
    _pool_query("selection_config.pool", query)


@pytest.mark.parametrize(
    ("query", "path_in_message"),
    [
        ({"filter": {}, "intersect": {"filter": {}}}, "q.intersect"),
        ({"filter": {}, "except": {"query": {"filter": {"a": {"$regex": "x"}}}}}, "q.except.query.filter.a.$regex"),
        ({"filter": {}, "join": {"filter": {}, "where": 1}}, "q.join"),
        ({"filter": {}, "join": {"on": {"table": "x"}}}, "q.join.on"),
        ({"filter": {"refs": {"$match": 3}}}, "q.filter.refs.$match"),
        ({"filter": {"refs": {"$match": {"id": {"$where": 1}}}}}, "q.filter.refs.$match.id.$where"),
        ({"filter": {"a": {"$gt": [1]}}}, "q.filter.a.$gt"),
        ({"filter": {"a": {"$eq": {"b": 1}}}}, "q.filter.a.$eq"),
        ({"filter": {}, "union": {}}, "q: unknown query key 'union'"),
    ],
)
def test_undocumented_query_forms_are_refused(query, path_in_message):
    with pytest.raises(ValueError) as error:
        dql.check_dql_query(query, "q")
    assert path_in_message in str(error.value)


#: Words that say what to do instead (the messages give an example or the allowed values).
_FIX = ("example", "use one of", "use a ", "compare with", "remove")


@pytest.mark.parametrize(
    ("condition", "query"),
    [
        ("x", None),
        ({"": 1}, None),
        ({"$and": "x"}, None),
        ({"$or": []}, None),
        ({"$nor": {"a": 1}}, None),
        ({"$xor": [{"a": 1}]}, None),
        ({"a": {"": 1}}, None),
        ({"a": {"$regexx": 1}}, None),
        ({"a": {"$in": "x"}}, None),
        ({"a": {"$exists": "yes"}}, None),
        ({"a": {"$match": 3}}, None),
        ({"a": {"$gt": [1]}}, None),
        ({"a": {"$eq": {"b": 1}}}, None),
        (None, [1]),
        (None, {"filter": {}, "union": {}}),
        (None, {"filter": {}, "join": [1]}),
        (None, {"filter": {}, "join": {"on": {"table": "x"}}}),
        (None, {"filter": {}, "intersect": {"filter": {}}}),
    ],
)
def test_every_message_names_the_fix_and_stays_short(condition, query):
    with pytest.raises(ValueError) as error:
        if query is None:
            dql.check_dql_condition(condition, "f")
        else:
            dql.check_dql_query(query, "q")
    message = str(error.value)
    assert any(word in message for word in _FIX), message
    assert len(message) <= 1024


def test_a_logical_operator_without_a_list_shows_a_list_example():
    with pytest.raises(ValueError) as error:
        dql.check_dql_condition({"$and": "x"}, "train_subset.filter")
    assert str(error.value) == (
        "train_subset.filter.$and: 'x' is not a non-empty list of conditions; "
        'example: {"$and": [{"hidden": false}, {"metadata.system.tags.train": true}]}'
    )
    with pytest.raises(ValueError, match=r'example: \{"\$or": \['):
        dql.check_dql_condition({"$or": []}, "f")


def test_huge_values_are_cut_in_messages():
    with pytest.raises(ValueError) as error:
        dql.check_dql_condition({"a": {"$in": "x" * 100_000}}, "f")
    assert len(str(error.value)) <= 1024 and "..." in str(error.value)


LONG = "k" * 300_000


@pytest.mark.parametrize(
    ("call", "start"),
    [
        (lambda: normalize_subset_query({"filter": {"$" + LONG: 1}}, "train_subset"), "train_subset.filter.$kkk"),
        (lambda: normalize_subset_query({LONG: {"$bad": 1}}, "train_subset"), "train_subset.filter.kkk"),
        (lambda: normalize_subset_query({"a": {"$" + LONG: 1}}, "validation_subset"), "validation_subset.filter.a.$k"),
        (
            lambda: normalize_subset_query({"$and": [{LONG: {"$in": "x"}}]}, "train_subset"),
            "train_subset.filter.$and[0].k",
        ),
        (
            lambda: CompareConfig.from_json({"precision_recall": {"test_subset": {"filter": {LONG: {"$bad": 1}}}}}),
            "compare_config.precision_recall.test_subset.filter.kkk",
        ),
        (
            lambda: CompareConfig.from_json({"precision_recall": {"test_subset": {"$" + LONG: [{"a": 1}]}}}),
            "compare_config.precision_recall.test_subset.filter.$kkk",
        ),
        (
            lambda: SelectionConfig.from_json({"budget": 5, "pool": {"filter": {LONG: {"$bad": 1}}}}),
            "selection_config.pool.filter.kkk",
        ),
        (
            lambda: SelectionConfig.from_json(
                {"budget": 5, "pool": {"filter": {"a": 1}, "join": {"filter": {LONG: {"$x": 1}}}}}
            ),
            "selection_config.pool.join.filter.kkk",
        ),
    ],
)
def test_long_field_and_operator_names_are_cut_in_every_message(call, start):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert message.startswith(start) and len(message) <= MAX_MESSAGE_CHARS, (len(message), message[:200])
    assert "k" * (MAX_KEY_CHARS - 2) not in message.split(": ", 1)[0]  # the key is cut in the path


def test_a_long_key_is_cut_to_its_first_characters_in_the_path():
    with pytest.raises(ValueError) as error:
        dql.check_dql_condition({"k" * 1000: {"$regexx": 1}}, "f")
    assert str(error.value).startswith("f." + "k" * (MAX_KEY_CHARS - 3) + "....$regexx: '$regexx' is not a supported")
    with pytest.raises(ValueError) as error:
        dql.check_dql_condition({"$" + "o" * 1000: 1}, "f")
    path, problem = str(error.value).split(": ", 1)
    assert path == "f.$" + "o" * (MAX_KEY_CHARS - 4) + "..." and problem.startswith("'$ooo") and "...'" not in problem


def test_deep_paths_of_long_keys_keep_start_and_end_and_stay_short():
    condition: dict = {"leaf": {"$exists": "yes"}}
    for level in range(60):
        condition = {f"{level:02d}" + "k" * 10_000: condition}
    with pytest.raises(ValueError) as error:
        dql.check_dql_condition({"$or": [condition]}, "selection_config.pool.filter")
    message = str(error.value)
    assert len(message) <= MAX_MESSAGE_CHARS
    assert message.startswith("selection_config.pool.filter.$or[0].59kkk")  # the outermost key first
    assert ".leaf.$exists: 'yes' is not true or false" in message


def test_set_and_join_paths_are_cut_too():
    query = {"filter": {}, "except": {"query": {"join": {"filter": {LONG: {"$bad": 1}}}}}}
    with pytest.raises(ValueError) as error:
        dql.check_dql_query(query, "q" * 5000)
    message = str(error.value)
    assert len(message) <= MAX_MESSAGE_CHARS and message.startswith("qqq")
    assert ".except.query.join.filter.kkk" in message


def test_a_long_path_given_by_the_caller_is_cut_too():
    for call in (
        lambda: dql.check_dql_condition("not an object", "f" * 5000),
        lambda: dql.check_dql_query([1], "q" * 5000),
        lambda: dql.check_dql_condition({"": 1}, "f" * 5000),
    ):
        with pytest.raises(ValueError) as error:
            call()
        assert len(str(error.value)) <= MAX_MESSAGE_CHARS and "..." in str(error.value).split(": ", 1)[0]
