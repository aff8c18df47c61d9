"""Select for Labeling through ``main.ServiceRunner.select_items`` with the real dtlpy client on the
local platform: the chosen items, their record and tag, the batch ranking in a hidden item of the
dataset (never on the model), ground truth and test-subset items left out, the request bound,
bulk writes per 1,000, reruns that write nothing, an interrupted run finished by its rerun,
feature sets, tasks, and bad input that writes nothing."""

from __future__ import annotations

import json
import logging
import math

import dtlpy as dl
import numpy as np
import pytest

from tests.helpers import run_node

QUERY = "POST /datasets/{id}/query"
UPLOAD = "POST /datasets/{id}/items"
RANKING_DIR = "/.activelearning/selections/"
LABELS = ("cat", "dog", "bird")


def _class(label, model=None, confidence=None):
    annotation = {"type": "class", "label": label, "coordinates": [], "metadata": {}}
    if model is not None:
        annotation["metadata"] = {
            "user": {"model": {"model_id": model.id, "name": model.name, "confidence": confidence}}
        }
    return annotation


def seed_pool(platform, dataset, model, n_items, seed=0, prefix="img", tags=None, top=3):
    """``n_items`` items with ``top`` class predictions of ``model`` each (store writes, no HTTP).

    Returns ``{item_id: margin score}`` (1 - (p1 - p2)) computed here by hand.
    """
    rng = np.random.default_rng(seed)
    ids = platform.add_items(
        dataset,
        [{"name": f"{prefix}-{i:05d}.jpg", "metadata": {"system": {"tags": dict(tags or {})}}} for i in range(n_items)],
    )
    margins = {}
    for item_id in ids:
        p = rng.dirichlet(np.ones(len(LABELS)))
        order = np.argsort(-p)[:top]
        platform.store.create_annotations(item_id, [_class(LABELS[k], model, float(round(p[k], 6))) for k in order])
        q = sorted((round(float(p[k]), 6) for k in order), reverse=True)
        margins[item_id] = 1 - (q[0] - q[1])
    return margins


def _bulk_writes(platform):
    return [r for r in platform.requests if r.route == "/datasets/{id}/query" and r.wrote]


def _per_item(platform):
    return [r for r in platform.requests if r.route.startswith("/items/")]


def _select(model, dataset, config, context=None):
    return run_node("select_items", model=model, dataset=dataset, selection_config=config, context=context)


def _item(platform, item_id):
    return platform.get_json("items", item_id)


def _ranking_docs(platform, dataset):
    return [d for d in platform.items_json(dataset.id) if d["filename"].startswith(RANKING_DIR)]


def _ranking(platform, dataset, execution_id=None):
    """The batch ranking JSON stored by the node (the newest ranking item, or ``<execution_id>.json``)."""
    docs = _ranking_docs(platform, dataset)
    if execution_id is not None:
        docs = [d for d in docs if d["name"] == f"{execution_id}.json"]
    assert docs, "no ranking item in the dataset"
    doc = max(docs, key=lambda d: (d["createdAt"], d["id"]))
    return json.loads(platform.store.item_bytes(doc["id"]).decode("utf-8"))


def _ranked_ids(ranking):
    return [e["itemId"] for e in sorted(ranking["items"], key=lambda e: e["rank"])]


@pytest.fixture
def model(platform, project, dataset):
    created = platform.create_model(project, "resnet", dataset=dataset)
    platform.reset_counts()
    return created


