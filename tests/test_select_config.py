"""Tests of nodes/select_for_labeling/config.py: defaults, parsing, and one error per bad field."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime

import pytest

from nodes.select_for_labeling.config import (
    AGGREGATIONS,
    DIVERSITIES,
    GATE_KEYS,
    SELECTION_KEYS,
    SELECTION_NODE_KEYS,
    STRATEGIES,
    GateConfig,
    SelectionConfig,
    TaskConfig,
    default_pool_filter,
    merge_selection_config,
)


def test_gate_defaults_and_values():
    assert GateConfig.from_node_config(None) == GateConfig()
    assert GateConfig.from_node_config({}) == GateConfig(
        strategy="margin", threshold=0.5, aggregation="max", model_id=None, empty_score=0.0, seed=0
    )
    raw = {
        "nodeName": "Gate",
        "strategy": "entropy",
        "threshold": 1,
        "aggregation": "sum",
        "modelId": " m1 ",
        "emptyScore": 0,
        "seed": 9,
    }
    frozen = copy.deepcopy(raw)
    config = GateConfig.from_node_config(raw)
    assert raw == frozen
    assert (config.strategy, config.threshold, config.aggregation, config.model_id) == ("entropy", 1.0, "sum", "m1")
    assert (config.empty_score, config.seed, config.node_name) == (0.0, 9, "Gate")
    with pytest.raises(AttributeError):
        config.threshold = 0.1  # frozen


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"strategy": "greedy"}, r"customNodeConfig.strategy: 'greedy' is not one of .*example"),
        ({"threshold": 1.2}, r"customNodeConfig.threshold: 1.2 is outside \[0, 1\]; example"),
        ({"threshold": -0.1}, "customNodeConfig.threshold: -0.1"),
        ({"threshold": "0.5"}, "customNodeConfig.threshold: '0.5' is not a finite number"),
        ({"threshold": True}, "customNodeConfig.threshold: True"),
        ({"threshold": math.nan}, "customNodeConfig.threshold: nan"),
        ({"threshold": math.inf}, "customNodeConfig.threshold: inf"),
        ({"aggregation": "median"}, "customNodeConfig.aggregation: 'median'"),
        ({"modelId": 5}, "customNodeConfig.modelId: 5"),
        ({"emptyScore": 2}, "customNodeConfig.emptyScore: 2"),
        ({"seed": 1.5}, "customNodeConfig.seed: 1.5 is not an integer"),
        ({"seed": False}, "customNodeConfig.seed: False"),
        (
            {"treshold": 0.5},
            r"customNodeConfig: unknown key\(s\) 'treshold' \(rename it to 'threshold'\); known keys are nodeName, strategy",
        ),
        ([1], r"customNodeConfig: \[1\] is not an object"),
    ],
)
def test_gate_bad_fields(raw, message):
    with pytest.raises(ValueError, match=message):
        GateConfig.from_node_config(raw)


def test_gate_accepts_what_the_platform_stores():
    """The platform writes ``name`` and ``validation`` on every custom node; the UI's empty modelId is ""."""
    stored = {
        "name": "Uncertainty Gate",
        "validation": {"valid": True, "errors": []},
        "nodeName": "Uncertainty Gate",
        "strategy": "entropy",
        "threshold": 0.4,
        "aggregation": "max",
        "modelId": "",
    }
    config = GateConfig.from_node_config(stored)
    assert (config.strategy, config.threshold, config.model_id) == ("entropy", 0.4, None)
    assert GateConfig.from_node_config({"modelId": "   "}).model_id is None
    assert "validation" in stored and stored["modelId"] == ""  # the caller's dict is untouched


def test_unknown_key_message_lists_every_known_key():
    with pytest.raises(ValueError) as gate_error:
        GateConfig.from_node_config({"x": 1})
    assert all(k in str(gate_error.value) for k in GATE_KEYS)
    with pytest.raises(ValueError) as selection_error:
        SelectionConfig.from_json({"budget": 1, "budgett": 2})
    assert "'budgett'" in str(selection_error.value)
    assert all(k in str(selection_error.value) for k in SELECTION_KEYS)


