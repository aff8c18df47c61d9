"""Pure logic of the Create New Model node: name templates, configuration merge, subsets."""

from __future__ import annotations

import builtins
import copy
import json
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import dtlpy as dl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import create_new_model as cnm
from nodes.common.defaults import load_subset_filter
from nodes.common.limits import check_visible_name

VALUES = cnm.NameValues(
    base_model_name="yolo",
    base_model_id="m-123",
    dataset_name="images",
    dataset_id="d-456",
    project_name="proj",
)
# 14:05:09 at UTC+2, i.e. 12:05:09 UTC
NOW = datetime(2025, 1, 31, 14, 5, 9, tzinfo=timezone(timedelta(hours=2)))


# ---------------------------------------------------------------------------------------------
# name templates


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (cnm.DEFAULT_NAME_TEMPLATE, "yolo_2025_01_31-T14_05_09"),
        ("{base_model.name}-{datetime.datetime.now().strftime('%Y_%m_%d-T%H_%M_%S')}", "yolo-2025_01_31-T14_05_09"),
        ('{base_model.name}_{datetime.datetime.now().strftime("%H%M")}', "yolo_1405"),
        ("{datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M')}", "2025-01-31 12:05"),
        ('{datetime.datetime.utcnow().strftime("%H")}', "12"),
        ("{now:%Y%m%d}", "20250131"),
        ("{now:%H:%M:%S}", "14:05:09"),
        ("{base_model.id}", "m-123"),
        ("{dataset.name}", "images"),
        ("{dataset.id}", "d-456"),
        ("{project.name}", "proj"),
        ("{project.name}.{dataset.name}.{base_model.name}", "proj.images.yolo"),
        ("plain name", "plain name"),
        ("v{{2}}_{base_model.name}", "v{2}_yolo"),
        ("{{base_model.name}}", "{base_model.name}"),
        ("{now:%Y}{now:%m}", "202501"),
    ],
)
def test_allowed_templates_render_exactly(template, expected):
    assert cnm.render_model_name(template, VALUES, NOW) == expected


def test_utc_form_treats_a_naive_now_as_local_time():
    naive = datetime(2025, 1, 31, 14, 5, 9)
    expected = naive.astimezone(UTC).strftime("%H")
    assert cnm.render_model_name("{datetime.datetime.utcnow().strftime('%H')}", VALUES, naive) == expected
    assert cnm.render_model_name("{now:%H}", VALUES, naive) == "14"


def test_substituted_text_is_never_rescanned():
    # C3: the original re-evaluated braces that a substitution produced.
    values = cnm.NameValues("{dataset.id}", "{", "}{now:%Y}", "x", "{__import__('os')}")
    name = cnm.render_model_name("{base_model.name}|{base_model.id}|{dataset.name}|{project.name}", values, NOW)
    assert name == "{dataset.id}|{|}{now:%Y}|{__import__('os')}"


HOSTILE_TEMPLATES = [
    "{__import__('os').system('touch pwned')}",
    "{base_model.__class__}",
    "{",
    "}{",
    "}",
    "{base_model.name.__class__}",
    "{datetime.datetime.now().strftime('%Y').__class__}",
    "{now:%Y}{}",
    "{}",
    "{base_model}",
    "{base_model.name()}",
    "{dataset.__dict__}",
    "{open('/etc/passwd').read()}",
    "{datetime.datetime.now().strftime('%Y'}",
    "{datetime.datetime.now().strftime(x)}",
    "{datetime.datetime.now().strftime('%Y' + 'x')}",
    "{datetime.datetime.now().strftime('%Y'.__class__)}",
    "{datetime.datetime.now().strftime(\"%Y')}",
    "{datetime.datetime.now().strftime('%Y\\\\')}",
    "{datetime.datetime.now.strftime('%Y')}",
    "{datetime.datetime.fromtimestamp(0).strftime('%Y')}",
    "{datetime.date.today()}",
    "{base_model.name!r}",
    "{base_model.name:>300}",
    "{{base_model.name}",
    "{base_model.name}}",
    "{now:{base_model.name}}",
    "{now:}",
    "{now:%Y",
    "{ base_model.name }",
    "{BASE_MODEL.NAME}",
    "{project.id}",
    "{base_model.configuration}",
    "{lambda: 0}",
    "{[c for c in ().__class__.__bases__]}",
    "{base_model.name}{dataset.name",
    "{{{base_model.__init__.__globals__}}}",
]