def test_chooses_the_most_uncertain_records_tags_and_returns_items(platform, project, dataset, model):
    margins = seed_pool(platform, dataset, model, 40)
    gt_item = platform.add_items(dataset, [{"name": "labelled.jpg"}])[0]
    platform.store.create_annotations(gt_item, [_class("cat"), _class("dog", model, 0.34)])  # ground truth + prediction
    test_item = platform.add_items(dataset, [{"name": "test.jpg", "metadata": {"system": {"tags": {"test": True}}}}])[0]
    platform.store.create_annotations(test_item, [_class("cat", model, 0.34), _class("dog", model, 0.33)])
    context = platform.make_context(execution_id="exec-sel-1", project=project)
    platform.reset_counts()
    items, progress = _select(model, dataset, {"budget": 5, "strategy": "margin"}, context)

    expected = sorted(margins, key=lambda i: -margins[i])[:5]
    assert [i.id for i in items] == expected
    assert all(isinstance(i, dl.Item) for i in items)
    assert gt_item not in [i.id for i in items] and test_item not in [i.id for i in items]
    for item in items:
        doc = _item(platform, item.id)
        assert doc["metadata"]["system"]["tags"]["to_label"] is True
        record = doc["metadata"]["user"]["activeLearning"]["selection"]
        assert (record["strategy"], record["modelId"], record["executionId"]) == ("margin", model.id, "exec-sel-1")
        assert "score" not in record and "rank" not in record  # per-item values live in the ranking item
        assert item.metadata["user"]["activeLearning"]["selection"] == record  # the returned entity is current
    [ranking_doc] = _ranking_docs(platform, dataset)
    assert ranking_doc["filename"] == "/.activelearning/selections/exec-sel-1.json"
    assert {_item(platform, i.id)["metadata"]["user"]["activeLearning"]["selection"]["ranking"] for i in items} == {
        ranking_doc["id"]
    }
    ranking = _ranking(platform, dataset)
    assert _ranked_ids(ranking) == expected and ranking["executionId"] == "exec-sel-1"
    assert ranking["items"][0] == {"itemId": expected[0], "score": round(margins[expected[0]], 6), "rank": 1}
    assert [e["score"] for e in ranking["items"]] == [round(margins[i], 6) for i in expected]
    assert [e["rank"] for e in ranking["items"]] == [1, 2, 3, 4, 5]
    assert (ranking["modelId"], ranking["strategy"], ranking["budget"]) == (model.id, "margin", 5)
    assert ranking["poolSize"] == 40 and ranking["budgetExceedsPool"] is False and ranking["method"]
    assert ranking["selectedAt"] == record["selectedAt"]
    unchosen = set(margins) - set(expected)
    assert not any(_item(platform, i)["metadata"]["system"]["tags"].get("to_label") for i in unchosen)
    # requests: 1 pool page + 1 annotation page; writes: 1 ranking upload + 1 conditional bulk update (record, tag
    # and claim); + 1 re-read of the claim; no per-item request
    assert platform.request_counts[QUERY] == 4  # 2 listings + 1 bulk update + 1 claim re-read (same endpoint)
    assert platform.request_counts[UPLOAD] == 1
    assert platform.write_count() == 2
    assert _per_item(platform) == []
    assert progress.updates and "chose 5 of 40" in progress.updates[-1]["message"]


def test_node_config_alone_chooses_its_budget(platform, project, dataset, model):
    """A node configured in its panel needs no selection_config: budget 2 from customNodeConfig."""
    margins = seed_pool(platform, dataset, model, 12)
    node_config = {
        "name": "Select for Labeling",
        "validation": {"valid": True, "errors": []},
        "nodeName": "Select for Labeling",
        "budget": 2,
        "strategy": "margin",
        "aggregation": "max",
        "diversity": "none",
        "tag": "round_1",
        "seed": 0,
        "featureSet": "",
    }
    context = platform.make_context(node_config=node_config, execution_id="exec-node-cfg", project=project)
    platform.reset_counts()
    items, _ = _select(model, dataset, None, context)

    expected = sorted(margins, key=lambda i: -margins[i])[:2]
    assert [i.id for i in items] == expected
    assert all(_item(platform, i)["metadata"]["system"]["tags"].get("round_1") is True for i in expected)
    ranking = _ranking(platform, dataset, "exec-node-cfg")
    assert (ranking["budget"], ranking["tag"], ranking["featureSet"]) == (2, "round_1", None)
    assert platform.write_count() == 2  # the ranking upload + one bulk update


