"""A short detection round through ``main.ServiceRunner`` on the local platform, the template's order:
the detector (model app, trained by the platform) predicts boxes on new scenes → the Uncertainty Gate
scores them with the box roll-up and records it → the annotator replaces the predictions by the
true boxes → Model Data Split tags them → Create New Model clones the model → the platform trains
and evaluates both → Compare Models decides on box AP at IoU 0.5. Asserts what was written.
"""

from __future__ import annotations

import io

import dtlpy as dl
import numpy as np
import pytest

from demo.data import encode_png
from demo.detection.data import LABELS, make_scenes
from demo.detection.task import DetectionTask
from emulator import LocalPlatform, make_labels
from nodes.common.defaults import load_subset_filter
from nodes.select_for_labeling.predictions import predictions_from_annotations
from nodes.select_for_labeling.scores import score_items
from tests.helpers import run_node
from tests.test_detection_adapter import publish_detection_app

GATE = {
    "nodeName": "Uncertainty Gate",
    "strategy": "margin",
    "threshold": 0.0,
    "aggregation": "mean",
    "emptyScore": 0.0,
}
SPLIT = {
    "name": "Model Data Split",
    "distributeEqually": False,
    "groups": [
        {"id": "g1", "name": "train", "distribution": 70},
        {"id": "g2", "name": "validation", "distribution": 10},
        {"id": "g3", "name": "test", "distribution": 20},
    ],
    "itemMetadata": True,
}


def _upload(dataset, scenes, tag=None, labelled=True):
    items, truth = [], {}
    for name, image, boxes, labels in zip(scenes.names, scenes.images, scenes.boxes, scenes.labels, strict=True):
        buffer = io.BytesIO(encode_png(image))
        buffer.name = name
        item = dataset.items.upload(local_path=buffer)
        truth[item.id] = [(label, [float(v) for v in box]) for box, label in zip(boxes, labels, strict=True)]
        if labelled:
            DetectionTask().annotate(item, truth[item.id], replace=False)
        if tag:
            item.metadata.setdefault("system", {})["tags"] = {tag: True}
            item = item.update(system_metadata=True)
        items.append(item)
    return items, truth


def _wait(platform, execution):
    assert platform.store.engine.wait_idle(300)
    execution = execution.wait()
    assert execution.latest_status["status"] == "success", platform.store.engine.logs.get(execution.id)
    return execution


@pytest.fixture(scope="module")
def world(_platform_session: LocalPlatform, tmp_path_factory):
    project = dl.projects.create(project_name="detection-round")
    dataset = project.datasets.create(dataset_name="ground-truth", labels=make_labels(LABELS))
    _upload(dataset, make_scenes(24, seed=21, source="train", max_objects=3), tag="train")
    _upload(dataset, make_scenes(8, seed=22, source="test", max_objects=3, empty_fraction=0.0), tag="test")
    new_items, truth = _upload(dataset, make_scenes(6, seed=23, source="train", max_objects=4), labelled=False)
    app = publish_detection_app(project, tmp_path_factory.mktemp("detection-round-app"))
    return {"project": project, "dataset": dataset, "app": app, "new": new_items, "truth": truth}


def test_one_detection_round_writes_boxes_records_tags_and_a_box_ap_comparison(platform, world):
    project, dataset = world["project"], world["dataset"]
    previous = project.models.create(
        model_name="detector-round-1",
        dataset_id=dataset.id,
        labels=list(LABELS),
        app=world["app"],
        dpk_model_name="digits-detector",
        status="created",
        train_filter=dl.Filters(custom_filter=load_subset_filter("train")),
        validation_filter=dl.Filters(custom_filter=load_subset_filter("validation")),
    )
    _wait(platform, previous.train())
    previous.deploy()
    previous = dl.models.get(model_id=previous.id)

    # Predict: boxes with confidence and a top-3 class-score vector
    ids = [item.id for item in world["new"]]
    _wait(platform, previous.predict(item_ids=ids))
    predicted = {i: [a.to_json() for a in dl.items.get(item_id=i).annotations.list()] for i in ids}
    boxes = [a for annotations in predicted.values() for a in annotations]
    assert boxes and {a["type"] for a in boxes} == {"box"}
    assert all(len(a["metadata"]["user"]["model"]["scores"]) == 3 for a in boxes)

    # Uncertainty Gate: the box roll-up, recorded on each item; threshold 0 sends every item to labelling
    for item_id in ids:
        context = platform.make_context(node_config={**GATE, "modelId": previous.id}, project=project)
        item, progress = run_node("score_item", item=dl.items.get(item_id=item_id), context=context)
        assert progress.actions == ["label"]
        record = platform.get_json("items", item_id)["metadata"]["user"]["activeLearning"]["selection"]
        frame = predictions_from_annotations(predicted[item_id], model_id=previous.id)
        expected = score_items(frame, [item_id], "margin", "mean", empty_score=0.0, n_classes=len(LABELS))
        assert record["score"] == pytest.approx(float(expected.scores[0]))
        # margin needs only the two largest class scores of the vector, so the gate reads no K here
        assert (record["strategy"], record["modelId"], record["fallback"]) == ("margin", previous.id, False)

    # Labeling: the annotator replaces the predictions by the true boxes; Model Data Split tags them
    tags = []
    for item_id in ids:
        item = dl.items.get(item_id=item_id)
        DetectionTask().annotate(item, world["truth"][item_id])
        written = [a.to_json() for a in item.annotations.list()]
        assert not any(a["metadata"].get("user", {}).get("model") for a in written)
        assert sorted(a["label"] for a in written) == sorted(label for label, _ in world["truth"][item_id])
        context = platform.make_context(node_config=SPLIT, project=project)
        run_node("data_split", item=item, context=context)
        stored = platform.get_json("items", item_id)["metadata"]["system"]["tags"]
        tags.append([k for k, v in stored.items() if v])
    assert all(len(t) == 1 and t[0] in {"train", "validation", "test"} for t in tags)

    # Model branch: a new version trained on the grown train subset, both evaluated, compared on box AP
    new, base = run_node("create_new_model", base_model=previous, dataset=dataset)[0]
    assert base.id == previous.id and new.id != previous.id
    _wait(platform, new.train())
    new = dl.models.get(model_id=new.id)
    test_filter = dl.Filters(custom_filter=load_subset_filter("test"))
    for model in (previous, new):
        _wait(platform, model.evaluate(dataset_id=dataset.id, filters=test_filter))
    winner, progress = run_node(
        "compare_models",
        previous_model=dl.models.get(model_id=previous.id),
        new_model=dl.models.get(model_id=new.id),
        compare_config={"precision_recall": {"iou_threshold": 0.5, "min_delta": 0}},
        dataset=dataset,
    )
    report = platform.get_json("models", new.id)["metadata"]["user"]["activeLearning"]["comparison"]
    [vote] = report["votes"]
    assert vote["name"] == "precision_recall.box"
    assert report["config"]["precision_recall"]["iou_threshold"] == 0.5
    assert 0 <= vote["previous"] <= 1 and 0 <= vote["new"] <= 1
    assert progress.actions == ["update model" if vote["won"] else "discard"]
    assert winner.id == (new.id if vote["won"] else previous.id)
    assert np.isfinite(vote["delta"])
