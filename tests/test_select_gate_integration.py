"""The Uncertainty Gate through ``main.ServiceRunner.score_item`` with the real dtlpy client on the
local platform: node config from the pipeline context (as the platform stores it), predictions
uploaded with dtlpy's annotation builder, the record, the route, one annotation request whatever
the number of annotations, reruns that write nothing, and errors before any write."""

from __future__ import annotations

import io
import math

import dtlpy as dl
import pytest
from scipy.stats import entropy as scipy_entropy

from nodes.select_for_labeling import gate as gate_module
from tests.helpers import run_node

QUERY = "POST /datasets/{id}/query"
PATCH = "PATCH /items/{id}"
MODEL_GET = "GET /ml/models/{id}"


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
    assert set(record) == {
        "score",
        "strategy",
        "requested",
        "modelId",
        "executionId",
        "selectedAt",
        "fallback",
        "nClasses",
    }
    assert math.isclose(record["score"], 0.8)  # two classes uploaded: margin is exact even with K unknown
    assert (record["strategy"], record["requested"], record["nClasses"]) == ("margin", "margin", None)
    assert (record["modelId"], record["executionId"]) == ("m1", "exec-gate-1")
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
    assert math.isclose(record["score"], 0.1) and record["fallback"] is True  # one class, K unknown
    assert (record["strategy"], record["requested"]) == ("least_confidence", "entropy")  # says what it computed


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
        counts.append((platform.request_counts[QUERY], platform.request_counts[MODEL_GET]))
    assert counts == [(1, 0), (1, 0)]  # least confidence needs no K: the model is not read
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
    assert progress.actions == ["skip"]  # emptyScore 0 by default (docs/detection.md)
    record = _record(platform, item.id)
    assert record["score"] == 0.0 and record["modelId"] is None


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


# --------------------------------------------------------------------------- K from the model


def _model(platform, project, labels):
    _model.count = getattr(_model, "count", 0) + 1
    return platform.create_model(project, f"gate-k-{_model.count}", labels=labels)


def test_k_comes_from_the_model_once_per_process_and_completes_a_top_1_upload(platform, project, dataset):
    model = _model(platform, project, ["cat", "dog", "fox", "owl", "elk"])  # K = 5
    first, second = _upload(dataset, "k1.jpg"), _upload(dataset, "k2.jpg")
    _predict(first, model.id, [("cat", 0.6)])  # only the top class uploaded
    _predict(second, model.id, [("cat", 0.6), ("dog", 0.3)])
    context = platform.make_context(node_config={"strategy": "entropy", "threshold": 0.9}, project=project)
    platform.reset_counts()
    _gate(first, context)
    _gate(second, context)
    assert platform.request_counts[MODEL_GET] == 1  # the model is read once, not per item or annotation
    record = _record(platform, first.id)
    expected = scipy_entropy([0.6, 0.1, 0.1, 0.1, 0.1]) / math.log(5)  # 0.4 spread over the 4 classes not uploaded
    assert math.isclose(record["score"], expected, rel_tol=1e-9)
    assert (record["strategy"], record["requested"], record["fallback"], record["nClasses"]) == (
        "entropy",
        "entropy",
        False,
        5,
    )
    second_record = _record(platform, second.id)
    assert math.isclose(second_record["score"], scipy_entropy([0.6, 0.3, 0.1 / 3, 0.1 / 3, 0.1 / 3]) / math.log(5))


def test_margin_of_a_top_1_upload_with_k_known(platform, project, dataset):
    model = _model(platform, project, ["cat", "dog"])
    item = _upload(dataset, "m.jpg")
    _predict(item, model.id, [("cat", 0.7)], kind="box")
    context = platform.make_context(node_config={"strategy": "margin", "modelId": model.id}, project=project)
    _, progress = _gate(item, context)
    record = _record(platform, item.id)
    assert math.isclose(record["score"], 1 - (0.7 - 0.3)) and record["strategy"] == "margin"  # p2 = the missing 0.3
    assert progress.actions == ["label"]


