"""Which predictions Model Data Split turns into ground truth, per annotation, through the real
dtlpy client on LocalPlatform.

Predictions are written the way dtlpy's ``BaseModelAdapter`` writes them for Predict *and* for
Evaluate (``evaluate_model`` runs ``predict_items``, whose ``_update_predictions_metadata`` sets
``metadata.user.model`` and ``metadata.system.model``): the annotation alone cannot tell them
apart. The rule (``nodes.data_split.assign.ground_truth_metadata``): on an item entering a subset
for the first time every prediction is a reviewed pre-annotation and becomes ground truth; on an
item already in a subset a prediction stays a prediction unless a reviewer approved that
annotation (``metadata.system.status == "approved"``).
"""

from __future__ import annotations

import copy
import uuid

import dtlpy as dl
import pytest

import main
from emulator import RecordingProgress
from nodes.compare_models.records import annotation_record, annotation_tables
from nodes.data_split import SplitConfig, ground_truth_metadata, subset_for_item

CONFIG = {
    "groups": [
        {"name": "train", "distribution": 80},
        {"name": "validation", "distribution": 10},
        {"name": "test", "distribution": 10},
    ],
    "itemMetadata": True,
}


class _Adapter(dl.BaseModelAdapter):
    def load(self, local_path, **kwargs):  # nothing to load: only the prediction bookkeeping is used
        pass


@pytest.fixture
def models(platform, project, dataset):
    """Two models as Compare Models sees them: the previous one (also the pre-annotating one) and a new one."""
    previous = platform.create_model(project, f"previous-{uuid.uuid4().hex[:6]}", dataset=dataset)
    new = platform.create_model(project, f"new-{uuid.uuid4().hex[:6]}", dataset=dataset)
    platform.reset_counts()
    return previous, new


def new_item(platform, dataset, tags=None) -> dl.Item:
    metadata = {"user": {}}
    if tags is not None:
        metadata["system"] = {"tags": copy.deepcopy(tags)}
    [item_id] = platform.add_items(dataset, [{"name": f"{uuid.uuid4().hex}.jpg", "metadata": metadata}])
    return dataset.items.get(item_id=item_id)


def ground_truth(item, boxes) -> None:
    builder = item.annotations.builder()
    for top in boxes:
        builder.add(annotation_definition=dl.Box(top=top, left=1, bottom=top + 9, right=10, label="cat"))
    assert len(item.annotations.upload(builder)) == len(boxes)


def predict(model, item, boxes) -> list[str]:
    """Upload predictions exactly as dtlpy's BaseModelAdapter.predict_items does (Predict and Evaluate alike)."""
    adapter = _Adapter()
    adapter.model_entity = model
    builder = item.annotations.builder()
    for top in boxes:
        builder.add(
            annotation_definition=dl.Box(top=top, left=1, bottom=top + 9, right=10, label="cat"),
            model_info={"name": model.name, "model_id": model.id, "confidence": 0.7},
        )
    adapter._update_predictions_metadata(item, builder)
    uploaded = item.annotations.upload(builder)
    assert len(uploaded) == len(boxes)
    return [a.id for a in uploaded]


def annotations_of(platform, dataset, item_id) -> dict[str, dict]:
    return {a["id"]: a for a in platform.annotations_json(dataset.id) if a["itemId"] == item_id}


def model_of(annotation: dict):
    metadata = annotation.get("metadata") or {}
    return (metadata.get("user") or {}).get("model"), (metadata.get("system") or {}).get("model")


def run(platform, project, item, config=CONFIG):
    context = platform.make_context(config, project=project)
    progress = RecordingProgress()
    platform.reset_counts()
    out = main.ServiceRunner().data_split(item=item, progress=progress, context=context)
    return out, progress


def test_predict_and_evaluate_predictions_carry_the_same_metadata(platform, dataset, models):
    """The evidence: dtlpy writes one shape for every prediction, so the annotation cannot tell."""
    previous, _ = models
    item = new_item(platform, dataset)
    [annotation_id] = predict(previous, item, [1])
    user_model, system_model = model_of(annotations_of(platform, dataset, item.id)[annotation_id])
    assert user_model == {"name": previous.name, "model_id": previous.id, "confidence": 0.7}
    assert system_model == {"name": previous.name, "model_id": previous.id, "confidence": 0.7}


def test_first_routing_turns_the_reviewed_pre_annotations_into_ground_truth(platform, project, dataset, models):
    previous, _ = models
    item = new_item(platform, dataset)
    ground_truth(item, [40])  # drawn by the annotator
    pre = predict(previous, item, [1, 20])  # Predict's pre-annotations the annotator kept

    _, progress = run(platform, project, item)

    assert progress.actions == [subset_for_item(item.id, SplitConfig.from_node_config(CONFIG))]
    after = annotations_of(platform, dataset, item.id)
    assert len(after) == 3
    assert all(model_of(a) == (None, None) for a in after.values())  # all ground truth now
    assert all(after[i]["metadata"]["system"].get("automated") is True for i in pre)  # nothing else touched
    assert platform.request_counts["PUT /annotations/{id}"] == 2


