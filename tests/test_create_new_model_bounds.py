"""Create New Model: bounds on every JSON input (depth, size, NaN / ±inf), short error messages,
and the base model checks, as pure functions; plus "before any request" through the real client."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from main import ServiceRunner
from nodes import create_new_model as cnm
from nodes.common.limits import MAX_BYTES, MAX_DEPTH
from nodes.compare_models.report import ACTIONS

MESSAGE_LIMIT = 1024


def _nested_dicts(levels: int, leaf=1, key="a"):
    value = leaf
    for _ in range(levels):
        value = {key: value}
    return value


def _nested_lists(levels: int, leaf=1):
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


# ------------------------------------------------------------------------------------------
# model_configuration bounds
# ------------------------------------------------------------------------------------------


def test_model_configuration_at_the_depth_limit_is_accepted():
    assert cnm.parse_model_configuration(_nested_dicts(MAX_DEPTH)) == _nested_dicts(MAX_DEPTH)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (_nested_dicts(MAX_DEPTH + 1), "model_configuration" + ".a" * MAX_DEPTH),
        ({"x": _nested_lists(MAX_DEPTH)}, "model_configuration.x" + "[0]" * (MAX_DEPTH - 1)),
    ],
)
def test_model_configuration_one_level_too_deep_names_the_path(value, path):
    with pytest.raises(ValueError) as error:
        cnm.parse_model_configuration(value)
    assert str(error.value).startswith(f"{path}: nested deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize("as_text", [False, True])
def test_absurd_depth_is_a_value_error_never_a_recursion_error(as_text):
    value = {"x": _nested_lists(100_000)} if not as_text else '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(ValueError, match=r"^model_configuration(\.x)?(\[0\])*.*nested deeper than 64 levels") as error:
        cnm.parse_model_configuration(value)
    assert len(str(error.value)) <= MESSAGE_LIMIT


def test_model_configuration_over_one_megabyte_is_refused():
    at_limit = {"blob": "x" * (MAX_BYTES - len('{"blob":""}'))}
    assert cnm.parse_model_configuration(at_limit) == at_limit
    over = {"blob": "x" * (MAX_BYTES - len('{"blob":""}') + 1)}
    with pytest.raises(ValueError, match=r"^model_configuration: 1,000,001 bytes of JSON is over the 1,000,000-byte"):
        cnm.parse_model_configuration(over)
    with pytest.raises(ValueError, match=r"^model_configuration: 1,000,001 bytes of JSON text is over"):
        cnm.parse_model_configuration(json.dumps(over, separators=(",", ":")))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda v: {"lr": v}, "model_configuration.lr"),
        (lambda v: {"optim": {"betas": [0.9, v]}}, "model_configuration.optim.betas[1]"),
        (lambda v: {"a": [{"b": {"c": v}}]}, "model_configuration.a[0].b.c"),
    ],
)
def test_nan_and_infinities_anywhere_name_the_path(build, path, bad):
    with pytest.raises(ValueError) as error:
        cnm.parse_model_configuration(build(bad))
    assert str(error.value).startswith(f"{path}: {bad} is not a JSON number")


@pytest.mark.parametrize("text", ['{"lr": NaN}', '{"lr": Infinity}', '{"a": [-Infinity]}'])
def test_nan_in_json_text_is_refused(text):
    with pytest.raises(ValueError, match=r"^model_configuration\.(lr|a\[0\]): .* is not a JSON number"):
        cnm.parse_model_configuration(text)


def test_subsets_are_bounded_too():
    with pytest.raises(ValueError, match=r"^train_subset\.filter\.dir: nan is not a JSON number"):
        cnm.normalize_subset_query({"filter": {"dir": math.nan}}, "train_subset")
    with pytest.raises(ValueError, match=r"^validation_subset(\.a)+: nested deeper than 64"):
        cnm.normalize_subset_query(_nested_dicts(MAX_DEPTH + 1), "validation_subset")


HUGE = "x" * 2_000_000


@pytest.mark.parametrize(
    "call",
    [
        lambda: cnm.parse_model_configuration(list(range(200_000))),
        lambda: cnm.parse_model_configuration("{" + HUGE[:900_000]),
        lambda: cnm.parse_model_configuration(HUGE),
        lambda: cnm.parse_model_configuration(_nested_dicts(MAX_DEPTH + 1, key="k" * 5_000)),
        lambda: cnm.parse_model_configuration({"k" * 100_000: math.nan}),
        lambda: cnm.normalize_subset_query([HUGE[:500_000]], "train_subset"),
        lambda: cnm.normalize_subset_query({"filter": {}, "x" * 500_000: 1}, "train_subset"),
        lambda: cnm.normalize_subset_query({"filter": {}, "resource": "y" * 500_000}, "train_subset"),
        lambda: cnm.CreateModelConfig.from_json(["m" * 500_000]),
        lambda: cnm.CreateModelConfig.from_json({"modelName": "{" + "z" * 500_000}),
        lambda: cnm.CreateModelConfig.from_json({"modelName": "{bad}" + "z" * 500_000}),
        lambda: cnm.CreateModelConfig.from_json({"modelName": ["n"] * 100_000}),
        lambda: cnm.check_base_model_status("s" * 500_000),
        lambda: cnm.check_base_model({"user": {"activeLearning": "v" * 500_000}}, None, None),
        lambda: cnm.check_base_model(None, ["c"] * 300_000, None),
        lambda: cnm.check_base_model(None, None, ["t", 1] * 300_000),
        lambda: cnm.check_model_name("/" * 500_000),
    ],
)
def test_every_error_message_is_at_most_about_a_kilobyte(call):
    with pytest.raises(ValueError) as error:
        call()
    assert len(str(error.value)) <= MESSAGE_LIMIT, len(str(error.value))
    assert "..." in str(error.value) or "bytes" in str(error.value)


# ------------------------------------------------------------------------------------------
# the base model: every field the node reads, checked before the clone
# ------------------------------------------------------------------------------------------

GOOD_METADATA = {
    "user": {"activeLearning": {"createdBy": {"executionId": "e0"}}, "mine": 1},
    "system": {"subsets": {"train": {"filter": {}}}, "annotationsSubsets": {}, "tags": {"update model": True}},
}


def test_a_well_formed_base_model_passes_and_is_copied():
    configuration = {"epochs": 3, "optim": {"lr": 0.1}}
    facts = cnm.check_base_model(GOOD_METADATA, configuration, ["yolo"])
    assert facts == cnm.BaseModelFacts(subsets={"train": {"filter": {}}}, configuration=configuration, tags=["yolo"])
    facts.configuration["optim"]["lr"] = 9
    assert configuration["optim"]["lr"] == 0.1


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {},
        {"user": {}},
        {"system": {}},
        {"user": {"activeLearning": {}}},
        {"user": {"other": None}},
        # null reads as absent (a platform that stores the null a removal sends)
        {"user": None},
        {"user": {"activeLearning": None}},
        {"system": None},
        {"system": {"subsets": None, "annotationsSubsets": None, "tags": None}},
    ],
)
def test_absent_fields_are_fine(metadata):
    assert cnm.check_base_model(metadata, None, None) == cnm.BaseModelFacts(subsets=None, configuration={}, tags=[])


@pytest.mark.parametrize(
    ("metadata", "field", "fix"),
    [
        ([1], "base_model.metadata", "model.metadata = {}"),
        ({"user": "x"}, "base_model.metadata.user", "model.metadata['user'] = {}"),
        (
            {"user": {"activeLearning": [1]}},
            "base_model.metadata.user.activeLearning",
            "model.metadata['user']['activeLearning'] = {}",
        ),
        ({"system": 3}, "base_model.metadata.system", "model.metadata['system'] = {}"),
        ({"system": {"subsets": []}}, "base_model.metadata.system.subsets", "['system']['subsets'] = {}"),
        ({"system": {"annotationsSubsets": "x"}}, "base_model.metadata.system.annotationsSubsets", "= {}"),
        ({"system": {"tags": ["update model"]}}, "base_model.metadata.system.tags", "['system']['tags'] = {}"),
    ],
)
def test_each_malformed_metadata_field_is_named_with_its_fix(metadata, field, fix):
    with pytest.raises(ValueError) as error:
        cnm.check_base_model(metadata, {}, [])
    message = str(error.value)
    assert message.startswith(f"{field}: ")
    assert "is not an object" in message and fix in message and "connect another model version" in message


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ([1, 2], r"^base_model\.configuration: \[1, 2\] is not an object"),
        ("epochs=3", r"^base_model\.configuration: 'epochs=3' is not an object"),
        ({"lr": math.nan}, r"^base_model\.configuration\.lr: nan is not a JSON number"),
        ({"a": {"b": [math.inf]}}, r"^base_model\.configuration\.a\.b\[0\]: inf is not a JSON number"),
        (_nested_dicts(MAX_DEPTH + 1), r"^base_model\.configuration(\.a)+: nested deeper than 64"),
    ],
)
def test_base_configuration_must_be_a_bounded_object(configuration, message):
    with pytest.raises(ValueError, match=message):
        cnm.check_base_model({}, configuration, None)


@pytest.mark.parametrize("tags", ["yolo", ["yolo", 3], {"a": 1}])
def test_base_tags_must_be_a_list_of_strings(tags):
    with pytest.raises(ValueError, match=r"^base_model\.tags: .* is not a list of strings"):
        cnm.check_base_model({}, {}, tags)


# ------------------------------------------------------------------------------------------
# the new model's own records (pure)
# ------------------------------------------------------------------------------------------

SUBSETS = {"train": {"filter": {"dir": "/t"}}, "validation": {"filter": {"dir": "/v"}}}
RECORD = {"executionId": "e1", "baseModelId": "m0"}


def test_decision_tags_are_the_ones_compare_models_writes():
    assert tuple(cnm.DECISION_TAGS) == tuple(ACTIONS)


@pytest.mark.parametrize("decision", ["update model", "discard"])
def test_own_metadata_drops_inherited_records_and_decision_tags_only(decision):
    inherited = {
        "user": {
            "activeLearning": {"createdBy": {"executionId": "e0"}, "comparison": {"decision": decision}, "x": 1},
            "mine": {"keep": True},
        },
        "system": {
            "tags": {decision: True, "reviewed": True},
            "subsets": {"train": {"filter": {}}, "test": {"filter": {"dir": "/test"}}},
            "clonedFrom": "m0",
        },
    }
    before = json.loads(json.dumps(inherited))
    out = cnm.own_metadata(inherited, RECORD, SUBSETS)
    assert out == {
        "user": {"activeLearning": {"createdBy": RECORD}, "mine": {"keep": True}},
        "system": {
            "tags": {"reviewed": True},
            "subsets": {**SUBSETS, "test": {"filter": {"dir": "/test"}}},
            "clonedFrom": "m0",
        },
    }
    assert inherited == before  # not modified
    out["user"]["activeLearning"]["createdBy"]["executionId"] = "changed"
    assert RECORD["executionId"] == "e1"


@pytest.mark.parametrize("metadata", [None, {}, {"user": None, "system": None}, {"system": {"tags": ["t"]}}])
def test_own_metadata_of_sparse_or_odd_metadata(metadata):
    out = cnm.own_metadata(metadata, RECORD, SUBSETS)
    assert out["user"] == {"activeLearning": {"createdBy": RECORD}}
    assert out["system"]["subsets"] == SUBSETS


@pytest.mark.parametrize(
    ("metadata", "finished"),
    [
        ({"user": {"activeLearning": {"createdBy": dict(RECORD)}}}, True),
        ({"user": {"activeLearning": {"createdBy": dict(RECORD), "comparison": {}}}}, True),
        ({"user": {"activeLearning": {"createdBy": {**RECORD, "executionId": "e0"}}}}, False),
        ({"user": {"activeLearning": {"createdBy": {**RECORD, "baseModelId": "other"}}}}, False),
        ({"user": {"activeLearning": {}}}, False),
        ({"user": {"activeLearning": None}}, False),
        ({"user": None}, False),
        (None, False),
    ],
)
def test_is_finished_only_with_this_runs_record(metadata, finished):
    assert cnm.is_finished(metadata, RECORD) is finished


def test_clone_tags_drop_decision_and_old_execution_tags_keep_the_rest_in_order():
    base = ["b", "update model", "active-learning-execution:e0", "discard", "a", "updated model"]
    assert cnm.clone_tags(base, "e1") == ["b", "a", "updated model", "active-learning-execution:e1"]
    assert cnm.clone_tags(base, None) == ["b", "a", "updated model"]


def test_kept_model_is_the_oldest_then_the_smallest_id():
    assert cnm.kept_model_id([("2025-01-02", "a"), ("2025-01-01", "z")]) == "z"
    assert cnm.kept_model_id([("2025-01-01", "b"), ("2025-01-01", "a")]) == "a"
    assert cnm.kept_model_id([("2025-01-01", "only")]) == "only"
    with pytest.raises(ValueError):
        cnm.kept_model_id([])


@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        ({"createdAt": "2025-01-31T12:05:09.123Z"}, datetime(2025, 1, 31, 12, 5, 9, 123000, tzinfo=UTC)),
        ({"createdAt": "2025-01-31T12:05:09"}, datetime(2025, 1, 31, 12, 5, 9, tzinfo=UTC)),
        ({"createdAt": "2025-01-31T14:05:09+02:00"}, datetime(2025, 1, 31, 12, 5, 9, tzinfo=UTC)),
        ({"createdAt": "yesterday"}, None),
        ({"createdAt": 17}, None),
        ({"createdAt": ""}, None),
        ({}, None),
        (None, None),
    ],
)
def test_execution_time(execution, expected):
    moment = cnm.execution_time(execution)
    if expected is None:
        assert moment is None
    else:
        assert moment == expected and moment.tzinfo is not None


# ------------------------------------------------------------------------------------------
# through the real client: refused before any request
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_configuration",
    [
        {"lr": math.nan},
        {"optim": {"betas": [0.9, math.inf]}},
        {"x": -math.inf},
        _nested_dicts(MAX_DEPTH + 1),
        {"blob": "x" * (MAX_BYTES + 1)},
    ],
)
def test_bad_model_configuration_makes_no_request(platform, project, dataset, model_configuration):
    base_model = platform.create_model(project, "base", dataset=dataset, configuration={"epochs": 2})
    context = platform.make_context({"modelName": "{base_model.name}-next"}, "exec-bounds", project)
    platform.reset_counts()
    with pytest.raises(ValueError, match=r"^model_configuration") as error:
        ServiceRunner().create_new_model(
            base_model=base_model, dataset=dataset, model_configuration=model_configuration, context=context
        )
    assert len(str(error.value)) <= MESSAGE_LIMIT
    assert sum(platform.request_counts.values()) == 0


def test_json_text_with_a_key_given_twice_is_refused():
    from nodes.create_new_model.config import normalize_subset_query, parse_model_configuration

    with pytest.raises(ValueError, match=r"^model_configuration: key 'epochs' is given twice"):
        parse_model_configuration('{"epochs": 1, "epochs": 2}')
    with pytest.raises(ValueError, match=r"^train_subset: key 'dir' is given twice"):
        normalize_subset_query('{"filter": {"dir": "/a", "dir": "/b"}}', "train_subset")
