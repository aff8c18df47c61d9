"""The Uncertainty Gate through ``main.ServiceRunner.score_item`` with the real dtlpy client on the
local platform: node config from the pipeline context (as the platform stores it), predictions
uploaded with dtlpy's annotation builder, the record, the route, one annotation request whatever
the number of annotations, reruns that write nothing, and errors before any write."""

from __future__ import annotations

import io
import math

import dtlpy as dl
import pytest

from tests.helpers import run_node

QUERY = "POST /datasets/{id}/query"
PATCH = "PATCH /items/{id}"


def _upload(dataset, name="a.jpg", metadata=None):
    buffer = io.BytesIO(b"not really a jpeg " + name.encode())
    buffer.name = name
    return dataset.items.upload(local_path=buffer, item_metadata=metadata or {"user": {"keep": 1}})


def _predict(item, model_id, predictions, kind="class"):
    """Upload predictions ``[(label, confidence), ...]`` with dtlpy's builder and ``model_info``."""
    builder = item.annotations.builder()
    for k, (label, confidence) in enumerate(predictions):
        info = {"name": f"model-{model_id}", "model_id": model_id, "confidence": confidence}
        if kind == "class":
            builder.add(dl.Classification(label=label), model_info=info)
        else:
            builder.add(
                dl.Box(top=10 * k, left=10 * k, bottom=10 * k + 8, right=10 * k + 8, label=label), model_info=info
            )
    item.annotations.upload(builder)


def _gate(item, context=None):
    return run_node("score_item", item=item, context=context)


def _record(platform, item_id):
    return platform.get_json("items", item_id)["metadata"]["user"]["activeLearning"]["selection"]


def test_platform_node_config_scores_routes_and_records(platform, project, dataset):
    item = _upload(dataset)
    _predict(item, "m1", [("cat", 0.5), ("dog", 0.3), ("bird", 0.2)])
    stored = {  # what the platform keeps in customNodeConfig: name, validation, the UI's empty modelId
        "name": "Uncertainty Gate",
        "validation": {"valid": True, "errors": []},
        "nodeName": "Uncertainty Gate",
        "strategy": "margin",
        "threshold": 0.7,
        "aggregation": "max",
        "modelId": "",
    }
    context = platform.make_context(node_config=stored, execution_id="exec-gate-1", project=project)
    platform.reset_counts()
    result, progress = _gate(item, context)
    assert progress.actions == ["label"]  # margin 1 - (0.5 - 0.3) = 0.8 >= 0.7
    record = _record(platform, item.id)
    assert set(record) == {"score", "strategy", "modelId", "executionId", "selectedAt", "fallback"}
    assert math.isclose(record["score"], 0.8)
    assert (record["strategy"], record["modelId"], record["executionId"]) == ("margin", "m1", "exec-gate-1")
    assert record["fallback"] is False
    assert record["selectedAt"].endswith("Z")
    assert platform.get_json("items", item.id)["metadata"]["user"]["keep"] == 1  # other metadata preserved
    assert result.metadata["user"]["activeLearning"]["selection"]["score"] == record["score"]
    assert platform.request_counts[QUERY] == 1 and platform.request_counts[PATCH] == 1
    assert platform.write_count() == 1


def test_below_threshold_skips_and_single_class_falls_back(platform, project, dataset):
    item = _upload(dataset)
    _predict(item, "m1", [("cat", 0.9)])
    context = platform.make_context(node_config={"strategy": "entropy", "threshold": 0.5}, project=project)
    _, progress = _gate(item, context)
    assert progress.actions == ["skip"]
    record = _record(platform, item.id)
    assert math.isclose(record["score"], 0.1) and record["fallback"] is True  # one class: least confidence


def test_outside_a_pipeline_uses_defaults(platform, dataset):
    item = _upload(dataset)
    _predict(item, "m1", [("cat", 0.55), ("dog", 0.45)])
    _, progress = _gate(item, context=None)
    assert progress.actions == ["label"]  # default margin 0.9 >= default threshold 0.5
    assert _record(platform, item.id)["executionId"] is None


def test_one_annotation_request_whatever_the_number_of_boxes(platform, project, dataset):
    few, many = _upload(dataset, "few.jpg"), _upload(dataset, "many.jpg")
    _predict(few, "m1", [("cat", 0.9)] * 3, kind="box")
    _predict(many, "m1", [("cat", 0.9)] * 400 + [("dog", 0.2)], kind="box")
    context = platform.make_context(node_config={"strategy": "least_confidence", "threshold": 0.5}, project=project)
    counts = []
    for item in (few, many):
        context = platform.make_context(node_config={"strategy": "least_confidence"}, project=project)
        platform.reset_counts()
        _, progress = _gate(item, context)
        counts.append(platform.request_counts[QUERY])
    assert counts == [1, 1]
    assert math.isclose(_record(platform, many.id)["score"], 0.8)  # max of the 401 box uncertainties
    assert progress.actions == ["label"]


def test_rerun_of_the_same_execution_writes_nothing(platform, project, dataset):
    item = _upload(dataset)
    _predict(item, "m1", [("cat", 0.6), ("dog", 0.4)])
    context = platform.make_context(node_config={"threshold": 0.5}, execution_id="exec-rerun", project=project)
    _gate(item, context)
    first = _record(platform, item.id)
    platform.reset_counts()
    _, progress = _gate(item, context)  # the same (stale) entity, the same execution
    assert platform.write_count() == 0
    assert progress.actions == ["label"]
    assert _record(platform, item.id) == first
    other = platform.make_context(node_config={"threshold": 0.5}, execution_id="exec-other", project=project)
    platform.reset_counts()
    _gate(item, other)
    assert platform.write_count() == 1 and _record(platform, item.id)["executionId"] == "exec-other"


def test_no_prediction_scores_the_empty_score(platform, project, dataset):
    item = _upload(dataset)
    context = platform.make_context(node_config={"threshold": 0.99}, project=project)
    _, progress = _gate(item, context)
    assert progress.actions == ["label"]
    record = _record(platform, item.id)
    assert record["score"] == 1.0 and record["modelId"] is None


def test_model_id_picks_one_of_several_models(platform, project, dataset):
    item = _upload(dataset)
    _predict(item, "m1", [("cat", 0.99), ("dog", 0.01)])
    _predict(item, "m2", [("cat", 0.5), ("dog", 0.5)])
    context = platform.make_context(node_config={"modelId": "m2", "threshold": 0.9}, project=project)
    _, progress = _gate(item, context)
    assert progress.actions == ["label"] and _record(platform, item.id)["modelId"] == "m2"


@pytest.mark.parametrize(
    ("node_config", "message"),
    [
        ({"threshold": 1.5}, r"customNodeConfig.threshold: 1.5 is outside \[0, 1\]"),
        ({"strategy": "greedy"}, r"customNodeConfig.strategy: 'greedy'"),
        ({"aggregation": "median"}, r"customNodeConfig.aggregation: 'median'"),
        (None, r"customNodeConfig.modelId: not set, and item .* carries predictions of 2 models"),
    ],
)
def test_bad_config_and_ambiguous_model_write_nothing(platform, project, dataset, node_config, message):
    item = _upload(dataset)
    _predict(item, "m1", [("cat", 0.9)])
    _predict(item, "m2", [("cat", 0.8)])
    context = platform.make_context(node_config=node_config, project=project)
    platform.reset_counts()
    with pytest.raises(ValueError, match=message):
        _gate(item, context)
    assert platform.write_count() == 0
    assert "activeLearning" not in platform.get_json("items", item.id)["metadata"].get("user", {})
