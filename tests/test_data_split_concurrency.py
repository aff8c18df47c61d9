"""Two Model Data Split nodes with different configs on the same item at once, through the real
dtlpy client on LocalPlatform: the item ends in exactly one subset (a test item is never also a
train item).

The platform merges PATCH bodies (``None`` removes a key), so each write sets its subset and
removes every other known subset in the same request, and the read-back after the write settles
what is left the same way in every execution (``settle_after_write``, ``conflict_winner``).
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import main
import nodes.data_split.node as split_node
from emulator import RecordingProgress
from nodes.data_split import SplitConfig, conflict_winner, settle_after_write, tags_patch

THREE = {
    "groups": [
        {"name": "train", "distribution": 80},
        {"name": "validation", "distribution": 10},
        {"name": "test", "distribution": 10},
    ]
}
TWO = {"groups": [{"name": "test", "distribution": 50}, {"name": "train", "distribution": 50}], "seed": 7}
PIPELINE = ("train", "validation", "test")


def members(platform, item_id) -> list[str]:
    tags = (platform.get_json("items", item_id)["metadata"].get("system") or {}).get("tags") or {}
    return [n for n in PIPELINE if tags.get(n) is True]


def new_items(platform, dataset, n, tags=None):
    metadata = {"system": {"tags": dict(tags)}} if tags is not None else {}
    ids = platform.add_items(dataset, [{"name": f"{uuid.uuid4().hex}.jpg", "metadata": metadata} for _ in range(n)])
    return [dataset.items.get(item_id=i) for i in ids]


@pytest.mark.parametrize("tags", [None, {"reviewed": True}], ids=["no-tags-object", "tags-object"])
def test_two_configs_racing_on_the_same_items_leave_each_in_one_subset(platform, project, dataset, tags):
    items = new_items(platform, dataset, 24, tags)
    contexts = {name: platform.make_context(cfg, project=project) for name, cfg in (("three", THREE), ("two", TWO))}
    for context in contexts.values():
        assert context.node is not None  # resolve the pipeline once, before the threads race
    outcomes: dict[tuple[str, str], object] = {}
    lock = threading.Lock()

    def execute(item, name, barrier):
        progress = RecordingProgress()
        barrier.wait()
        try:
            main.ServiceRunner().data_split(item=item, progress=progress, context=contexts[name])
            result = progress.actions[0]
        except (RuntimeError, ValueError) as error:  # "two" has no validation subset
            result = error
        with lock:
            outcomes[(item.id, name)] = result

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = []
        for item in items:
            barrier = threading.Barrier(2)
            futures += [pool.submit(execute, item, name, barrier) for name in ("three", "two")]
        for future in futures:
            future.result()

    for item in items:
        [subset] = members(platform, item.id)  # exactly one subset, never test and train
        three, two = outcomes[(item.id, "three")], outcomes[(item.id, "two")]
        assert isinstance(three, str), three  # "three" knows every subset: it always routes
        assert subset in {three, two}  # the item is where one of the executions routed it
        if not isinstance(two, str):
            assert subset == "validation" and "validation" in str(two)


def _race_on_read_back(monkeypatch, platform, competing_tags):
    """After the node's PATCH, before its read-back, another writer merges ``competing_tags``."""
    real_read = split_node._read_item
    calls = []

    def read(item):
        calls.append(item.id)
        if len(calls) == 2:  # the read-back after the write
            platform.store.patch_item(item.id, {"metadata": {"system": {"tags": competing_tags}}}, system=True)
        return real_read(item)

    monkeypatch.setattr(split_node, "_read_item", read)


def run(platform, project, item, config):
    progress = RecordingProgress()
    context = platform.make_context(config, project=project)
    platform.reset_counts()
    main.ServiceRunner().data_split(item=item, progress=progress, context=context)
    return progress.actions


@pytest.mark.parametrize("config", [THREE, TWO], ids=["train-first", "test-first"])
def test_a_conflict_seen_on_read_back_keeps_the_held_out_subset_whatever_the_config_order(
    platform, project, dataset, monkeypatch, config
):
    [item] = new_items(platform, dataset, 1, {"reviewed": True})
    # both configs have train and test, in opposite orders; the item is routed to train
    forced = {"groups": [{**g, "distribution": 100 if g["name"] == "train" else 0} for g in config["groups"]]}
    _race_on_read_back(monkeypatch, platform, {"test": True})  # a writer that kept our train

    actions = run(platform, project, item, forced)

    assert actions == ["test"]
    assert members(platform, item.id) == ["test"]
    tags = platform.get_json("items", item.id)["metadata"]["system"]["tags"]
    assert {k: v for k, v in tags.items() if v is not None} == {"reviewed": True, "test": True}  # null is absent
    assert platform.request_counts["PATCH /items/{id}"] == 2  # our write, then the removal of train