@pytest.mark.parametrize("template", HOSTILE_TEMPLATES)
def test_hostile_or_broken_templates_are_rejected_without_evaluating(template, monkeypatch, tmp_path):
    def forbidden(*args, **kwargs):
        raise AssertionError("the template was evaluated")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", forbidden)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as raised:
        cnm.render_model_name(template, VALUES, NOW)
    message = str(raised.value)
    assert message.startswith("customNodeConfig.modelName: ")
    assert "{base_model.name}" in message and "{now:<format>}" in message  # lists the allowed ones
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("template", "quoted"),
    [
        ("x_{base_model.__class__}_y", "'{base_model.__class__}'"),
        ("{__import__('os').system('touch x')}", "uses the placeholder \"{__import__('os').system('touch x')}\""),
        ("ok_{now:%Y}_{dataset.secret}", "'{dataset.secret}'"),
        ("abc{def", "'{def'"),
    ],
)
def test_error_quotes_the_bad_placeholder(template, quoted):
    with pytest.raises(ValueError, match="placeholder") as raised:
        cnm.parse_name_template(template)
    assert quoted in str(raised.value)


def test_non_string_template_is_rejected():
    with pytest.raises(ValueError, match="customNodeConfig.modelName: .* is not a string"):
        cnm.parse_name_template(42)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("a/b", "contains '/'"),
        ("{now:%Y/%m}", "contains '/'"),
        ("x" * 257, "more than 256"),
        ("{base_model.name}" + "x" * 253, "more than 256"),
    ],
)
def test_rendered_names_follow_the_platform_rules(template, problem):
    with pytest.raises(ValueError, match=problem):
        cnm.render_model_name(template, VALUES, NOW)


def test_longest_allowed_name_renders():
    assert cnm.render_model_name("x" * 256, VALUES, NOW) == "x" * 256


_NO_BRACES = st.text(alphabet=st.characters(blacklist_characters="{}/", blacklist_categories=("Cs",)), min_size=1)


@settings(max_examples=60, deadline=None)
@given(text=_NO_BRACES, name=st.text(max_size=40))
def test_literal_text_and_any_entity_name_render_verbatim(text, name):
    values = cnm.NameValues(name, "id", "d", "did", "p")
    expected = f"{text}{name}"
    printable = not any(unicodedata.category(char) in cnm.FORBIDDEN_NAME_CATEGORIES for char in expected)
    try:  # no format character (soft hyphen, bidi override, ...) and something visible
        check_visible_name("name", expected)
        visible = True
    except ValueError:
        visible = False
    if expected.strip() and "/" not in expected and len(expected) <= 256 and printable and visible:
        assert cnm.render_model_name(text + "{base_model.name}", values, NOW) == expected
    else:
        with pytest.raises(ValueError):
            cnm.render_model_name(text + "{base_model.name}", values, NOW)


@pytest.mark.parametrize(
    "template", ["model\n", "mo\x00del", "a\tb", "\rname", "x\x7f", "x\x85", "a\u2028b", "{base_model.name}\n"]
)
def test_a_template_with_a_control_character_is_refused_on_the_whole_string(template):
    with pytest.raises(ValueError, match=r"^customNodeConfig.modelName: .* has the control character") as error:
        cnm.CreateModelConfig.from_json({"modelName": template})
    assert "remove it" in str(error.value)


def test_an_entity_name_with_a_control_character_is_refused_after_rendering():
    values = cnm.NameValues("yolo\nv8", "m1", "images", "d1", "proj")
    with pytest.raises(ValueError, match=r"^customNodeConfig.modelName rendered: 'yolo\\nv8-x' has the control"):
        cnm.render_model_name("{base_model.name}-x", values, NOW)


def test_unicode_names_that_are_printable_render():
    assert cnm.render_model_name("модель-✓ {dataset.name}", VALUES, NOW) == "модель-✓ images"


def test_numbered_names_are_bounded():
    names = cnm.numbered_names("m")
    assert names[:3] == ["m", "m-2", "m-3"]
    assert len(names) == cnm.MAX_NAME_TRIES == 100
    assert names[-1] == "m-100"
    assert all(len(n) <= 256 for n in cnm.numbered_names("x" * 254))


# ---------------------------------------------------------------------------------------------
# configuration


