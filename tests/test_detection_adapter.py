"""The detection model app on the local platform: ``demo/model_app_detection/dataloop.json`` published
and installed, ``model.train()`` runs ``DetectorAdapter`` through dtlpy's ``train_model``,
``model.predict(item_ids)`` through ``predict_items`` uploads boxes with ``model_info`` and a top-3
class-score vector, and those boxes reach AP@0.5 above a floor on an easy seed
(``nodes.metrics.evaluate_detections``); ``model.evaluate`` runs ``evaluate_model``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import dtlpy as dl
import numpy as np
import pandas as pd
import pytest

from demo.data import encode_png
from demo.detection.adapter import detection_records, read_subset, top_scores, write_subset
from demo.detection.data import LABELS, make_scenes
from demo.detection.detector import Detections
from emulator import LocalPlatform, make_labels
from nodes.common.defaults import load_subset_filter
from nodes.metrics import evaluate_detections
from nodes.select_for_labeling.predictions import predictions_from_annotations
from nodes.select_for_labeling.scores import score_items

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = 40, 12


def test_top_scores_and_records_are_what_the_gate_reads():
    found = Detections(
        np.array([[0.0, 0, 12, 12], [20, 20, 40, 40]]),
        ("3", "8"),
        np.array([0.9, 0.4]),
        np.array([[0.0, 0, 0, 0.9, 0, 0, 0, 0, 0.05, 0], [0.1, 0, 0, 0.3, 0, 0, 0, 0, 0.4, 0.15]]),
    )
    records = detection_records(found)
    assert [r["scores"] for r in records] == [[0.9, 0.05, 0.0], [0.4, 0.3, 0.15]]
    assert all(r["type"] == "box" and r["scores"][0] == r["confidence"] for r in records)
    scores = score_items({"i": records}, ["i"], "margin", aggregation="max", n_classes=len(LABELS))
    # the 0.4 box: q1 - q2 = 0.4 - 0.3 -> margin score 0.9
    assert scores.scores.round(6).tolist() == [0.9] and scores.strategy_used == "margin"
    assert top_scores(np.array([0.2])) == [0.2]


def test_subset_files_round_trip(tmp_path):
    scenes = make_scenes(4, seed=3)
    boxes = [list(zip(labels, b.tolist(), strict=True)) for b, labels in zip(scenes.boxes, scenes.labels, strict=True)]
    write_subset(str(tmp_path / "train.npz"), list(scenes.images), boxes)
    images, read_boxes, read_labels = read_subset(str(tmp_path / "train.npz"))
    assert np.array_equal(images, scenes.images)
    assert all(np.array_equal(a, b) for a, b in zip(read_boxes, scenes.boxes, strict=True))
    assert read_labels == list(scenes.labels)


def publish_detection_app(project, folder: Path):
    """Publish ``demo/model_app_detection/dataloop.json`` (code: ``demo`` and ``nodes`` copied into
    ``folder``) and install it in ``project``; returns the app. The patch version is the project's
    (the platform holds one publish per name and version: 409 otherwise)."""
    for package in ("demo", "nodes"):
        shutil.copytree(ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    manifest_path = folder / "demo/model_app_detection/dataloop.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["version"] = f"0.1.{int(project.id[-6:], 16)}"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    cwd = Path.cwd()
    try:  # dtlpy packs into <cwd>/.dataloop: keep it in the temporary folder
        os.chdir(folder)
        dpk = project.dpks.publish(
            manifest_filepath=str(folder / "demo/model_app_detection/dataloop.json"), local_path=str(folder)
        )
    finally:
        os.chdir(cwd)
    return project.apps.install(dpk=dpk)


@pytest.fixture(scope="module")
def detection_app(_platform_session: LocalPlatform, tmp_path_factory):
    """A project with the detection model app installed and scenes with true boxes tagged train / test."""
    project = dl.projects.create(project_name="detection-models")
    dataset = project.datasets.create(dataset_name="scenes", labels=make_labels(LABELS))
    train = make_scenes(N_TRAIN, seed=11, source="train", max_objects=3, empty_fraction=0.05)
    test = make_scenes(N_TEST, seed=12, source="test", max_objects=3, empty_fraction=0.0)
    items, truth = {"train": [], "test": []}, {}
    for subset, scenes in (("train", train), ("test", test)):
        for name, image, boxes, labels in zip(scenes.names, scenes.images, scenes.boxes, scenes.labels, strict=True):
            buffer = io.BytesIO(encode_png(image))
            buffer.name = name
            item = dataset.items.upload(local_path=buffer)
            if subset == "train" and len(boxes):
                builder = item.annotations.builder()
                for box, label in zip(boxes, labels, strict=True):
                    builder.add(
                        annotation_definition=dl.Box(left=box[0], top=box[1], right=box[2], bottom=box[3], label=label)
                    )
                item.annotations.upload(builder)
            item.metadata.setdefault("system", {})["tags"] = {subset: True}
            items[subset].append(item.update(system_metadata=True))
            truth[item.id] = (boxes, labels)
    app = publish_detection_app(project, tmp_path_factory.mktemp("detection-app"))
    return {"project": project, "dataset": dataset, "items": items, "truth": truth, "app": app}


def test_train_then_predict_uploads_boxes_that_find_the_digits(platform, detection_app):
    engine = platform.store.engine
    model = detection_app["project"].models.create(
        model_name="detector-v1",
        dataset_id=detection_app["dataset"].id,
        labels=list(LABELS),
        app=detection_app["app"],
        dpk_model_name="digits-detector",
        status="created",
        train_filter=dl.Filters(custom_filter=load_subset_filter("train")),
        validation_filter=dl.Filters(custom_filter=load_subset_filter("validation")),
    )
    training = model.train()
    assert engine.wait_idle(300)
    training = training.wait()
    assert training.latest_status["status"] == "success", engine.logs.get(training.id)
    model = dl.models.get(model_id=model.id)
    assert model.status == "trained" and any(a.filename.endswith("/weights.npz") for a in model.artifacts.list())

    model.deploy()
    model = dl.models.get(model_id=model.id)
    targets = [item.id for item in detection_app["items"]["test"]]
    prediction = model.predict(item_ids=targets)
    assert engine.wait_idle(300)
    prediction = prediction.wait()
    assert prediction.latest_status["status"] == "success", engine.logs.get(prediction.id)
    assert prediction.function_name == "predict_items"

    annotations = [a for item_id in targets for a in dl.items.get(item_id=item_id).annotations.list()]
    assert annotations and all(a.type == "box" for a in annotations)
    for annotation in annotations:
        meta = annotation.metadata["user"]["model"]
        assert meta["model_id"] == model.id and meta["name"] == "detector-v1"
        assert 0 < meta["confidence"] <= 1 and len(meta["scores"]) == 3
        assert meta["scores"][0] == pytest.approx(meta["confidence"]) and meta["scores"] == sorted(meta["scores"])[::-1]
        assert annotation.label in LABELS and 0 <= annotation.left < annotation.right <= 96
    # the gate's reader accepts them as they are
    frame = predictions_from_annotations([a.to_json() for a in annotations], model_id=model.id)
    assert len(frame) == len(annotations) and set(frame["type"]) == {"box"}

    truth = detection_app["truth"]
    ground_truth = pd.DataFrame(
        [
            {"item_id": i, "label": label, "left": b[0], "top": b[1], "right": b[2], "bottom": b[3]}
            for i in targets
            for b, label in zip(*truth[i], strict=True)
        ]
    )
    predicted = pd.DataFrame(
        [
            {
                "item_id": a.item_id,
                "label": a.label,
                "left": a.left,
                "top": a.top,
                "right": a.right,
                "bottom": a.bottom,
                "confidence": a.metadata["user"]["model"]["confidence"],
            }
            for a in annotations
        ]
    )
    assert evaluate_detections(ground_truth, predicted, 0.5).mean_ap >= 0.3

    evaluation = model.evaluate(
        dataset_id=detection_app["dataset"].id, filters=dl.Filters(custom_filter=load_subset_filter("test"))
    )
    assert engine.wait_idle(300)
    evaluation = evaluation.wait()
    assert evaluation.latest_status["status"] == "success", engine.logs.get(evaluation.id)
    assert evaluation.function_name == "evaluate_model"