def test_rerun_of_the_same_execution_returns_the_same_items_and_writes_nothing(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 30)
    context = platform.make_context(execution_id="exec-rerun", project=project)
    first, _ = _select(model, dataset, {"budget": 4, "diversity": "cluster"}, context)
    platform.reset_counts()
    again, _ = _select(model, dataset, {"budget": 4, "diversity": "cluster"}, context)
    assert [i.id for i in again] == [i.id for i in first]
    assert platform.write_count() == 0
    assert platform.request_counts["GET /items/{id}/stream"] == 1  # the ranking, read back from its item
    assert len(_ranking_docs(platform, dataset)) == 1
    other = platform.make_context(execution_id="exec-next", project=project)
    third, _ = _select(model, dataset, {"budget": 4}, other)
    assert not {i.id for i in third} & {i.id for i in first}  # the default pool excludes items already tagged
    assert len(_ranking_docs(platform, dataset)) == 2  # one ranking item per execution


def test_the_model_is_never_written(platform, project, dataset, model):
    """The input model (the pipeline's Best Model) is not the node's to change: no PATCH, same JSON."""
    seed_pool(platform, dataset, model, 30)
    before = platform.get_json("models", model.id)
    context = platform.make_context(execution_id="exec-model-ro", project=project)
    platform.reset_counts()
    _select(model, dataset, {"budget": 5, "diversity": "cluster"}, context)
    _select(model, dataset, {"budget": 5, "diversity": "cluster"}, context)  # rerun
    _select(model, dataset, {"budget": 3, "strategy": "random"})  # outside a pipeline
    assert platform.request_counts["PATCH /ml/models/{id}"] == 0
    assert not [r for r in platform.requests if r.wrote and r.route.startswith("/ml/models")]
    assert platform.get_json("models", model.id) == before
    assert "activeLearning" not in (model.metadata.get("user") or {})  # nor the caller's entity


def test_ranking_item_is_hidden_never_in_a_pool_and_readable_with_dtlpy(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 12)
    context = platform.make_context(execution_id="exec-hidden", project=project)
    items, _ = _select(model, dataset, {"budget": 3}, context)
    [doc] = _ranking_docs(platform, dataset)
    assert doc["dir"] == "/.activelearning/selections"
    # a later selection, even with a user pool that does not say hidden: false, never takes it
    later, _ = _select(model, dataset, {"budget": 50, "pool": {"filter": {"type": "file"}}})
    assert doc["id"] not in {i.id for i in later} and len(later) == 12  # this user pool keeps tagged items
    assert _ranking(platform, dataset)["poolSize"] == 12
    # a run outside a pipeline names its ranking by a fingerprint
    assert any(d["name"].startswith("run-") for d in _ranking_docs(platform, dataset))
    # the docs/nodes.md recipe: score and rank of a chosen item, from its record
    item = dl.items.get(item_id=items[0].id)
    ranking_item = dl.items.get(item_id=item.metadata["user"]["activeLearning"]["selection"]["ranking"])
    entry = next(e for e in json.load(ranking_item.download(save_locally=False))["items"] if e["itemId"] == item.id)
    assert entry["rank"] == 1 and entry["score"] == _ranking(platform, dataset, "exec-hidden")["items"][0]["score"]


def test_rerun_whose_ranking_item_is_gone_chooses_again_and_repoints_the_records(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 20)
    context = platform.make_context(execution_id="exec-lost", project=project)
    first, _ = _select(model, dataset, {"budget": 4}, context)
    before = _ranking(platform, dataset)
    [old] = _ranking_docs(platform, dataset)
    dataset.items.delete(item_id=old["id"])
    again, _ = _select(model, dataset, {"budget": 4}, context)
    assert [i.id for i in again] == [i.id for i in first]  # the same inputs give the same batch
    assert _ranking(platform, dataset)["items"] == before["items"]  # tagged items keep their predictions
    [new] = _ranking_docs(platform, dataset)
    assert new["id"] != old["id"] and new["name"] == "exec-lost.json"
    for item in again:
        assert _item(platform, item.id)["metadata"]["user"]["activeLearning"]["selection"]["ranking"] == new["id"]