def test_deep_merge_merges_nested_dicts_and_replaces_lists():
    base = {"epochs": 10, "optim": {"lr": 0.1, "betas": [0.9, 0.99], "sched": {"step": 5}}, "labels": ["a", "b"]}
    override = {"optim": {"lr": 0.01, "sched": {"gamma": 0.5}}, "labels": ["c"], "new": {"k": 1}}
    before = copy.deepcopy((base, override))
    merged = cnm.deep_merge(base, override)
    assert merged == {
        "epochs": 10,
        "optim": {"lr": 0.01, "betas": [0.9, 0.99], "sched": {"step": 5, "gamma": 0.5}},
        "labels": ["c"],
        "new": {"k": 1},
    }
    assert (base, override) == before
    merged["optim"]["betas"].append(1)
    merged["new"]["k"] = 2
    assert (base, override) == before


def test_deep_merge_replaces_a_dict_by_a_non_dict_and_back():
    assert cnm.deep_merge({"a": {"x": 1}}, {"a": 3}) == {"a": 3}
    assert cnm.deep_merge({"a": 3}, {"a": {"x": 1}}) == {"a": {"x": 1}}
    assert cnm.deep_merge({"a": {"x": 1}}, {"a": None}) == {"a": None}


_JSON_LEAF = st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.lists(st.integers(), max_size=3)
_JSON_DICT = st.recursive(
    st.dictionaries(st.sampled_from("abcde"), _JSON_LEAF, max_size=4),
    lambda children: st.dictionaries(st.sampled_from("abcde"), _JSON_LEAF | children, max_size=4),
    max_leaves=12,
)


def _expected_merge(base, override):
    out = dict(base)
    for key, value in override.items():
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            out[key] = _expected_merge(base[key], value)
        else:
            out[key] = value
    return out


@settings(max_examples=150, deadline=None)
@given(base=_JSON_DICT, override=_JSON_DICT)
def test_deep_merge_properties(base, override):
    before = copy.deepcopy((base, override))
    merged = cnm.deep_merge(base, override)
    assert merged == _expected_merge(base, override)
    assert (base, override) == before
    assert cnm.deep_merge(merged, override) == merged  # applying twice changes nothing
    assert cnm.deep_merge(base, {}) == base
    assert set(cnm.changed_keys(merged, merged)) == set()


def test_changed_keys_lists_dotted_paths():
    before = {"a": {"x": 1, "y": 2}, "b": [1], "c": 0}
    after = {"a": {"x": 1, "y": 3}, "b": [2], "c": 0, "d": {"e": 1}}
    assert cnm.changed_keys(before, after) == ["a.y", "b", "d"]


def test_clone_configuration_drops_base_label_maps_unless_given():
    base = {"epochs": 1, "id_to_label_map": {"0": "cat"}, "label_to_id_map": {"cat": 0}, "nested": {"a": 1}}
    assert cnm.build_clone_configuration(base, {"nested": {"b": 2}}) == {"epochs": 1, "nested": {"a": 1, "b": 2}}
    kept = cnm.build_clone_configuration(base, {"id_to_label_map": {"0": "dog"}})
    assert kept == {"epochs": 1, "nested": {"a": 1}, "id_to_label_map": {"0": "dog"}}
    assert base["id_to_label_map"] == {"0": "cat"}
    assert cnm.build_clone_configuration(None, {}) == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, {}), ({}, {}), ("", {}), ('{"a": {"b": 1}}', {"a": {"b": 1}}), ({"x": [1]}, {"x": [1]})],
)
def test_model_configuration_input(value, expected):
    assert cnm.parse_model_configuration(value) == expected


@pytest.mark.parametrize("value", [[1, 2], "[1]", 3, "{not json", True])
def test_model_configuration_must_be_an_object(value):
    with pytest.raises(ValueError, match="^model_configuration: "):
        cnm.parse_model_configuration(value)


# ---------------------------------------------------------------------------------------------
# subsets

TRAIN_DQL = {"filter": {"$and": [{"dir": "/train"}, {"metadata.user.round": {"$gte": 2}}]}}
FULL = {"resource": "items", "page": 0, "pageSize": 1000}


def test_inputs_win_and_are_normalized_like_dtlpy_filters():
    base_subsets = {"train": {"filter": {"dir": "/old"}}, "validation": {"filter": {"dir": "/oldval"}}}
    resolved = cnm.resolve_subsets(copy.deepcopy(TRAIN_DQL), {"dir": "/val"}, base_subsets)
    assert resolved.train == cnm.ResolvedSubset({**TRAIN_DQL, **FULL}, "input")
    assert resolved.validation == cnm.ResolvedSubset({"filter": {"dir": "/val"}, **FULL}, "input")
    # exactly what dtlpy would send for Filters(custom_filter=...)
    for raw, resolved_subset in ((TRAIN_DQL, resolved.train), ({"dir": "/val"}, resolved.validation)):
        assert dl.Filters(custom_filter=copy.deepcopy(raw)).prepare() == resolved_subset.query
    assert resolved.sources() == "train from input, validation from input"