def test_a_test_item_re_entering_keeps_both_models_evaluate_predictions(platform, project, dataset, models):
    previous, new = models
    item = new_item(platform, dataset, tags={"test": True})
    ground_truth(item, [1, 30])
    evaluated = predict(previous, item, [1, 50]) + predict(new, item, [1, 30])  # both models' Evaluate
    before = annotations_of(platform, dataset, item.id)
    records = [annotation_record(a) for a in before.values()]

    out, progress = run(platform, project, item)

    assert progress.actions == ["test"]
    assert platform.write_count() == 0  # not one annotation or item write
    after = annotations_of(platform, dataset, item.id)
    assert after == before
    for annotation_id in evaluated:
        user_model, system_model = model_of(after[annotation_id])
        assert user_model["model_id"] in (previous.id, new.id)
        assert system_model["model_id"] == user_model["model_id"]
    # what the next Compare Models sees is exactly what it saw before: 2 ground truth, 2 + 2 predictions
    tables = annotation_tables([annotation_record(a) for a in after.values()], previous.id, new.id)["box"]
    assert (len(tables.ground_truth), len(tables.previous), len(tables.new)) == (2, 2, 2)
    assert [annotation_record(a) for a in after.values()] == records
    assert out.metadata["system"]["tags"] == {"test": True}


def test_on_re_entry_only_an_annotation_a_reviewer_approved_becomes_ground_truth(platform, project, dataset, models):
    previous, new = models
    item = new_item(platform, dataset, tags={"test": True})
    ground_truth(item, [1])
    [approved, left] = predict(previous, item, [10, 20])  # re-predicted, then reviewed
    evaluated = predict(new, item, [1])
    item.annotations.get(annotation_id=approved).update_status(dl.AnnotationStatus.APPROVED)

    run(platform, project, item)

    after = annotations_of(platform, dataset, item.id)
    assert model_of(after[approved]) == (None, None)
    assert after[approved]["metadata"]["system"]["status"] == "approved"
    assert model_of(after[left])[0]["model_id"] == previous.id
    assert model_of(after[evaluated[0]])[0]["model_id"] == new.id
    assert platform.request_counts["PUT /annotations/{id}"] == 1
    assert "PATCH /items/{id}" not in platform.request_counts


def test_the_round_trip_pre_annotation_then_evaluate_then_re_entry(platform, project, dataset, models):
    """Predict → review → Data Split → Evaluate of both models on the test subset → the item comes back."""
    previous, new = models
    config = {**CONFIG, "groups": [{"name": "train", "distribution": 0}, {"name": "test", "distribution": 100}]}
    item = new_item(platform, dataset)
    predict(previous, item, [1, 20])
    run(platform, project, item, config)  # first routing: the reviewed pre-annotations are ground truth
    evaluated = predict(previous, item, [1]) + predict(new, item, [20, 40])

    _, progress = run(platform, project, dataset.items.get(item_id=item.id), config)

    assert progress.actions == ["test"]
    after = annotations_of(platform, dataset, item.id)
    tables = annotation_tables([annotation_record(a) for a in after.values()], previous.id, new.id)["box"]
    assert (len(tables.ground_truth), len(tables.previous), len(tables.new)) == (2, 1, 2)
    assert {i for i, a in after.items() if model_of(a)[0] is not None} == set(evaluated)


def test_an_item_tagged_with_a_non_true_value_is_not_in_a_subset(platform, project, dataset, models):
    """``{"test": 1}`` is not membership: the item is routed for the first time, so its predictions
    are reviewed pre-annotations; a ``{"train": 1}`` routed to train is written as ``true``."""
    previous, _ = models
    config = {**CONFIG, "groups": [{"name": "train", "distribution": 100}, {"name": "test", "distribution": 0}]}
    item = new_item(platform, dataset, tags={"train": 1, "test": "true"})
    predict(previous, item, [1])

    _, progress = run(platform, project, item, config)

    assert progress.actions == ["train"]
    tags = platform.get_json("items", item.id)["metadata"]["system"]["tags"]
    assert {k: v for k, v in tags.items() if v is not None} == {"train": True, "test": "true"}  # null is absent
    assert tags["train"] is True
    assert all(model_of(a) == (None, None) for a in annotations_of(platform, dataset, item.id).values())


@pytest.mark.parametrize(
    ("metadata", "in_subset", "expected"),
    [
        ({"user": {"model": {"name": "m"}}}, False, {"user": {}}),
        ({"system": {"model": {"name": "m"}, "automated": True}}, False, {"system": {"automated": True}}),
        ({"user": {"model": {"name": "m"}}}, True, None),
        ({"user": {"model": {"name": "m"}}, "system": {"status": "issue"}}, True, None),
        (
            {"user": {"model": {"name": "m"}}, "system": {"status": "approved"}},
            True,
            {"user": {}, "system": {"status": "approved"}},
        ),
        ({"user": {"note": 1}, "system": {"status": "approved"}}, True, None),  # ground truth already
        ({"user": {"note": 1}}, False, None),
        (None, False, None),
    ],
)
def test_ground_truth_metadata_rule(metadata, in_subset, expected):
    original = copy.deepcopy(metadata)
    assert ground_truth_metadata(metadata, item_in_subset=in_subset) == expected
    assert metadata == original
