"""Model Data Split: the deciding lines a one-line change would break, each pinned by an exact outcome.

The largest-remainder tie-break, the order in which the grouped split places groups, the
stratified split's label order on small datasets, whole-string name validation, and ``true`` as
the only membership value (node and batch mode alike).
"""

from __future__ import annotations

import uuid

import pytest

from nodes.data_split import (
    SplitConfig,
    assign_grouped,
    assign_stratified,
    check_batch_options,
    decide_batch,
    ecma_anchored,
    largest_remainder,
    plan_updates,
    split_dataset,
)

# ----------------------------------------------------------------------------------------------
# largest remainder (Hamilton): the biggest fractional part first, ties to the earlier weight
# ----------------------------------------------------------------------------------------------


def test_largest_remainder_gives_the_seat_to_the_largest_remainder():
    # quotas 1.4, 1.3, 7.3: floors 1, 1, 7 and one seat left, for the remainder .4
    assert largest_remainder(10, [14, 13, 73]) == [2, 1, 7]


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [(2, [1, 1, 1], [1, 1, 0]), (1, [1, 1], [1, 0]), (5, [1, 1, 1], [2, 2, 1]), (3, [1, 1, 1, 1], [1, 1, 1, 0])],
)
def test_largest_remainder_ties_go_to_the_earlier_weight(total, weights, expected):
    assert largest_remainder(total, weights) == expected


# ----------------------------------------------------------------------------------------------
# grouped: largest group first, equal sizes in stable-hash order, into the subset needing most
# ----------------------------------------------------------------------------------------------


def test_grouped_places_the_largest_group_first():
    sizes = {"five": 5, "three": 3, "one_a": 1, "one_b": 1}
    groups = {f"{g}-{k}": g for g, n in sizes.items() for k in range(n)}
    out = assign_grouped(groups, {"train": 50, "test": 50})
    by_group = {g: {out[i] for i in groups if groups[i] == g} for g in sizes}
    # five -> train (5 v 5: first configured), then three, one_a, one_b -> test (5 - 0 left in train)
    assert by_group == {"five": {"train"}, "three": {"test"}, "one_a": {"test"}, "one_b": {"test"}}


def test_grouped_places_equal_sizes_in_stable_hash_order():
    groups = {"x0": "g0", "x1": "g1", "x2": "g1", "x3": "g2", "x4": "g3", "x5": "g4"}
    out = assign_grouped(groups, {"train": 50, "test": 50})
    # g1 (2 items) -> train; the singletons follow in hash order: g2, g3, g4 -> test, g0 -> train
    assert out == {"x0": "train", "x1": "train", "x2": "train", "x3": "test", "x4": "test", "x5": "test"}


def test_grouped_ties_between_subsets_go_to_the_first_configured():
    out = assign_grouped({"a": "g", "b": "g"}, {"test": 50, "train": 50})
    assert set(out.values()) == {"test"}


# ----------------------------------------------------------------------------------------------
# stratified: the label with the fewest unplaced items first (ties by name), on a small dataset
# ----------------------------------------------------------------------------------------------


def test_stratified_places_the_rarest_label_first_on_a_small_dataset():
    items = {"i0": ["c"], "i1": ["a", "b", "c"], "i2": ["a", "b"], "i3": ["a"]}
    # a has 3 items, b and c 2 each: b first (tie with c broken by name), then c, then a
    out = assign_stratified(items, {"train": 50, "test": 50})
    assert out == {"i0": "train", "i1": "test", "i2": "train", "i3": "train"}


# ----------------------------------------------------------------------------------------------
# names are validated on the whole string
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (
            {"groups": [{"name": "train\n", "distribution": 50}, {"name": "b", "distribution": 50}]},
            r"groups\[0\]\.name",
        ),
        ({"groups": [{"name": "a", "distribution": 50}, {"name": "test\n", "distribution": 50}]}, r"groups\[1\]\.name"),
        (
            {
                "name": "Model Data Split\n",
                "groups": [{"name": "a", "distribution": 50}, {"name": "b", "distribution": 50}],
            },
            r"customNodeConfig\.name",
        ),
    ],
)
def test_a_trailing_newline_is_not_part_of_a_valid_name(config, field):
    with pytest.raises(ValueError, match=field + r": .*\\n' has characters outside"):
        SplitConfig.from_node_config(config)