def test_interrupted_run_is_finished_by_its_rerun(platform, project, dataset, model, monkeypatch):
    from nodes.select_for_labeling import node as edge

    seed_pool(platform, dataset, model, 2300)
    context = platform.make_context(execution_id="exec-crash", project=project)
    config = {"budget": 2100, "strategy": "least_confidence"}
    real = edge.write_claimed

    def crash_after_first_chunk(dataset_, ids, docs_by_id, record, tag, claim):
        real(dataset_, ids[:1000], docs_by_id, record, tag, claim)
        raise RuntimeError("simulated crash after the first chunk")

    monkeypatch.setattr(edge, "write_claimed", crash_after_first_chunk)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _select(model, dataset, config, context)
    monkeypatch.setattr(edge, "write_claimed", real)
    tagged = [
        d["id"] for d in platform.items_json(dataset.id) if d["metadata"]["system"].get("tags", {}).get("to_label")
    ]
    assert len(tagged) == 1000
    platform.reset_counts()
    items, _ = _select(model, dataset, config, context)
    assert len(items) == 2100
    assert [i.id for i in items] == _ranked_ids(_ranking(platform, dataset, "exec-crash"))
    assert len(_bulk_writes(platform)) == 2  # the 1,100 left, by 1,000
    assert platform.request_counts[UPLOAD] == 0  # the ranking of the first run is read back, not stored again


def test_request_bound_and_bulk_chunks(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 2500)
    n_annotations = 2500 * 3
    context = platform.make_context(execution_id="exec-bound", project=project)
    platform.reset_counts()
    items, _ = _select(model, dataset, {"budget": 2100, "diversity": "cluster"}, context)
    assert len(items) == 2100
    writes = [r for r in platform.requests if r.wrote]
    bulk_writes = _bulk_writes(platform)
    assert len(bulk_writes) == 3  # ceil(2100 / 1000)
    assert len(writes) == len(bulk_writes) + 1  # + the one ranking upload
    # + the ranking upload + the node config read (GET /pipelines/{id}, once per execution)
    # + the claim's re-read (one item query per 1,000 chosen ids)
    rereads = math.ceil(2100 / 1000)
    bound = math.ceil(n_annotations / 1000) + math.ceil(2500 / 1000) + len(bulk_writes) + rereads + 2
    assert platform.request_counts["GET /pipelines/{id}"] == 1
    assert len(platform.requests) <= bound, (len(platform.requests), bound, platform.request_counts)
    assert _per_item(platform) == []


def test_budget_larger_than_the_pool_takes_it_all_and_says_so(platform, project, dataset, model, caplog):
    seed_pool(platform, dataset, model, 6)
    with caplog.at_level(logging.WARNING, logger="nodes.select_for_labeling"):
        items, progress = _select(model, dataset, {"budget": 50})
    assert len(items) == 6
    assert "budget 50 is larger than the pool (6 items)" in caplog.text
    assert _ranking(platform, dataset)["budgetExceedsPool"] is True
    assert _item(platform, items[0].id)["metadata"]["user"]["activeLearning"]["selection"]["budgetExceedsPool"] is True
    assert "took the whole pool" in progress.updates[-1]["message"]


def test_user_pool_and_test_subset_guard(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 10, prefix="a")
    tagged = seed_pool(platform, dataset, model, 10, prefix="b", tags={"test": True})
    pool = {"filter": {"filename": {"$match": "b-"}}}  # a user pool that names only test items
    items, _ = _select(model, dataset, {"budget": 5, "pool": pool})
    assert items == []
    assert not any(_item(platform, i)["metadata"]["system"]["tags"].get("to_label") for i in tagged)