def test_selection_defaults():
    config = SelectionConfig.from_json({"budget": 10})
    assert config == SelectionConfig(budget=10)
    assert (config.strategy, config.aggregation, config.diversity, config.tag) == ("margin", "max", "none", "to_label")
    assert (config.pool, config.feature_set, config.per_label_quota, config.task) == (None, None, None, None)
    assert config.test_subset_tags == ("test",)
    assert config.pool_query() == default_pool_filter("to_label")


def test_selection_full_config_and_caller_dict_untouched():
    raw = {
        "budget": 200,
        "strategy": "entropy",
        "aggregation": "mean",
        "pool": {"dir": "/incoming"},
        "diversity": "kcenter",
        "featureSet": "clip",
        "perLabelQuota": 20,
        "tag": "label_me",
        "seed": 3,
        "task": {"name": "round 2", "assignees": ["ann@example.com"], "dueDate": 1896048000000},
        "testSubsetTags": ["test", "holdout"],
        "emptyScore": 0.5,
    }
    frozen = copy.deepcopy(raw)
    config = SelectionConfig.from_json(raw)
    assert raw == frozen
    assert config.pool == {"filter": {"dir": "/incoming"}}
    assert config.task == TaskConfig("round 2", ("ann@example.com",), 1896048000.0)
    assert (config.feature_set, config.per_label_quota, config.tag, config.seed) == ("clip", 20, "label_me", 3)
    query = config.pool_query()
    assert query["filter"]["$and"] == [
        {"dir": "/incoming"},
        {"metadata.system.tags.test": {"$ne": True}},
        {"metadata.system.tags.holdout": {"$ne": True}},
    ]
    query["filter"]["$and"].clear()
    assert len(config.pool_query()["filter"]["$and"]) == 3  # a fresh copy each call


def test_default_pool_excludes_subsets_and_already_chosen_items():
    conditions = default_pool_filter("to_label")["filter"]["$and"]
    assert conditions == [
        {"hidden": False},
        {"type": "file"},
        {"metadata.system.tags.train": {"$ne": True}},
        {"metadata.system.tags.validation": {"$ne": True}},
        {"metadata.system.tags.test": {"$ne": True}},
        {"metadata.system.tags.to_label": {"$ne": True}},
    ]
    extra = SelectionConfig.from_json({"budget": 1, "testSubsetTags": ["holdout"]}).pool_query()
    assert {"metadata.system.tags.holdout": {"$ne": True}} in extra["filter"]["$and"]


def test_pool_with_and_is_extended_not_nested():
    pool = {"filter": {"$and": [{"dir": "/a"}, {"metadata.system.tags.test": {"$ne": True}}]}}
    assert SelectionConfig.from_json({"budget": 1, "pool": pool}).pool_query() == pool


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "selection_config.budget: missing"),
        ({"budget": 0}, "selection_config.budget: 0 is less than 1"),
        ({"budget": -5}, "selection_config.budget: -5"),
        ({"budget": 3.0}, "selection_config.budget: 3.0 is not a positive integer"),
        ({"budget": True}, "selection_config.budget: True is not a positive integer"),
        ({"budget": "10"}, "selection_config.budget: '10'"),
        ({"budget": 1, "strategy": "bald"}, "selection_config.strategy: 'bald'"),
        ({"budget": 1, "aggregation": "min"}, "selection_config.aggregation: 'min'"),
        ({"budget": 1, "diversity": "coreset"}, "selection_config.diversity: 'coreset'"),
        ({"budget": 1, "pool": {"name": {"$regexx": "a"}}}, r"selection_config.pool.filter.name.\$regexx"),
        ({"budget": 1, "pool": "dir=/a"}, "selection_config.pool: 'dir=/a' is not a non-empty DQL object"),
        ({"budget": 1, "pool": {}}, "selection_config.pool: {}"),
        (
            {"budget": 1, "pool": {"filter": {"dir": "/a"}, "pagee": 2}},
            r"selection_config.pool: unknown query key\(s\) 'pagee'",
        ),
        (
            {"budget": 1, "pool": {"filter": {"dir": "/a"}, "resource": "annotations"}},
            r"selection_config.pool.resource: 'annotations' is not 'items'",
        ),
        ({"budget": 1, "featureSet": 3}, "selection_config.featureSet: 3"),
        ({"budget": 1, "perLabelQuota": 0}, "selection_config.perLabelQuota: 0"),
        ({"budget": 1, "perLabelQuota": 2.0}, "selection_config.perLabelQuota: 2.0"),
        ({"budget": 1, "tag": "to label"}, "selection_config.tag: 'to label' is not a tag name"),
        ({"budget": 1, "tag": "test"}, "selection_config.tag: 'test' is also a test-subset tag"),
        ({"budget": 1, "seed": "1"}, "selection_config.seed: '1' is not an integer"),
        ({"budget": 1, "testSubsetTags": "test"}, "selection_config.testSubsetTags: 'test' is not a list"),
        ({"budget": 1, "testSubsetTags": ["a.b"]}, r"selection_config.testSubsetTags\[0\]: 'a.b'"),
        ({"budget": 1, "emptyScore": math.nan}, "selection_config.emptyScore: nan"),
        ({"budget": 1, "task": "t"}, "selection_config.task: 't' is not an object"),
        ({"budget": 1, "task": {}}, "selection_config.task.name: missing"),
        ({"budget": 1, "task": {"name": " "}}, "selection_config.task.name: ' '"),
        ({"budget": 1, "task": {"name": "t", "assignees": "a@b.c"}}, "selection_config.task.assignees: 'a@b.c'"),
        ({"budget": 1, "task": {"name": "t", "assignees": ["ann"]}}, r"selection_config.task.assignees\[0\]: 'ann'"),
        ({"budget": 1, "task": {"name": "t", "dueDate": "next week"}}, "selection_config.task.dueDate: 'next week'"),
        ({"budget": 1, "task": {"name": "t", "dueDate": -1}}, "selection_config.task.dueDate: -1"),
        (
            {"budget": 1, "task": {"name": "t", "owner": "x"}},
            r"selection_config.task: unknown key\(s\) 'owner' \(remove it\)",
        ),
        ({"budget": 1, "pool": {"filter": {"size": math.inf}}}, "selection_config.pool.filter.size: inf"),
        (None, "selection_config: missing"),
    ],
)
def test_selection_bad_fields(raw, message):
    with pytest.raises(ValueError, match=message):
        SelectionConfig.from_json(raw)


