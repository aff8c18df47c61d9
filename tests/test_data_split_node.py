"""The Model Data Split node through ``main.ServiceRunner.data_split`` with the real dtlpy client
on LocalPlatform: routing action == tag written, request budget, idempotence, bad configs."""

from __future__ import annotations

import copy
import logging
import uuid
from collections import Counter

import dtlpy as dl
import pytest

import main
from emulator import RecordingProgress
from nodes.data_split import SplitConfig, subset_for_item

CONFIG = {
    "name": "Model Data Split",
    "distributeEqually": False,
    "groups": [
        {"id": "g1", "name": "train", "distribution": 70},
        {"id": "g2", "name": "validation", "distribution": 20},
        {"id": "g3", "name": "test", "distribution": 10},
    ],
    "itemMetadata": True,
    "validation": {"valid": True, "errors": []},
}
MODEL_INFO = {"name": "yolo", "model_id": "model-1", "confidence": 0.9}


def new_item(platform, dataset, tags=None) -> dl.Item:
    metadata = {"user": {"source": "camera-1"}}
    if tags is not None:
        metadata["system"] = {"tags": copy.deepcopy(tags)}
    [item_id] = platform.add_items(dataset, [{"name": f"{uuid.uuid4().hex}.jpg", "metadata": metadata}])
    return dataset.items.get(item_id=item_id)


def annotate(item, n: int, with_model: int) -> None:
    builder = item.annotations.builder()
    for k in range(n):
        builder.add(
            annotation_definition=dl.Box(top=1 + k, left=1, bottom=10 + k, right=10, label="cat"),
            model_info=MODEL_INFO if k < with_model else None,
        )
    uploaded = item.annotations.upload(builder)
    assert len(uploaded) == n


def server_tags(platform, item_id):
    """The item's tags as the nodes read them: a ``null`` (stored under ``--null-reading stored``) is absent."""
    tags = platform.get_json("items", item_id)["metadata"].get("system", {}).get("tags")
    return {k: v for k, v in tags.items() if v is not None} if isinstance(tags, dict) else tags


def model_carriers(platform, dataset):
    return sum(
        1
        for a in platform.annotations_json(dataset.id)
        if (a.get("metadata", {}).get("user") or {}).get("model") is not None
        or (a.get("metadata", {}).get("system") or {}).get("model") is not None
    )


def run(platform, project, item, node_config=CONFIG):
    context = platform.make_context(node_config, project=project)
    progress = RecordingProgress()
    platform.reset_counts()
    out = main.ServiceRunner().data_split(item=item, progress=progress, context=context)
    return out, progress


def expected_counts(puts: int, patch: bool) -> Counter:
    """The node config, the item as it is now, its annotations; a write is read back."""
    counts = Counter({"GET /pipelines/{id}": 1, "GET /items/{id}": 1, "POST /datasets/{id}/query": 1})
    if puts:
        counts["PUT /annotations/{id}"] = puts
    if patch:
        counts["PATCH /items/{id}"] = 1
        counts["GET /items/{id}"] += 1
    return counts


def test_action_equals_the_tag_written_and_the_hash_choice(platform, project, dataset):
    config = SplitConfig.from_node_config(CONFIG)
    seen = Counter()
    for _ in range(12):
        item = new_item(platform, dataset, tags={"reviewed": True})
        before = copy.deepcopy(item.metadata)
        out, progress = run(platform, project, item)
        [action] = progress.actions
        assert action == subset_for_item(item.id, config)
        assert server_tags(platform, item.id) == {"reviewed": True, action: True}
        assert {k: v for k, v in out.metadata["system"]["tags"].items() if v is not None} == {
            "reviewed": True,
            action: True,
        }
        assert item.metadata == before  # the entity we were given is not modified
        assert platform.get_json("items", item.id)["metadata"]["user"] == {"source": "camera-1"}
        seen[action] += 1
    assert set(seen) <= {"train", "validation", "test"}


@pytest.mark.parametrize(("n_annotations", "with_model"), [(1, 1), (1, 0), (200, 0), (200, 25)])
def test_request_budget_does_not_grow_with_annotations(platform, project, dataset, n_annotations, with_model):
    item = new_item(platform, dataset)
    annotate(item, n_annotations, with_model)
    out, progress = run(platform, project, item)
    assert platform.request_counts == expected_counts(puts=with_model, patch=True)
    assert platform.write_count() == with_model + 1
    assert model_carriers(platform, dataset) == 0  # reviewed predictions became ground truth
    assert len(platform.annotations_json(dataset.id)) == n_annotations
    assert server_tags(platform, item.id) == {progress.actions[0]: True}