def test_random_and_detection_variant(platform, project, dataset, model):
    ids = platform.add_items(dataset, [{"name": f"det-{i}.jpg"} for i in range(12)])
    for k, item_id in enumerate(ids):
        boxes = [
            {
                "type": "box",
                "label": "cat",
                "coordinates": [{"x": 0, "y": 0, "z": 0}, {"x": 5, "y": 5, "z": 0}],
                "metadata": {"user": {"model": {"model_id": model.id, "name": "m", "confidence": c}}},
            }
            for c in (0.99, 0.95, 0.5 + k / 100)
        ]
        platform.store.create_annotations(item_id, boxes)
    items, _ = _select(model, dataset, {"budget": 2, "strategy": "least_confidence", "aggregation": "max"})
    assert [i.id for i in items] == [ids[0], ids[1]]  # 1 - 0.50, 1 - 0.51
    random_items, _ = _select(model, dataset, {"budget": 3, "strategy": "random", "seed": 7})
    assert len(random_items) == 3 and not {i.id for i in random_items} & {ids[0], ids[1]}


def test_feature_set_clusters_and_cold_start(platform, project, dataset, model):
    ids = platform.add_items(dataset, [{"name": f"f-{i:02d}.jpg"} for i in range(20)])
    feature_set = project.feature_sets.create(
        name="clip", size=2, set_type="embeddings", entity_type=dl.FeatureEntityType.ITEM
    )
    for k, item_id in enumerate(ids):  # two tight clusters
        value = [10.0 + k * 0.01, 0.0] if k < 10 else [0.0, 10.0 + k * 0.01]
        feature_set.features.create(value=value, entity=dl.items.get(item_id=item_id))
    # cold start: no predictions, a feature set -> TypiClust over the vectors: one typical item of each cluster
    platform.reset_counts()
    items, _ = _select(model, dataset, {"budget": 2, "featureSet": "clip"})
    chosen = [ids.index(i.id) for i in items]
    assert len(chosen) == 2 and (chosen[0] < 10) != (chosen[1] < 10)
    assert _ranking(platform, dataset)["method"] == "cold start: typiclust"
    # with predictions: the two most uncertain are in the first cluster; cluster diversity spreads them
    for k, item_id in enumerate(ids):
        if ids[k] not in [i.id for i in items]:
            confidence = 0.5 if k < 10 else 0.9
            platform.store.create_annotations(
                item_id, [_class("cat", model, confidence), _class("dog", model, 1 - confidence)]
            )
    spread, _ = _select(model, dataset, {"budget": 2, "featureSet": "clip", "diversity": "cluster"})
    positions = [ids.index(i.id) for i in spread]
    assert (positions[0] < 10) != (positions[1] < 10)