def test_errors_carry_an_example():
    with pytest.raises(ValueError, match=r'example: "budget": 100'):
        SelectionConfig.from_json({"budget": 0})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2030-01-31", datetime(2030, 1, 31, tzinfo=UTC).timestamp()),
        ("2030-01-31T18:00:00", datetime(2030, 1, 31, 18, tzinfo=UTC).timestamp()),
        ("2030-01-31T18:00:00Z", datetime(2030, 1, 31, 18, tzinfo=UTC).timestamp()),
        ("2030-01-31T20:00:00+02:00", datetime(2030, 1, 31, 18, tzinfo=UTC).timestamp()),
        (1896048000000, 1896048000.0),
        (None, None),
    ],
)
def test_task_due_date_forms(value, expected):
    assert TaskConfig.from_json({"name": "t", "dueDate": value}, "task").due_date == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"budget": 5, "tag": "picked\n"}, r"selection_config.tag: 'picked\\n' is not a tag name"),
        ({"budget": 5, "tag": "picked\r\n"}, r"selection_config.tag: 'picked\\r\\n'"),
        ({"budget": 5, "testSubsetTags": ["test\n"]}, r"selection_config.testSubsetTags\[0\]: 'test\\n'"),
        (
            {"budget": 5, "task": {"name": "t", "assignees": ["ann@example.com\n"]}},
            r"selection_config.task.assignees\[0\]: 'ann@example.com\\n' is not an email address",
        ),
        (
            {"budget": 5, "task": {"name": "t", "assignees": ["a@b.c", "\nann@example.com"]}},
            r"selection_config.task.assignees\[1\]",
        ),
        (
            {"budget": 5, "task": {"name": "t", "assignees": ["a" * 250 + "@b.co"]}},
            r"selection_config.task.assignees\[0\]: 'aaa",
        ),
    ],
)
def test_names_are_checked_on_the_whole_string(raw, message):
    with pytest.raises(ValueError, match=message):
        SelectionConfig.from_json(raw)