def test_rerun_is_a_no_op_write_wise(platform, project, dataset):
    item = new_item(platform, dataset)
    annotate(item, 5, 3)
    out, first = run(platform, project, item)
    # what a pipeline hands over on a re-run (a fresh item) and the returned entity: no writes
    for entity in (out, dataset.items.get(item_id=item.id)):
        _, again = run(platform, project, entity)
        assert again.actions == first.actions
        assert platform.write_count() == 0
        assert platform.request_counts == expected_counts(puts=0, patch=False)
    # a stale entity (tags not yet seen): the node reads the item as it is now, so nothing is written
    _, stale = run(platform, project, item)
    assert stale.actions == first.actions
    assert platform.request_counts == expected_counts(puts=0, patch=False)
    assert server_tags(platform, item.id) == {first.actions[0]: True}


def test_sticky_subset_kept_and_its_predictions_stay_predictions(platform, project, dataset):  # D1, D4
    item = new_item(platform, dataset, tags={"test": True, "reviewed": True, "train": False})
    annotate(item, 3, 2)
    out, progress = run(platform, project, item)
    assert progress.actions == ["test"]
    assert platform.request_counts == expected_counts(puts=0, patch=False)  # nothing to write at all
    assert server_tags(platform, item.id) == {"test": True, "reviewed": True, "train": False}
    assert model_carriers(platform, dataset) == 2  # an item already in a subset keeps its predictions


def test_non_subset_tags_do_not_route_and_are_preserved(platform, project, dataset):  # D1
    item = new_item(platform, dataset, tags={"reviewed": True, "holdout": True})
    _, progress = run(platform, project, item)
    [action] = progress.actions
    assert action == subset_for_item(item.id, SplitConfig.from_node_config(CONFIG))
    assert server_tags(platform, item.id) == {"reviewed": True, "holdout": True, action: True}


@pytest.mark.parametrize(
    ("tags", "kept"),
    [
        ({"test": True, "validation": True, "reviewed": True}, "test"),
        ({"train": True, "test": True}, "test"),
        ({"train": True, "validation": True}, "validation"),
    ],
)
def test_several_subset_tags_keep_the_held_out_one(platform, project, dataset, tags, kept):
    """Held-out wins: an item tagged both train and test stays in test (training on a test item
    leaks the evaluation), whatever the order of the node's groups."""
    item = new_item(platform, dataset, tags=tags)
    _, progress = run(platform, project, item)
    assert progress.actions == [kept]
    assert server_tags(platform, item.id) == {kept: True} | ({"reviewed": True} if "reviewed" in tags else {})
    assert platform.request_counts == expected_counts(puts=0, patch=True)


def test_item_metadata_false_routes_without_tagging(platform, project, dataset):
    item = new_item(platform, dataset)
    annotate(item, 2, 1)
    _, progress = run(platform, project, item, {**CONFIG, "itemMetadata": False})
    assert len(progress.actions) == 1
    assert server_tags(platform, item.id) is None
    assert platform.request_counts == expected_counts(puts=1, patch=False)


def test_seed_in_node_config_changes_the_assignment(platform, project, dataset):
    items = [new_item(platform, dataset) for _ in range(12)]
    config = {**CONFIG, "itemMetadata": False}
    actions = {}
    for seed in (None, 12345):
        context = platform.make_context(config if seed is None else {**config, "seed": seed}, project=project)
        progress = RecordingProgress()
        for item in items:
            main.ServiceRunner().data_split(item=item, progress=progress, context=context)
        actions[seed] = progress.actions
    plain, seeded = actions[None], actions[12345]
    assert plain != seeded
    expected = SplitConfig.from_node_config({**config, "seed": 12345})
    assert seeded == [subset_for_item(i.id, expected) for i in items]


def test_outside_a_pipeline_uses_defaults_and_says_so(platform, project, dataset, caplog):  # D3
    caplog.set_level(logging.INFO, logger="nodes.data_split")
    item = new_item(platform, dataset)
    progress = RecordingProgress()
    main.ServiceRunner().data_split(item=item, progress=progress, context=None)
    [action] = progress.actions
    assert action == subset_for_item(item.id, SplitConfig.default())
    assert server_tags(platform, item.id) == {action: True}  # panel default itemMetadata true (D5)
    assert "outside a pipeline" in caplog.text and "panel defaults" in caplog.text