def test_task_is_created_once_with_the_chosen_items(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 12)
    context = platform.make_context(execution_id="exec-task", project=project)
    config = {"budget": 3, "task": {"name": "label round 1", "dueDate": "2030-01-31"}}
    items, _ = _select(model, dataset, config, context)
    tasks = dl.tasks.list(task_name="label round 1", project_ids=[project.id])
    assert len(tasks) == 1
    task_items = {i.id for page in tasks[0].get_items() for i in page}
    assert task_items == {i.id for i in items}
    platform.reset_counts()
    again, _ = _select(model, dataset, config, context)
    assert [i.id for i in again] == [i.id for i in items]
    assert platform.write_count() == 0
    assert len(dl.tasks.list(task_name="label round 1", project_ids=[project.id])) == 1
    other = platform.make_context(execution_id="exec-task-2", project=project)
    platform.reset_counts()
    with pytest.raises(ValueError, match=r"selection_config.task.name: 'label round 1' is already the name"):
        _select(model, dataset, config, other)
    assert platform.write_count() == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"budget": 0}, r"selection_config.budget: 0 is less than 1"),
        ({"budget": -3}, r"selection_config.budget: -3"),
        ({"budget": "10"}, r"selection_config.budget: '10' is not a positive integer"),
        ({"budget": 2.5}, r"selection_config.budget: 2.5 is not a positive integer"),
        ({"budget": 5, "strategy": "greedy"}, r"selection_config.strategy: 'greedy' is not one of"),
        ({"budget": 5, "aggregation": "median"}, r"selection_config.aggregation: 'median'"),
        ({"budget": 5, "diversity": "dpp"}, r"selection_config.diversity: 'dpp'"),
        ({"budget": 5, "emptyScore": 1.5}, r"selection_config.emptyScore: 1.5 is outside \[0, 1\]"),
        ({"budget": 5, "pool": {"filter": {"name": {"$regexx": "a"}}}}, r"selection_config.pool.filter.name.\$regexx"),
        ({"budget": 5, "pool": {"filter": {}}}, r"selection_config.pool"),
        (
            {"budget": 5, "featureSet": "no-such-set"},
            r"selection_config.featureSet: 'no-such-set' is not a feature set",
        ),
    ],
)
def test_bad_input_writes_nothing(platform, project, dataset, model, config, message):
    seed_pool(platform, dataset, model, 5)
    platform.reset_counts()
    with pytest.raises(ValueError, match=message):
        _select(model, dataset, config)
    assert platform.write_count() == 0


def test_a_model_that_never_predicted_on_the_pool(platform, project, dataset, model):
    other = platform.create_model(project, "other", dataset=dataset)
    seed_pool(platform, dataset, other, 8)
    platform.reset_counts()
    with pytest.raises(
        ValueError, match=r"model: .* has no predictions on the 8 pool items .* \"strategy\": \"random\""
    ):
        _select(model, dataset, {"budget": 3, "strategy": "entropy"})
    assert platform.write_count() == 0
    items, _ = _select(model, dataset, {"budget": 3, "strategy": "random"})  # the cold-start baseline
    assert len(items) == 3


def test_pool_dql_the_platform_rejects_is_a_value_error(platform, project, dataset, model):
    seed_pool(platform, dataset, model, 5)
    platform.reset_counts()
    platform.fail_next("POST", r"/datasets/[^/]+/query", status=400)
    with pytest.raises(ValueError, match=r"selection_config.pool: the platform rejected the pool DQL"):
        _select(model, dataset, {"budget": 2, "pool": {"filter": {"dir": "/incoming"}}})
    assert platform.write_count() == 0


def test_a_pool_query_with_paging_and_sort_keys_is_listed_with_the_nodes_own(
    platform, project, dataset, model, monkeypatch
):
    """``resource``, ``sort``, ``page``, ``pageSize`` in a pool are accepted and replaced by the node's."""
    from nodes.select_for_labeling.pool import list_pool_items

    ids = sorted(seed_pool(platform, dataset, model, 7, prefix="p"))
    sent = []
    original = dataset.items._list

    def spy(filters):
        sent.append(json.loads(json.dumps(filters.prepare())))
        return original(filters=filters)

    monkeypatch.setattr(dataset.items, "_list", spy)
    pool = {
        "filter": {"dir": "/"},
        "resource": "annotations",
        "sort": {"filename": "descending"},
        "page": 3,
        "pageSize": 2,
    }
    docs = list_pool_items(dataset, pool)
    assert [d["id"] for d in docs] == ids  # every item, by id, from the first page
    assert [(b["resource"], b["sort"], b["page"], b["pageSize"]) for b in sent] == [
        ("items", {"id": "ascending"}, 0, 1000)
    ]
    assert pool["pageSize"] == 2 and pool["sort"] == {"filename": "descending"}  # the caller's dict is untouched