def test_missing_subsets_fall_back_to_the_base_model():
    base_subsets = {
        "train": {"filter": {"dir": "/old"}, "resource": "items", "page": 0, "pageSize": 50},
        "validation": {"dir": "/oldval"},
    }
    before = copy.deepcopy(base_subsets)
    resolved = cnm.resolve_subsets(None, {}, base_subsets)
    assert resolved.train == cnm.ResolvedSubset(base_subsets["train"], "base model")
    assert resolved.validation == cnm.ResolvedSubset({"filter": {"dir": "/oldval"}, **FULL}, "base model")
    assert base_subsets == before


def test_missing_everywhere_falls_back_to_the_packaged_defaults():
    resolved = cnm.resolve_subsets({"filter": {}}, "null", {"test": {"filter": {"dir": "/t"}}})
    assert resolved.train == cnm.ResolvedSubset({**load_subset_filter("train"), **FULL}, "packaged default")
    assert resolved.validation == cnm.ResolvedSubset({**load_subset_filter("validation"), **FULL}, "packaged default")
    assert cnm.resolve_subsets(None, None, None).train.source == "packaged default"


@pytest.mark.parametrize("given", [[], "", "   ", "\n\t", [{"dir": "/a"}]])
@pytest.mark.parametrize("field", ["train_subset", "validation_subset"])
def test_a_list_or_blank_text_subset_is_refused_only_null_and_empty_object_mean_not_given(given, field):
    with pytest.raises(ValueError, match=rf"^{field}: .* is not a DQL object; leave it out \(null or \{{\}}\)"):
        cnm.resolve_subsets(**{"train_subset": None, "validation_subset": None, field: given}, base_model_subsets=None)
    for absent in (None, {}, "null", "{}"):
        assert cnm.resolve_subsets(absent, absent, None).train.source == "packaged default"


@pytest.mark.parametrize(
    ("train", "validation", "base"),
    [
        ({"dir": "/a"}, {"filter": {"dir": "/a"}}, None),  # bare filter and full query alike
        ('{"dir": "/a"}', None, {"validation": {"dir": "/a"}}),  # input and base model
        (None, None, {"train": {"dir": "/b"}, "validation": {"filter": {"dir": "/b"}}}),  # both from the base
    ],
)
def test_identical_train_and_validation_subsets_are_refused_as_a_leak_unless_allowed(train, validation, base):
    subsets = cnm.resolve_subsets(train, validation, base)
    with pytest.raises(
        ValueError, match=r"^validation_subset: .* selects the same items as train_subset .*allowSameTrainAndValidation"
    ):
        cnm.check_distinct_subsets(subsets)
    cnm.check_distinct_subsets(subsets, allow_same=True)
    allowed = cnm.CreateModelConfig.from_json({"modelName": "x", "allowSameTrainAndValidation": True})
    assert allowed.allow_same_subsets is True
    cnm.check_distinct_subsets(cnm.resolve_subsets(None, None, None))  # the packaged defaults differ


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"modelNmae": "x"}, r"^customNodeConfig\.modelNmae: unknown key; did you mean 'modelName'\?"),
        ({"allowSameTrainAndValidaton": True}, r"did you mean 'allowSameTrainAndValidation'\?"),
        (
            {"allowSameTrainAndValidation": "yes"},
            r"^customNodeConfig\.allowSameTrainAndValidation: 'yes' is not true or false",
        ),
        ({"modelName": "\u202eledom"}, r"^customNodeConfig\.modelName: .* U\+202E \(RIGHT-TO-LEFT OVERRIDE\)"),
        ({"modelName": "v\u200b2"}, r"^customNodeConfig\.modelName: .* U\+200B \(ZERO WIDTH SPACE\)"),
    ],
)
def test_node_config_unknown_keys_and_invisible_names_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        cnm.CreateModelConfig.from_json(config)
    # the platform's own keys stay accepted
    cnm.CreateModelConfig.from_json({"name": "Create New Model", "validation": {"valid": True}, "createModel": "x"})