def test_the_longest_valid_tag_and_email_pass():
    config = SelectionConfig.from_json(
        {"budget": 1, "tag": "t" * 64, "task": {"name": "t", "assignees": ["a" * 242 + "@example.com"]}}
    )
    assert config.tag == "t" * 64 and len(config.task.assignees[0]) == 254
    with pytest.raises(ValueError, match="selection_config.tag"):
        SelectionConfig.from_json({"budget": 1, "tag": "t" * 65})
    with pytest.raises(ValueError, match=r"assignees\[0\]"):
        SelectionConfig.from_json({"budget": 1, "task": {"name": "t", "assignees": ["a" * 243 + "@example.com"]}})
    with pytest.raises(ValueError, match="customNodeConfig"):
        GateConfig.from_node_config({"strategy": "margin\n"})


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("call", "start"),
    [
        (
            lambda: SelectionConfig.from_json({"budget": 1, "pool": {"filter": {"k" * 300_000: {"$bad": 1}}}}),
            "selection_config.pool.filter.kkk",
        ),
        (
            lambda: SelectionConfig.from_json({"budget": 1, "pool": {"filter": {"a": 1}, "z" * 300_000: 1}}),
            "selection_config.pool: unknown query key(s) 'zzz",
        ),
        (
            lambda: SelectionConfig.from_json({"budget": 1, **{f"k{i}" * 1000: 1 for i in range(100)}}),
            "selection_config: unknown key(s) 'k0k0",
        ),
        (
            lambda: SelectionConfig.from_json({"budget": 1, "strategy": "s" * 300_000}),
            "selection_config.strategy: 'sss",
        ),
        (
            lambda: SelectionConfig.from_json({"budget": 1, "task": {"name": "t", "dueDate": "d" * 300_000}}),
            "selection_config.task.dueDate: 'ddd",
        ),
        (lambda: SelectionConfig.from_json({"budget": 1, "pool": _nested(10_000)}), "selection_config.pool.x.x"),
        (
            lambda: SelectionConfig.from_json({"budget": 1, "pool": {"filter": {"a": "x" * 2_000_000}}}),
            "selection_config: 2,000,",
        ),
        (
            lambda: SelectionConfig.from_json({"budget": 1, "pool": {"filter": {"k" * 300_000: math.nan}}}),
            "selection_config.pool.filter.kkk",
        ),
        (lambda: GateConfig.from_node_config({"strategy": "s" * 300_000}), "customNodeConfig.strategy: 'sss"),
        (lambda: GateConfig.from_node_config({"validation": _nested(10_000)}), "customNodeConfig.validation.x"),
    ],
)
def test_every_message_is_short_and_names_the_field(call, start):
    with pytest.raises(ValueError) as error:  # never a RecursionError / MemoryError
        call()
    message = str(error.value)
    assert message.startswith(start), message[:200]
    assert len(message) <= 1000, len(message)


def test_a_full_pool_query_is_accepted_and_the_node_sets_paging_and_sort():
    config = SelectionConfig.from_json(
        {
            "budget": 1,
            "pool": {
                "filter": {"dir": "/a"},
                "resource": "items",
                "page": 3,
                "pageSize": 10,
                "sort": {"filename": "descending"},
            },
        }
    )
    assert config.pool_query() == {"filter": {"$and": [{"dir": "/a"}, {"metadata.system.tags.test": {"$ne": True}}]}}


# ---------------------------------------------------------------------------------------------
# Select for Labeling: node config (defaults) merged with the selection_config input (overrides)
# ---------------------------------------------------------------------------------------------

#: What the platform stores for a Select for Labeling node configured in its panel (manifest defaults).
NODE_DEFAULTS = {
    "name": "Select for Labeling",
    "validation": {"valid": True, "errors": []},
    "nodeName": "Select for Labeling",
    "budget": 100,
    "strategy": "margin",
    "aggregation": "max",
    "diversity": "none",
    "tag": "to_label",
    "seed": 0,
    "featureSet": "",
}


@pytest.mark.parametrize("given", [None, {}])
def test_merge_node_defaults_only(given):
    node = {**NODE_DEFAULTS, "budget": 7, "strategy": "entropy", "diversity": "kcenter", "tag": "round_2", "seed": 4}
    frozen = copy.deepcopy(node)
    raw = merge_selection_config(node, given)
    assert raw == {
        "budget": 7,
        "strategy": "entropy",
        "aggregation": "max",
        "diversity": "kcenter",
        "tag": "round_2",
        "seed": 4,
    }
    config = SelectionConfig.from_json(raw)
    assert (config.budget, config.strategy, config.diversity, config.tag, config.seed) == (
        7,
        "entropy",
        "kcenter",
        "round_2",
        4,
    )
    assert config.feature_set is None  # the UI's empty default "" is "not set"
    assert node == frozen