def test_node_without_custom_config_uses_defaults(platform, project, dataset, caplog):
    caplog.set_level(logging.INFO, logger="nodes.data_split")
    item = new_item(platform, dataset)
    _, progress = run(platform, project, item, None)
    assert progress.actions == [subset_for_item(item.id, SplitConfig.default())]
    assert "customNodeConfig is missing" in caplog.text


def groups(*pairs):
    return [{"id": f"id-{n}", "name": n, "distribution": d} for n, d in pairs]


BAD_NODE_CONFIGS = {
    "groups missing": {"itemMetadata": True},
    "single group": {"groups": groups(("train", 100))},
    "six groups": {"groups": groups(*[(f"g{i}", 100 / 6) for i in range(6)])},
    "negative share": {"groups": groups(("train", 105), ("test", -5))},
    "share not a number": {"groups": groups(("train", "eighty"), ("test", 20))},
    "sum 90": {"groups": groups(("train", 70), ("test", 20))},
    "duplicate names": {"groups": groups(("train", 50), ("train", 50))},
    "empty name": {"groups": groups(("train", 50), ("", 50))},
    "name with dash": {"groups": groups(("train-a", 50), ("test", 50))},
    "itemMetadata string": {"groups": groups(("train", 50), ("test", 50)), "itemMetadata": "true"},
    "seed negative": {"groups": groups(("train", 50), ("test", 50)), "seed": -3},
    "groups is an object": {"groups": {"train": 80, "test": 20}},
}


@pytest.mark.parametrize("kind", list(BAD_NODE_CONFIGS))
def test_bad_configs_raise_before_any_write(platform, project, dataset, kind):
    item = new_item(platform, dataset, tags={"reviewed": True})
    annotate(item, 2, 2)
    context = platform.make_context(BAD_NODE_CONFIGS[kind], project=project)
    progress = RecordingProgress()
    platform.reset_counts()
    with pytest.raises(ValueError, match=r"^customNodeConfig\.?\w*"):
        main.ServiceRunner().data_split(item=item, progress=progress, context=context)
    assert platform.write_count() == 0
    assert platform.request_counts == Counter({"GET /pipelines/{id}": 1})  # not even a listing
    assert progress.actions == []
    assert server_tags(platform, item.id) == {"reviewed": True}
    assert model_carriers(platform, dataset) == 2


def test_platform_error_propagates_without_routing_and_rerun_recovers(platform, project, dataset):
    item = new_item(platform, dataset)
    annotate(item, 2, 2)
    context = platform.make_context(CONFIG, project=project)
    progress = RecordingProgress()
    platform.fail_next("PATCH", r"/items/", status=500)
    with pytest.raises(Exception):  # noqa: B017 - dtlpy raises its own exception types
        main.ServiceRunner().data_split(item=item, progress=progress, context=context)
    assert progress.actions == []  # the pipeline never routes an item whose tag was not written
    platform.clear_failures()
    _, again = run(platform, project, item)
    assert server_tags(platform, item.id) == {again.actions[0]: True}
    assert platform.request_counts == expected_counts(puts=0, patch=True)  # annotations were already cleaned


@pytest.mark.parametrize("item", [None, "item-id", {"id": "x"}])
def test_a_missing_item_is_a_value_error_naming_item(platform, project, item):
    context = platform.make_context(CONFIG, project=project)
    with pytest.raises(ValueError, match=r"^item: .* not an item; connect an Item output to the Model Data Split"):
        main.ServiceRunner().data_split(item=item, progress=RecordingProgress(), context=context)
    assert platform.write_count() == 0


def test_a_refused_annotation_listing_is_an_error_naming_the_query_not_no_annotations(platform, project, dataset):
    """dtlpy's ``item.annotations.list`` reads a 400 as "no annotations": predictions would stay predictions."""
    item = new_item(platform, dataset)
    annotate(item, 3, with_model=3)
    platform.fail_next("POST", r"/datasets/[^/]+/query", status=400)
    with pytest.raises(RuntimeError, match=r"the platform refused the annotations query .*itemId"):
        run(platform, project, item)
    assert platform.write_count() == 0
    assert model_carriers(platform, dataset) == 3