@pytest.mark.parametrize("name", ["\u202e", "\u200b\u200b", "a\u2066b", " \u0301 "])
def test_a_rendered_name_with_format_characters_or_nothing_visible_is_refused(name):
    values = cnm.NameValues(name, "m1", "images", "d1", "proj")
    with pytest.raises(
        ValueError, match=r"^customNodeConfig\.modelName rendered: .*(format character|no visible).*rename the entity"
    ):
        cnm.render_model_name("{base_model.name}", values, datetime(2025, 1, 31))


def test_mixed_sources():
    resolved = cnm.resolve_subsets({"dir": "/a"}, None, {"train": {"dir": "/b"}})
    assert (resolved.train.source, resolved.validation.source) == ("input", "packaged default")


@pytest.mark.parametrize("empty", [None, {}, "", "  ", {"filter": {}}, {"filter": None}, []])
def test_empty_subsets(empty):
    assert cnm.is_empty_subset(empty)


@pytest.mark.parametrize(
    "given", [{"dir": "/a"}, {"filter": {"dir": "/a"}}, '{"dir": "/a"}', '{"filter": {"dir": "/a"}}']
)
def test_bare_filter_and_query_and_json_text_are_equivalent(given):
    assert cnm.normalize_subset_query(given, "train_subset") == {"filter": {"dir": "/a"}, **FULL}


def test_normalize_keeps_sort_and_join():
    query = {"filter": {"dir": "/a"}, "sort": {"filename": "ascending"}, "join": {"filter": {"label": "cat"}}}
    assert cnm.normalize_subset_query(query, "train_subset") == {**query, **FULL}


def test_packaged_nested_field_objects_are_valid():
    for name in ("train", "validation", "test"):
        cnm.normalize_subset_query(load_subset_filter(name), "x")
    nested = {"metadata": {"system": {"tags": {"train": True}}}, "size": {"$not": {"$gt": 5}}}
    cnm.normalize_subset_query({"$nor": [nested], "name": {"$match": "^a"}}, "x")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([1], r"^train_subset: \[1\] is not a DQL object"),
        ("{bad json", r"^train_subset: .* is not valid JSON"),
        ({"filter": {"dir": "/a"}, "update": {"x": 1}}, r"^train_subset: unknown query key 'update'"),
        ({"filter": {"dir": "/a"}, "resource": "annotations"}, r"^train_subset.resource: 'annotations' is not 'items'"),
        ({"filter": [1]}, r"^train_subset.filter: \[1\] is not an object"),
        ({"filter": []}, r"^train_subset.filter: \[\] is not an object of conditions; example: "),
        ({"filter": ""}, r"^train_subset.filter: '' is not an object of conditions; example: "),
        ({"filter": 0}, r"^train_subset.filter: 0 is not an object of conditions; example: "),
        ({"$and": "x"}, r'^train_subset.filter.\$and: .*; example: \{"\$and": \['),
        ({"$and": {"dir": "/a"}}, r"^train_subset.filter.\$and: .* is not a non-empty list"),
        ({"$or": []}, r"^train_subset.filter.\$or: \[\] is not a non-empty list"),
        ({"$and": [{"dir": "/a"}, 3]}, r"^train_subset.filter.\$and\[1\]: 3 is not an object"),
        ({"$where": "sleep(1000)"}, r"^train_subset.filter.\$where: '\$where' is not a supported operator"),
        (
            {"$and": [{"$or": [{"name": {"$regex": "x"}}]}]},
            r"^train_subset.filter.\$and\[0\].\$or\[0\].name.\$regex: '\$regex' is not a supported operator",
        ),
        ({"metadata": {"system": {"$function": 1}}}, r"^train_subset.filter.metadata.system.\$function: "),
        ({"dir": {"$in": "/a"}}, r"^train_subset.filter.dir.\$in: '/a' is not a list"),
        ({"dir": {"$exists": "yes"}}, r"^train_subset.filter.dir.\$exists: 'yes' is not true or false"),
        ({"dir": {"$match": 3}}, r"^train_subset.filter.dir.\$match: 3 is not a regular expression"),
        ({"dir": {"$eq": {"$gt": 1}}}, r"^train_subset.filter.dir.\$eq: .* is not a plain value"),
        ({"filter": {"a": 1}, "page": -1}, r"^train_subset.page: -1 is not a non-negative integer"),
        ({"filter": {"a": 1}, "join": [1]}, r"^train_subset.join: \[1\] is not an object"),
        ({"filter": {"a": 1}, "join": {"filter": {"$x": 1}}}, r"^train_subset.join.filter.\$x: "),
    ],
)
def test_invalid_subsets_name_the_field(given, message):
    with pytest.raises(ValueError, match=message):
        cnm.resolve_subsets(given, None, None)