def test_merge_input_overrides_the_node_config():
    node = {**NODE_DEFAULTS, "featureSet": "clip"}
    given = {"budget": 5, "diversity": "cluster", "pool": {"filter": {"dir": "/new"}}}
    frozen = copy.deepcopy(given)
    raw = merge_selection_config(node, given)
    assert raw["budget"] == 5 and raw["diversity"] == "cluster" and raw["pool"] == {"filter": {"dir": "/new"}}
    assert (raw["strategy"], raw["tag"], raw["featureSet"]) == ("margin", "to_label", "clip")  # from the node
    raw["pool"]["filter"]["dir"] = "/changed"
    assert given == frozen  # a fresh copy: the caller's input is untouched
    assert merge_selection_config(node, {"budget": 5, "featureSet": ""})["featureSet"] is None  # "" clears it
    config = SelectionConfig.from_json(merge_selection_config({"budget": 3}, {"budget": 9, "strategy": "random"}))
    assert (config.budget, config.strategy) == (9, "random")


def test_merge_without_a_node_config_is_the_input():
    assert merge_selection_config(None, {"budget": 2, "seed": 1}) == {"budget": 2, "seed": 1}
    assert SelectionConfig.from_json(merge_selection_config(None, {"budget": 2})) == SelectionConfig(budget=2)


@pytest.mark.parametrize(
    ("node", "given", "message"),
    [
        ({"budget": 0}, None, r"^customNodeConfig\.budget: 0 is less than 1; example"),
        ({"budget": 2.5}, {}, r"^customNodeConfig\.budget: 2\.5 is not a positive integer"),
        ({"budget": 1, "strategy": "bald"}, None, r"^customNodeConfig\.strategy: 'bald' is not one of"),
        ({"budget": 1, "aggregation": "min"}, None, r"^customNodeConfig\.aggregation: 'min'"),
        ({"budget": 1, "diversity": "coreset"}, None, r"^customNodeConfig\.diversity: 'coreset'"),
        ({"budget": 1, "tag": "to label"}, None, r"^customNodeConfig\.tag: 'to label' is not a tag name"),
        ({"budget": 1, "tag": "test"}, None, r"^customNodeConfig\.tag: 'test' is also a test-subset tag"),
        ({"budget": 1, "seed": "1"}, None, r"^customNodeConfig\.seed: '1' is not an integer"),
        ({"budget": 1, "featureSet": 3}, None, r"^customNodeConfig\.featureSet: 3"),
        ({"budget": 1, "nodeName": 5}, None, r"^customNodeConfig\.nodeName: 5"),
        (
            {"budget": 1, "pool": {}},
            None,
            r"^customNodeConfig: unknown key\(s\) 'pool' \(remove it\); known keys are nodeName, budget",
        ),
        ([1], None, r"^customNodeConfig: \[1\] is not an object"),
        # a bad node value is reported even when the input overrides it
        ({"budget": -1}, {"budget": 3}, r"^customNodeConfig\.budget: -1"),
        # input values: named as selection_config fields
        ({"budget": 1}, "budget=3", r"^selection_config: 'budget=3' is not an object"),
        (None, None, r"^selection_config\.budget: missing; set the node's budget field \(customNodeConfig\.budget\)"),
        ({"strategy": "entropy"}, {}, r"^selection_config\.budget: missing"),
    ],
)
def test_merge_bad_node_value_names_the_node_config_field(node, given, message):
    with pytest.raises(ValueError, match=message):
        merge_selection_config(node, given)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"budget": 0}, r"^selection_config\.budget: 0 is less than 1"),
        ({"strategy": "bald"}, r"^selection_config\.strategy: 'bald'"),
        ({"tag": "test"}, r"^selection_config\.tag: 'test' is also a test-subset tag"),
        ({"name": "x"}, r"^selection_config: unknown key\(s\) 'name'"),
    ],
)
def test_merge_bad_input_value_names_the_selection_config_field(given, message):
    with pytest.raises(ValueError, match=message):
        SelectionConfig.from_json(merge_selection_config(NODE_DEFAULTS, given))


