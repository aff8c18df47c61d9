"""Load: 8 concurrent Model Data Split executions (the manifest's service concurrency is 10 per
replica) sharing dtlpy's one client, over 400 items on LocalPlatform, lose no update and tag
every item exactly once. The 10,000-item run with printed throughput is
``benchmarks/bench_load.py``; both use the same :func:`benchmarks.bench_load.run_load`."""

from __future__ import annotations

from collections import Counter

from benchmarks.bench_load import NODE_CONFIG, PATCH_ITEM, list_items, run_load, seed
from nodes.data_split import SplitConfig

N_ITEMS = 400
WORKERS = 8


def assert_predictions_follow_the_rule(platform, dataset, before_tags: dict) -> None:
    """Reviewed pre-annotations of items routed for the first time became ground truth; the
    predictions on items that were already in a subset (Evaluate's, on ``test``) stayed predictions."""
    config = SplitConfig.from_node_config(NODE_CONFIG)
    carriers = Counter(
        a["itemId"] for a in platform.annotations_json(dataset.id) if "model" in (a["metadata"].get("user") or {})
    )
    already_in = {i for i, tags in before_tags.items() if any(tags.get(n) is True for n in config.subset_names)}
    assert set(carriers) <= already_in
    assert sum(carriers.values()) == sum(1 for k in range(0, len(before_tags), 10) if k % 7 == 0)


def tags_now(platform, dataset) -> dict:
    return {i["id"]: (i["metadata"].get("system") or {}).get("tags") or {} for i in platform.items_json(dataset.id)}


def test_eight_concurrent_executions_tag_every_item_exactly_once(platform, project, dataset):
    ids = seed(platform, dataset, N_ITEMS)
    items = list_items(dataset)
    assert sorted(item.id for item in items) == sorted(ids)
    before = tags_now(platform, dataset)

    result = run_load(platform, project, dataset, items, workers=WORKERS)

    assert result.problems == []
    assert_predictions_follow_the_rule(platform, dataset, before)
    config = SplitConfig.from_node_config(NODE_CONFIG)
    final = [(i["metadata"].get("system") or {}).get("tags") or {} for i in platform.items_json(dataset.id)]
    assert all(sum(tags.get(name) is True for name in config.subset_names) == 1 for tags in final)
    sticky = sum(1 for k in range(N_ITEMS) if k % 7 == 0)
    assert result.requests[PATCH_ITEM] == N_ITEMS - sticky  # one write per item that needed a tag
    assert result.requests["GET /pipelines/{id}"] == N_ITEMS  # every execution read its own node config
    assert sum(1 for tags in final if tags.get("reviewed") is True) == N_ITEMS // 5  # other tags survive


def test_a_rerun_of_the_whole_load_writes_nothing(platform, project, dataset):
    seed(platform, dataset, 50)
    items = list_items(dataset)
    before = tags_now(platform, dataset)
    first = run_load(platform, project, dataset, items, workers=WORKERS)
    assert first.problems == []

    again = run_load(platform, project, dataset, list_items(dataset), workers=WORKERS)

    assert again.problems == []
    assert_predictions_follow_the_rule(platform, dataset, before)
    assert again.requests[PATCH_ITEM] == 0
    assert platform.write_count() == 0


def test_duplicate_executions_racing_on_the_same_items_agree(platform, project, dataset):
    """A pipeline retry may run while the original execution of the same item still runs."""
    seed(platform, dataset, 40)
    items = list_items(dataset)
    before = tags_now(platform, dataset)
    doubled = [item for item in items for _ in range(2)]

    result = run_load(platform, project, dataset, doubled, workers=WORKERS)

    # run_load's own checks hold per item; only the write count differs: a racing duplicate may
    # write the same tags a second time (an idempotent overwrite), never different ones
    assert [p for p in result.problems if "item updates" not in p] == []
    assert_predictions_follow_the_rule(platform, dataset, before)
    needing = sum(1 for k in range(40) if k % 7 != 0)
    assert needing <= result.requests[PATCH_ITEM] <= 2 * needing
