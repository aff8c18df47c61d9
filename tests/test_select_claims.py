"""Select for Labeling on the local platform (issues 20 and 23): runs at the same time never share an
item (the claim, with real threads), the labelled items' vectors reach the core-set, the record
names the score actually used, and the behaviours a mutation run left unpinned (per-label quota
and seed through the node, a budget equal to the pool, reruns whose ranking item is gone)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import dtlpy as dl
import numpy as np
import pandas as pd
import pytest

from nodes.select_for_labeling import node as edge
from nodes.select_for_labeling.claim import CLAIM_ID_FIELD, claim_groups, claim_of
from nodes.select_for_labeling.config import SelectionConfig
from nodes.select_for_labeling.scores import predictions_frame
from nodes.select_for_labeling.select import select_pool
from tests.test_select_items_integration import (
    LABELS,
    _class,
    _item,
    _ranked_ids,
    _ranking,
    _ranking_docs,
    _select,
    seed_pool,
)

TAGS = ("metadata", "system", "tags")


@pytest.fixture
def model(platform, project, dataset):
    created = platform.create_model(project, "resnet", dataset=dataset)
    platform.reset_counts()
    return created


def _tags(platform, item_id):
    return _item(platform, item_id)["metadata"]["system"].get("tags", {})


def _record(platform, item_id):
    return _item(platform, item_id)["metadata"]["user"]["activeLearning"]


def _set_tag(item_id, tag, value):
    """What a person or another node does between runs: set (``True``) or remove (``None``) a tag."""
    item = dl.items.get(item_id=item_id)
    tags = item.metadata.setdefault("system", {}).setdefault("tags", {})
    if value is None:
        tags.pop(tag, None)
    else:
        tags[tag] = value
    item.update(system_metadata=True)


# ---------------------------------------------------------------------------------------------
# runs at the same time
# ---------------------------------------------------------------------------------------------


def _run_side_by_side(platform, project, dataset, model, configs, barrier_after_listing=True, monkeypatch=None):
    """Run one selection per config in its own thread, each with its own execution; when
    ``barrier_after_listing``, every run lists the pool and its predictions before any writes."""
    if barrier_after_listing:
        barrier = threading.Barrier(len(configs), timeout=60)
        real = edge.list_pool_annotations

        def listed_then_wait(*args, **kwargs):
            answer = real(*args, **kwargs)
            barrier.wait()
            return answer

        monkeypatch.setattr(edge, "list_pool_annotations", listed_then_wait)
    contexts = [platform.make_context(execution_id=f"exec-par-{k}", project=project) for k in range(len(configs))]
    with ThreadPoolExecutor(max_workers=len(configs)) as pool:
        futures = [pool.submit(_select, model, dataset, c, ctx) for c, ctx in zip(configs, contexts, strict=True)]
        return [[i.id for i in f.result()[0]] for f in futures]


def test_two_runs_at_the_same_time_never_choose_the_same_items(platform, project, dataset, model, monkeypatch):
    margins = seed_pool(platform, dataset, model, 30)
    best = sorted(margins, key=lambda i: -margins[i])
    chosen = _run_side_by_side(platform, project, dataset, model, [{"budget": 5}, {"budget": 5}], True, monkeypatch)
    first, second = chosen
    assert len(first) == len(second) == 5
    assert not set(first) & set(second)  # today both returned the same batch
    assert set(first) | set(second) == set(best[:10])  # the loser took the next most uncertain items
    for k, ids in enumerate(chosen):
        for item_id in ids:
            active = _record(platform, item_id)
            assert active["selection"]["executionId"] == f"exec-par-{k}"
            assert active["claim"]["id"] == f"exec-par-{k}"
            assert _tags(platform, item_id)["to_label"] is True
        assert _ranked_ids(_ranking(platform, dataset, f"exec-par-{k}")) == ids  # the ranking names the kept batch
    tagged = [
        d["id"] for d in platform.items_json(dataset.id) if d["metadata"]["system"].get("tags", {}).get("to_label")
    ]
    assert len(tagged) == 10


def test_four_runs_at_the_same_time_share_nothing_and_a_rerun_of_each_writes_nothing(
    platform, project, dataset, model, monkeypatch
):
    seed_pool(platform, dataset, model, 40)
    configs = [
        {"budget": 6, "diversity": "cluster"},
        {"budget": 6},
        {"budget": 6, "strategy": "entropy"},
        {"budget": 6},
    ]
    chosen = _run_side_by_side(platform, project, dataset, model, configs, True, monkeypatch)
    flat = [i for ids in chosen for i in ids]
    assert len(flat) == len(set(flat)) == 24
    platform.reset_counts()
    monkeypatch.undo()
    again = _run_side_by_side(platform, project, dataset, model, configs, False)
    assert again == chosen
    assert platform.write_count() == 0


def test_a_pool_smaller_than_both_budgets_is_shared_out_not_doubled(platform, project, dataset, model, monkeypatch):
    seed_pool(platform, dataset, model, 7)
    first, second = _run_side_by_side(
        platform, project, dataset, model, [{"budget": 5}, {"budget": 5}], True, monkeypatch
    )
    assert not set(first) & set(second) and len(first) + len(second) == 7


def test_claim_groups_follow_the_listed_claims():
    docs = {
        "a": {},
        "b": {"metadata": {"user": {"activeLearning": {"claim": {"id": "e0", "at": "t"}}}}},
        "c": {"metadata": {"user": {"activeLearning": {"claim": None}}}},  # a null claim reads as absent
    }
    assert claim_groups(docs, ["a", "b", "c"]) == [(None, ["a", "c"]), ("e0", ["b"])]
    assert claim_of(docs["c"]) is None and CLAIM_ID_FIELD == "metadata.user.activeLearning.claim.id"


def test_a_later_run_may_take_items_of_a_finished_run_its_pool_keeps(platform, project, dataset, model):
    """The claim guards runs at the same time; a run that lists after another wrote sees its tag (the
    default pool leaves those items out) and a pool that keeps them may choose them again."""
    seed_pool(platform, dataset, model, 8)
    first, _ = _select(model, dataset, {"budget": 3}, platform.make_context(execution_id="exec-a", project=project))
    pool = {"filter": {"type": "file"}}
    later, _ = _select(
        model, dataset, {"budget": 8, "pool": pool}, platform.make_context(execution_id="exec-b", project=project)
    )
    assert {i.id for i in first} <= {i.id for i in later}
    assert all(_record(platform, i.id)["claim"]["id"] == "exec-b" for i in later)


# ---------------------------------------------------------------------------------------------
# labelled items' vectors, the class count and the score actually used
# ---------------------------------------------------------------------------------------------


def _feature_set(project, dataset, vectors):
    feature_set = project.feature_sets.create(
        name="clip", size=2, set_type="embeddings", entity_type=dl.FeatureEntityType.ITEM
    )
    for item_id, value in vectors.items():
        feature_set.features.create(value=value, entity=dl.items.get(item_id=item_id))
    return feature_set


@pytest.mark.parametrize("truth_per_item", [1, 1500])
def test_labelled_vectors_reach_select_pool_and_their_listing_does_not_grow_with_annotations(
    platform, project, dataset, model, monkeypatch, truth_per_item
):
    pool_ids = list(seed_pool(platform, dataset, model, 6))
    truth, train, test = platform.add_items(
        dataset,
        [
            {"name": "truth.jpg", "dir": "/labelled"},  # outside the pool below: its annotations are not listed
            {"name": "train.jpg", "dir": "/labelled", "metadata": {"system": {"tags": {"train": True}}}},
            {"name": "held.jpg", "metadata": {"system": {"tags": {"test": True}}}},
        ],
    )
    platform.store.create_annotations(truth, [_class("cat") for _ in range(truth_per_item)])
    platform.store.create_annotations(test, [_class("cat")])
    vectors = {i: [float(k), 0.0] for k, i in enumerate(pool_ids)}
    vectors.update({truth: [100.0, 1.0], train: [200.0, 2.0], test: [300.0, 3.0]})
    _feature_set(project, dataset, vectors)
    seen = {}
    real = edge.select_pool

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(edge, "select_pool", spy)
    platform.reset_counts()
    pool = {"filter": {"dir": "/"}}  # the seeded items; the labelled ones carry tags or ground truth
    _select(model, dataset, {"budget": 2, "featureSet": "clip", "diversity": "kcenter", "pool": pool})
    labelled = seen["labelled_features"]
    assert sorted(map(tuple, labelled.tolist())) == [(100.0, 1.0), (200.0, 2.0)]  # never the held-out item
    assert seen["n_classes"] == len(LABELS)
    # the labelled listing: one page of tagged items, one of items joined with their ground truth
    assert platform.request_counts["POST /datasets/{id}/query"] == 2 + 2 + 1 + 1  # pool, annotations, labelled x2,
    # + bulk write + re-read; the feature vectors are their own endpoint
    assert platform.request_counts["POST /features/vectors/query"] == 1


def test_the_record_names_the_score_used_and_the_one_requested(platform, project, dataset):
    unknown = platform.create_model(project, "no-labels", dataset=dataset, labels=[])
    ids = platform.add_items(dataset, [{"name": f"top1-{i}.jpg"} for i in range(4)])
    for k, item_id in enumerate(ids):  # top-1 uploads only, K unknown: margin falls back to least confidence
        platform.store.create_annotations(item_id, [_class("cat", unknown, 0.6 + k / 10)])
    items, _ = _select(unknown, dataset, {"budget": 2, "strategy": "margin"})
    ranking = _ranking(platform, dataset)
    assert (ranking["strategy"], ranking["requested"]) == ("least_confidence", "margin")
    record = _record(platform, items[0].id)["selection"]
    assert (record["strategy"], record["requested"]) == ("least_confidence", "margin")
    assert [i.id for i in items] == ids[:2]  # 1 - 0.6, 1 - 0.7


def test_with_the_models_labels_margin_stays_margin(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 5, top=2)  # 2 of K = 3 classes uploaded
    _select(model, dataset, {"budget": 2, "strategy": "margin"})
    ranking = _ranking(platform, dataset)
    assert (ranking["strategy"], ranking["requested"]) == ("margin", "margin")


# ---------------------------------------------------------------------------------------------
# mutation survivors: quota, seed, budget == pool, reruns
# ---------------------------------------------------------------------------------------------


def _two_label_pool():
    """Six items: the three most uncertain are all 'cat'."""
    confidences = {
        "c1": ("cat", 0.40),
        "c2": ("cat", 0.41),
        "c3": ("cat", 0.42),
        "d1": ("dog", 0.6),
        "d2": ("dog", 0.7),
    }
    confidences["d3"] = ("dog", 0.8)
    records = {i: [{"label": label, "confidence": p, "type": "class"}] for i, (label, p) in confidences.items()}
    return predictions_frame(records), list(confidences)


def test_per_label_quota_through_select_pool():
    predictions, ids = _two_label_pool()
    free, _ = select_pool(predictions, ids, SelectionConfig(budget=3, strategy="least_confidence"))
    capped, _ = select_pool(predictions, ids, SelectionConfig(budget=3, strategy="least_confidence", per_label_quota=2))
    assert free.item_ids == ("c1", "c2", "c3")
    assert capped.item_ids == ("c1", "c2", "d1") and not capped.quota_limited
    tight, _ = select_pool(predictions, ids, SelectionConfig(budget=5, strategy="least_confidence", per_label_quota=1))
    assert tight.item_ids == ("c1", "d1") and tight.quota_limited


def test_seed_through_select_pool_changes_only_ties_and_random():
    ties = predictions_frame({f"i{k}": [{"label": "cat", "confidence": 0.5, "type": "class"}] for k in range(30)})
    ids = [f"i{k}" for k in range(30)]
    by_seed = {s: select_pool(ties, ids, SelectionConfig(budget=5, seed=s))[0].item_ids for s in (0, 1, 0)}
    assert len(by_seed) == 2 and by_seed[0] != by_seed[1]
    random = {
        s: select_pool(ties, ids, SelectionConfig(budget=5, strategy="random", seed=s))[0].item_ids for s in (3, 4)
    }
    assert random[3] != random[4]
    assert select_pool(ties, ids, SelectionConfig(budget=5, strategy="random", seed=3))[0].item_ids == random[3]


def test_budget_equal_to_the_pool_is_not_larger_than_the_pool(platform, project, dataset, model):
    predictions, ids = _two_label_pool()
    exact, _ = select_pool(predictions, ids, SelectionConfig(budget=6))
    assert not exact.budget_exceeds_pool and "larger" not in exact.summary()
    assert select_pool(predictions, ids, SelectionConfig(budget=7))[0].budget_exceeds_pool
    seed_pool(platform, dataset, model, 6)
    items, progress = _select(model, dataset, {"budget": 6})
    assert len(items) == 6 and _ranking(platform, dataset)["budgetExceedsPool"] is False
    assert _record(platform, items[0].id)["selection"]["budgetExceedsPool"] is False
    assert "larger than the pool" not in progress.updates[-1]["message"]


def _labelled_pool(platform, dataset, model):
    """Three cat items most uncertain, then dogs; returns their ids by label."""
    ids = platform.add_items(dataset, [{"name": f"q-{k}.jpg"} for k in range(6)])
    for k, item_id in enumerate(ids):
        label = "cat" if k < 3 else "dog"
        platform.store.create_annotations(
            item_id, [_class(label, model, 0.40 + k / 100), _class("bird", model, 0.30 - k / 100)]
        )
    return ids


def test_per_label_quota_and_seed_through_the_node(platform, project, dataset, model):
    ids = _labelled_pool(platform, dataset, model)
    items, _ = _select(model, dataset, {"budget": 3, "strategy": "least_confidence", "perLabelQuota": 2, "tag": "q1"})
    assert [i.id for i in items] == [ids[0], ids[1], ids[3]]
    assert _ranking(platform, dataset)["quotaLimited"] is False
    # the seed through the node: a random batch is the seed's, the same for the same seed
    runs = {
        seed: [
            i.id
            for i in _select(model, dataset, {"budget": 2, "strategy": "random", "seed": seed, "pool": {"dir": "/"}})[0]
        ]
        for seed in (1, 2)
    }
    assert runs[1] != runs[2]
    again, _ = _select(model, dataset, {"budget": 2, "strategy": "random", "seed": 1, "pool": {"dir": "/"}})
    assert [i.id for i in again] == runs[1]


def test_rerun_with_its_ranking_gone_never_rechooses_an_item_tagged_test_since(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 12)
    context = platform.make_context(execution_id="exec-gone", project=project)
    first, _ = _select(model, dataset, {"budget": 4}, context)
    [ranking_doc] = _ranking_docs(platform, dataset)
    dataset.items.delete(item_id=ranking_doc["id"])
    moved = first[0].id
    _set_tag(moved, "test", True)
    platform.reset_counts()
    again, _ = _select(model, dataset, {"budget": 4}, context)
    assert moved not in [i.id for i in again] and len(again) == 4
    assert [i.id for i in again][:3] == [i.id for i in first][1:]
    assert _ranked_ids(_ranking(platform, dataset, "exec-gone")) == [i.id for i in again]
    assert not [r for r in platform.requests if r.wrote and moved in (r.path or "")]


def test_rerun_with_its_ranking_kept_never_returns_an_item_tagged_test_since(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 12)
    context = platform.make_context(execution_id="exec-kept", project=project)
    first, _ = _select(model, dataset, {"budget": 4}, context)
    _set_tag(first[1].id, "test", True)
    platform.reset_counts()
    again, _ = _select(model, dataset, {"budget": 4}, context)
    assert [i.id for i in again] == [first[0].id, first[2].id, first[3].id]
    assert platform.write_count() == 0


@pytest.mark.parametrize("ranking_gone", [False, True])
def test_rerun_restores_a_tag_removed_between_runs(platform, project, dataset, model, ranking_gone):
    seed_pool(platform, dataset, model, 12)
    context = platform.make_context(execution_id=f"exec-untag-{ranking_gone}", project=project)
    first, _ = _select(model, dataset, {"budget": 3}, context)
    untagged = first[2].id
    _set_tag(untagged, "to_label", None)
    assert not _tags(platform, untagged).get("to_label")
    if ranking_gone:
        [ranking_doc] = _ranking_docs(platform, dataset)
        dataset.items.delete(item_id=ranking_doc["id"])
    again, _ = _select(model, dataset, {"budget": 3}, context)
    assert [i.id for i in again] == [i.id for i in first]
    assert _tags(platform, untagged)["to_label"] is True
    assert _record(platform, untagged)["claim"]["id"] == f"exec-untag-{ranking_gone}"


def test_the_pool_scores_do_not_depend_on_other_items_predictions():
    """A replacement batch is scored with the whole predictions frame: items outside the pool are ignored."""
    predictions, ids = _two_label_pool()
    extra = pd.concat([predictions, predictions_frame({"zz": [{"label": "cat", "confidence": 0.1, "type": "class"}]})])
    assert (
        select_pool(extra, ids[3:], SelectionConfig(budget=2))[0].item_ids
        == select_pool(predictions, ids[3:], SelectionConfig(budget=2))[0].item_ids
    )
    assert np.isfinite(select_pool(extra, ids, SelectionConfig(budget=6))[1].scores).all()