def test_a_numeric_string_with_surrounding_whitespace_is_still_a_distribution():
    cfg = SplitConfig.from_node_config(
        {"groups": [{"name": "a", "distribution": " 50\n"}, {"name": "b", "distribution": "50"}]}
    )
    assert cfg.shares == {"a": 50.0, "b": 50.0}


def test_group_by_is_checked_on_the_whole_string():
    check_batch_options(None, "metadata.user.patient")
    with pytest.raises(ValueError, match="group_by: 'metadata.user.patient\\\\n' is not a dotted field name"):
        check_batch_options(None, "metadata.user.patient\n")


@pytest.mark.parametrize(
    ("pattern", "expected"), [("^a$", "^a\\Z"), ("^a\\$", "^a\\$"), ("^a\\\\$", "^a\\\\\\Z"), ("^a", "^a")]
)
def test_ecma_anchored(pattern, expected):
    assert ecma_anchored(pattern) == expected


# ----------------------------------------------------------------------------------------------
# membership is exactly true, in batch mode too
# ----------------------------------------------------------------------------------------------


def test_batch_membership_is_exactly_true():
    config = SplitConfig.default()
    tags = {"one": {"train": 1}, "text": {"test": "true"}, "real": {"validation": True}}
    _, sticky = decide_batch(tags, config)
    assert sticky == {"real": "validation"}


def test_batch_normalises_a_non_true_tag_of_the_subset_it_routes_to():
    config = SplitConfig.default()
    plan = plan_updates({"one": "train", "ok": "train"}, {"one": {"train": 1}, "ok": {"train": True}}, config)
    assert plan == [("train", {"train": True}, ["one"], None)]


def test_batch_split_writes_true_over_1_on_the_platform(platform, dataset):
    config = SplitConfig.from_subsets_arg("train=100,test=0")
    [item_id] = platform.add_items(
        dataset, [{"name": f"{uuid.uuid4().hex}.jpg", "metadata": {"system": {"tags": {"train": 1}}}}]
    )
    summary = split_dataset(dataset, config, show_progress=False)
    tags = platform.get_json("items", item_id)["metadata"]["system"]["tags"]
    assert tags["train"] is True
    assert summary.changed == 1


# ----------------------------------------------------------------------------------------------
# bounds on the node config and on what counts as an item
# ----------------------------------------------------------------------------------------------


def test_a_config_nested_too_deep_or_too_large_is_a_value_error_naming_the_config():
    groups = [{"name": "a", "distribution": 50}, {"name": "b", "distribution": 50}]
    deep: dict = {}
    node = deep
    for _ in range(200):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ValueError, match=r"^customNodeConfig\.x"):
        SplitConfig.from_node_config({"groups": groups, "x": deep})
    with pytest.raises(ValueError, match=r"^customNodeConfig: .* bytes of JSON is over"):
        SplitConfig.from_node_config({"groups": groups, "name": "x" * 2_000_000})


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda ds, item: ds, "Dataset"),
        (lambda ds, item: item.id, "str"),
        (lambda ds, item: item.to_json(), "dict"),
        (lambda ds, item: None, None),
    ],
    ids=["dataset", "id-string", "item-json", "none"],
)
def test_an_entity_that_is_not_an_item_is_refused_before_any_request(platform, project, dataset, make, kind):
    import main
    from emulator import RecordingProgress

    [item_id] = platform.add_items(dataset, [{"name": f"{uuid.uuid4().hex}.jpg"}])
    value = make(dataset, dataset.items.get(item_id=item_id))
    context = platform.make_context(None, project=project)
    platform.reset_counts()
    expected = rf"^item: .* is a {kind}, not an item; connect an Item output" if kind else r"^item: None is not an item"
    with pytest.raises(ValueError, match=expected):
        main.ServiceRunner().data_split(item=value, progress=RecordingProgress(), context=context)
    assert platform.write_count() == 0
    assert "GET /items/{id}" not in platform.request_counts