def test_invalid_validation_subset_and_invalid_base_subset_name_their_field():
    with pytest.raises(ValueError, match=r"^validation_subset.filter.\$bad: "):
        cnm.resolve_subsets(None, {"$bad": 1}, None)
    with pytest.raises(ValueError, match=r"^base_model.metadata.system.subsets.train.filter.\$bad: "):
        cnm.resolve_subsets(None, None, {"train": {"$bad": 1}})


def test_resolving_never_modifies_the_inputs():
    train, validation = copy.deepcopy(TRAIN_DQL), {"dir": "/v"}
    resolved = cnm.resolve_subsets(train, validation, None)
    resolved.train.query["filter"]["$and"].append({"x": 1})
    assert train == TRAIN_DQL and validation == {"dir": "/v"}


# ---------------------------------------------------------------------------------------------
# base model status, node config


@pytest.mark.parametrize("status", ["trained", "deployed", "pre-trained"])
def test_cloneable_statuses(status):
    cnm.check_base_model_status(status)


@pytest.mark.parametrize("status", ["created", "training", "failed", "cloning", None])
def test_other_statuses_are_refused(status):
    with pytest.raises(ValueError, match=rf"^base_model.status: {re.escape(repr(status))} is not one of"):
        cnm.check_base_model_status(status)


def _context(metadata):
    return SimpleNamespace(node=SimpleNamespace(metadata=metadata))


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (None, cnm.DEFAULT_NAME_TEMPLATE),
        (SimpleNamespace(node=None), cnm.DEFAULT_NAME_TEMPLATE),
        (_context(None), cnm.DEFAULT_NAME_TEMPLATE),
        (_context({}), cnm.DEFAULT_NAME_TEMPLATE),
        (_context({"customNodeConfig": {"createModel": "x"}}), cnm.DEFAULT_NAME_TEMPLATE),
        (_context({"customNodeConfig": {"modelName": None}}), cnm.DEFAULT_NAME_TEMPLATE),
        (_context({"customNodeConfig": {"modelName": "{now:%Y}"}}), "{now:%Y}"),
    ],
)
def test_node_config_from_context(context, expected):
    config = cnm.CreateModelConfig.from_json(cnm.node_config_from_context(context))
    assert config.name_template == expected


def test_node_config_is_bounded_and_keeps_the_platform_keys():
    config = {"name": "Create New Model", "validation": {"valid": True, "errors": []}, "modelName": "{now:%Y}"}
    assert cnm.CreateModelConfig.from_json(config).name_template == "{now:%Y}"
    deep: dict = {}
    for _ in range(200):
        deep = {"d": deep}
    with pytest.raises(ValueError, match=r"^customNodeConfig.deep.d.d.*nested deeper than 64 levels; flatten"):
        cnm.CreateModelConfig.from_json({"modelName": "x", "deep": deep})
    with pytest.raises(ValueError, match=r"^customNodeConfig: 2,097,\d{3} bytes of JSON is over the 1,000,000-byte"):
        cnm.CreateModelConfig.from_json({"modelName": "x", "pad": "x" * (2 * 1024 * 1024)})
    with pytest.raises(ValueError, match=r"^customNodeConfig.lr: nan is not a JSON number"):
        cnm.CreateModelConfig.from_json({"modelName": "x", "lr": float("nan")})


def test_node_config_is_validated_and_frozen():
    config = cnm.CreateModelConfig.from_json({"modelName": "{dataset.name}-{now:%Y}", "createModel": "n"})
    assert config.render(VALUES, NOW) == "images-2025"
    with pytest.raises(AttributeError):
        config.name_template = "x"  # frozen
    with pytest.raises(ValueError, match=r"^customNodeConfig: \['x'\] is not an object"):
        cnm.CreateModelConfig.from_json(["x"])
    with pytest.raises(ValueError, match=r"^customNodeConfig.modelName: .*'\{dataset.__class__\}'"):
        cnm.CreateModelConfig.from_json({"modelName": "{dataset.__class__}"})
    with pytest.raises(ValueError, match=r"^customNodeConfig.modelName: 7 is not a string"):
        cnm.CreateModelConfig.from_json({"modelName": 7})


def test_created_by_record():
    assert json.loads(json.dumps(cnm.created_by("e1", "m1"))) == {"executionId": "e1", "baseModelId": "m1"}