def test_a_later_writer_that_replaced_our_subset_wins_without_another_write(platform, project, dataset, monkeypatch):
    [item] = new_items(platform, dataset, 1, {})
    forced = {"groups": [{"name": "train", "distribution": 100}, {"name": "test", "distribution": 0}]}
    _race_on_read_back(monkeypatch, platform, {"train": None, "validation": True})

    with pytest.raises(RuntimeError, match=r"put it in 'validation', a subset this node does not have"):
        run(platform, project, item, forced)

    assert members(platform, item.id) == ["validation"]
    assert platform.request_counts["PATCH /items/{id}"] == 1


def test_a_later_writer_in_a_subset_we_have_is_adopted(platform, project, dataset, monkeypatch):
    [item] = new_items(platform, dataset, 1, {})
    _race_on_read_back(monkeypatch, platform, {"train": None, "validation": True})
    forced = {"groups": [{"name": "train", "distribution": 100}, {"name": "validation", "distribution": 0}]}

    assert run(platform, project, item, forced) == ["validation"]
    assert members(platform, item.id) == ["validation"]
    assert platform.request_counts["PATCH /items/{id}"] == 1


def test_an_item_already_in_a_pipeline_subset_the_node_lacks_is_refused_before_any_write(platform, project, dataset):
    [item] = new_items(platform, dataset, 1, {"test": True})
    config = {"groups": [{"name": "train", "distribution": 80}, {"name": "validation", "distribution": 20}]}

    with pytest.raises(ValueError, match=r"already in subset 'test'.*add a 'test' group"):
        run(platform, project, item, config)

    assert platform.write_count() == 0
    assert members(platform, item.id) == ["test"]


def test_the_write_removes_every_other_known_subset_in_the_same_patch(platform, project, dataset, monkeypatch):
    """A membership another execution set after our read is removed by our own PATCH."""
    [item] = new_items(platform, dataset, 1, {"reviewed": True})
    stale = item  # read before the other execution wrote
    platform.store.patch_item(item.id, {"metadata": {"system": {"tags": {"validation": True}}}}, system=True)
    forced = {"groups": [{"name": "train", "distribution": 100}, {"name": "test", "distribution": 0}]}
    real_read = split_node._read_item
    first = []

    def read_stale_first(entity):
        first.append(entity.id)
        return stale if len(first) == 1 else real_read(entity)

    monkeypatch.setattr(split_node, "_read_item", read_stale_first)
    assert run(platform, project, item, forced) == ["train"]
    assert members(platform, item.id) == ["train"]
    assert platform.request_counts["PATCH /items/{id}"] == 1


def test_tags_patch_and_settle_rules():
    three, two = SplitConfig.from_node_config(THREE), SplitConfig.from_node_config(TWO)
    assert tags_patch({"reviewed": True}, "train", two) == {"train": True, "test": None, "validation": None}
    assert tags_patch({"validation": False}, "train", two) == {"train": True, "test": None}
    assert tags_patch({"test": True, "validation": False}, "train", three) == {"train": True, "test": None}
    assert tags_patch({"train": 1}, "train", three) == {"train": True, "validation": None, "test": None}
    with pytest.raises(ValueError, match="not one of the configured subsets"):
        tags_patch({}, "validation", two)
    for names in (["train", "test"], ["test", "train"], ["validation", "train"], ["train", "validation", "test"]):
        assert conflict_winner(names) == min(names, key=["test", "validation", "train"].index)
    assert conflict_winner(["zeta", "alpha"]) == "alpha"
    assert conflict_winner(["zeta", "train"]) == "train"
    # both configs settle a conflict the same way
    for cfg in (three, two):
        assert settle_after_write({"train": True, "test": True}, "train", cfg) == ("test", "test", True)
        assert settle_after_write({"train": True, "test": 1}, "train", cfg) == ("train", "train", False)
    assert settle_after_write({"validation": True}, "train", two) == ("validation", None, False)
    assert settle_after_write({}, "train", two) == ("train", "train", True)