def test_merge_ignores_the_platform_keys():
    stored = {"name": "select", "validation": {"valid": False, "errors": ["x"]}, "nodeName": "Pick", "budget": 3}
    assert merge_selection_config(stored, None) == {"budget": 3}
    assert SelectionConfig.from_json(merge_selection_config(NODE_DEFAULTS, None)) == SelectionConfig(budget=100)
    assert "validation" in stored and stored["nodeName"] == "Pick"


def test_node_config_keys_are_the_manifest_fields():
    import json
    from pathlib import Path

    manifest = json.loads((Path(__file__).resolve().parent.parent / "dataloop.json").read_text())
    node = next(n for n in manifest["components"]["pipelineNodes"] if n["name"] == "selectForLabeling")
    fields = {f["name"]: f["props"] for f in node["configuration"]["fields"]}
    assert tuple(fields) == SELECTION_NODE_KEYS
    defaults = {k: p["default"] for k, p in fields.items()}
    assert defaults == {k: v for k, v in NODE_DEFAULTS.items() if k not in ("name", "validation")}
    assert all(p.get("tooltip") for p in fields.values())
    assert fields["featureSet"]["required"] is False
    for key, allowed in (("strategy", STRATEGIES), ("aggregation", AGGREGATIONS), ("diversity", DIVERSITIES)):
        assert {o["value"] for o in fields[key]["options"]} == set(allowed)
    assert SelectionConfig.from_json(merge_selection_config(defaults, None)) == SelectionConfig(budget=100)


# ---------------------------------------------------------------------------------------------
# Issue 23: subset tags, held-out tags, seeds, task names and due dates, unknown keys
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["train", "validation", "test"])
def test_a_subset_tag_is_never_the_selection_tag(tag):
    with pytest.raises(ValueError, match=rf"^selection_config\.tag: '{tag}' is (a subset tag|also a test-subset)"):
        SelectionConfig.from_json({"budget": 1, "tag": tag})
    with pytest.raises(ValueError, match=rf"^customNodeConfig\.tag: '{tag}'"):
        merge_selection_config({"budget": 1, "tag": tag}, None)


def test_a_test_subset_tag_or_a_pipeline_group_is_never_the_selection_tag():
    from nodes.select_for_labeling.config import check_selection_tag

    with pytest.raises(ValueError, match=r"'holdout' is also a test-subset tag"):
        SelectionConfig.from_json({"budget": 1, "tag": "holdout", "testSubsetTags": ["holdout"]})
    with pytest.raises(ValueError, match=r"customNodeConfig\.tag: 'holdout' is also a test-subset tag"):
        merge_selection_config({"budget": 1, "tag": "holdout"}, {"testSubsetTags": ["holdout"]})
    with pytest.raises(ValueError, match=r"'gold' is a subset tag of Model Data Split.*'gold' subset"):
        check_selection_tag("selection_config.tag", "gold", subset_tags=("gold", "silver"))
    assert check_selection_tag("selection_config.tag", "round_3", subset_tags=("gold",)) == "round_3"


def test_empty_test_subset_tags_are_refused_and_test_is_always_held_out():
    with pytest.raises(ValueError, match=r"^selection_config\.testSubsetTags: \[\] is empty.*held-out"):
        SelectionConfig.from_json({"budget": 1, "testSubsetTags": []})
    config = SelectionConfig.from_json({"budget": 1, "testSubsetTags": ["holdout"], "pool": {"dir": "/a"}})
    assert config.held_out_tags == ("holdout", "test")
    guards = config.pool_query()["filter"]["$and"]
    assert {"metadata.system.tags.test": {"$ne": True}} in guards
    assert {"metadata.system.tags.holdout": {"$ne": True}} in guards


def test_pipeline_groups_join_the_default_pool_exclusions_only_when_they_are_tag_names():
    conditions = SelectionConfig(budget=1).pool_query(("gold", "bad.name", "x y"))["filter"]["$and"]
    assert {"metadata.system.tags.gold": {"$ne": True}} in conditions
    assert not [c for c in conditions if "bad" in next(iter(c)) or "x y" in next(iter(c))]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: SelectionConfig.from_json({"budget": 1, "seed": -1}), r"selection_config\.seed: -1 is less than 0"),
        (lambda: GateConfig.from_node_config({"seed": -5}), r"customNodeConfig\.seed: -5 is less than 0"),
        (lambda: merge_selection_config({"budget": 1, "seed": -2}, None), r"customNodeConfig\.seed: -2"),
        (
            lambda: SelectionConfig.from_json({"budget": 1, "seed": 2**32}),
            r"selection_config\.seed: 4294967296 is more",
        ),
    ],
)
def test_negative_or_huge_seeds_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