def test_a_model_without_labels_falls_back_and_says_so(platform, project, dataset):
    model = _model(platform, project, [])
    item = _upload(dataset, "nolabels.jpg")
    _predict(item, model.id, [("cat", 0.7)])
    context = platform.make_context(node_config={"strategy": "margin", "threshold": 0.5}, project=project)
    _, progress = _gate(item, context)
    record = _record(platform, item.id)
    assert math.isclose(record["score"], 0.3) and progress.actions == ["skip"]
    assert (record["strategy"], record["requested"], record["fallback"], record["nClasses"]) == (
        "least_confidence",
        "margin",
        True,
        None,
    )


# --------------------------------------------------------------------------- refusals before any write


def test_model_id_that_made_none_of_the_predictions_is_refused(platform, project, dataset):
    item = _upload(dataset, "other-model.jpg")
    _predict(item, "m1", [("cat", 0.9)])
    _predict(item, "m3", [("cat", 0.8)])
    context = platform.make_context(node_config={"modelId": "m2"}, project=project)
    platform.reset_counts()
    with pytest.raises(ValueError, match=r"customNodeConfig.modelId: 'm2' made none of .* models m1, m3 did"):
        _gate(item, context)
    assert platform.write_count() == 0
    assert "activeLearning" not in platform.get_json("items", item.id)["metadata"].get("user", {})
    empty = _upload(dataset, "no-prediction.jpg")  # no prediction at all: emptyScore, as documented
    _, progress = _gate(empty, context)
    assert progress.actions == ["skip"] and _record(platform, empty.id)["score"] == 0.0


@pytest.mark.parametrize("vector", ["0.7,0.3", [[0.7, 0.3]], {"cat": 0.7}, [True, False], ["0.7", "0.3"]])
def test_malformed_class_score_vectors_are_refused(platform, project, dataset, vector):
    item = _upload(dataset, "vector.jpg")
    info = {"name": "m", "model_id": "m1", "confidence": 0.7, "scores": vector}
    platform.store.create_annotations(
        item.id, [{"type": "class", "label": "cat", "metadata": {"user": {"model": info}}}]
    )
    platform.reset_counts()
    with pytest.raises(ValueError, match=r"metadata.user.model.scores: .* not a flat list .*; upload one number"):
        _gate(item, platform.make_context(node_config={}, project=project))
    assert platform.write_count() == 0


def test_wrong_entity_for_item_is_refused(platform, project, dataset):
    item = _upload(dataset, "entity.jpg")
    for wrong in (item.id, item.to_json(), dataset):
        platform.reset_counts()
        with pytest.raises(ValueError, match=r"^item: .* not an? item; connect the Predict node's item output"):
            _gate(wrong)
        assert platform.write_count() == 0


# --------------------------------------------------------------------------- reruns (mutation survivors)


def test_rerun_of_the_same_execution_at_a_later_second_writes_nothing(platform, project, dataset, monkeypatch):
    item = _upload(dataset, "later.jpg")
    _predict(item, "m1", [("cat", 0.6), ("dog", 0.4)])
    context = platform.make_context(node_config={}, execution_id="exec-later", project=project)
    monkeypatch.setattr(gate_module, "utc_now", lambda: "2030-01-01T00:00:00Z")
    _gate(item, context)
    monkeypatch.setattr(gate_module, "utc_now", lambda: "2030-01-01T00:00:07Z")  # the rerun, seconds later
    platform.reset_counts()
    _gate(item, context)
    assert platform.write_count() == 0
    assert _record(platform, item.id)["selectedAt"] == "2030-01-01T00:00:00Z"


def test_rerun_after_the_predictions_changed_records_the_new_score(platform, project, dataset):
    item = _upload(dataset, "changed.jpg")
    _predict(item, "m1", [("cat", 0.6), ("dog", 0.4)])
    context = platform.make_context(node_config={}, execution_id="exec-changed", project=project)
    _gate(item, context)
    assert math.isclose(_record(platform, item.id)["score"], 0.8)
    [dog] = [a for a in item.annotations.list() if a.label == "dog"]
    dog.delete()
    _predict(item, "m1", [("dog", 0.1)])  # now cat 0.6, dog 0.1
    platform.reset_counts()
    _gate(item, context)
    assert platform.request_counts[PATCH] == 1
    assert math.isclose(_record(platform, item.id)["score"], 1 - (0.6 - 0.1))