NOW = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("due", "message"),
    [
        ("2026-12-31", r"dueDate: '2026-12-31' is in the past"),
        (1_700_000_000_000, r"dueDate: 1700000000000 is in the past"),
        (1_896_048_000, r"is in the past .*\(epoch times are milliseconds\)"),  # seconds, not ms
        ("9999-12-31", r"dueDate: '9999-12-31' is after 2037-"),
        (1e30, r"dueDate: 1e\+30 is after"),
    ],
)
def test_past_or_absurd_due_dates_are_refused(due, message):
    with pytest.raises(ValueError, match=message):
        TaskConfig.from_json({"name": "t", "dueDate": due}, "task", now=NOW)
    assert TaskConfig.from_json({"name": "t", "dueDate": "2027-06-01"}, "task", now=NOW).due_date is not None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("round\n1", r"holds U\+000A \(a control or format character\) at position 5"),
        ("round\u202e1gpj.exe", r"holds U\+202E"),
        ("\u200b", r"holds U\+200B"),
        ("a\u200bb", r"holds U\+200B .* at position 1"),
        ("\u0301\u0301", r"has no visible character"),
        ("\u3000 \u00a0", r"is not a non-empty string"),
        ("x" * 300, r"is 300 characters long, more than 256"),
        ("x" * 300_000, r"is 300,000 characters long"),
    ],
)
def test_task_names_with_control_or_format_characters_or_nothing_visible_are_refused(name, message):
    with pytest.raises(ValueError, match=r"^selection_config\.task\.name: .*" + message) as error:
        SelectionConfig.from_json({"budget": 1, "task": {"name": name}})
    assert len(str(error.value)) < 1024


@pytest.mark.parametrize(
    ("call", "suggestion"),
    [
        (lambda: SelectionConfig.from_json({"budget": 1, "budgte": 2}), "'budgte' (rename it to 'budget')"),
        (lambda: SelectionConfig.from_json({"budget": 1, "testSubsetTag": []}), "(rename it to 'testSubsetTags')"),
        (lambda: SelectionConfig.from_json({"budget": 1, "task": {"nmae": "t"}}), "'nmae' (rename it to 'name')"),
        (
            lambda: SelectionConfig.from_json({"budget": 1, "pool": {"filter": {"a": 1}, "jion": {}}}),
            "'jion' (rename it to 'join')",
        ),
        (lambda: GateConfig.from_node_config({"modelid": "m"}), "'modelid' (rename it to 'modelId')"),
        (lambda: GateConfig.from_node_config({"emptyscore": 1}), "'emptyscore' (rename it to 'emptyScore')"),
        (lambda: merge_selection_config({"budget": 1, "featureset": "x"}, None), "(rename it to 'featureSet')"),
        (lambda: merge_selection_config({"budget": 1, "zzz": 1}, None), "'zzz' (remove it)"),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_valid_key(call, suggestion):
    with pytest.raises(ValueError) as error:
        call()
    assert "unknown" in str(error.value) and suggestion in str(error.value)


def test_the_keys_the_platform_writes_stay_accepted():
    platform_keys = {"name": "node", "validation": {"valid": True, "errors": []}}
    assert GateConfig.from_node_config({**platform_keys, "threshold": 0.2}).threshold == 0.2
    assert merge_selection_config({**platform_keys, "budget": 4}, None) == {"budget": 4}


@pytest.mark.parametrize("diversity", ["cluster", "kcenter"])
def test_diversity_with_random_strategy_is_refused_as_measured(diversity):
    """benchmarks/bench_al.py: random + cluster / kcenter ended below plain random (docs/benchmarks.md)."""
    with pytest.raises(ValueError, match=r"diversity: '?" + diversity + r"'? spreads the most uncertain"):
        SelectionConfig.from_json({"budget": 5, "strategy": "random", "diversity": diversity})
    assert SelectionConfig.from_json({"budget": 5, "strategy": "random"}).diversity == "none"
    assert SelectionConfig.from_json({"budget": 5, "strategy": "margin", "diversity": diversity}).diversity == diversity
