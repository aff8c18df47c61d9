"""The demo's CPU detector: windows, NMS, training data, and that it learns boxes on an easy seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demo.detection.data import LABELS, make_scenes
from demo.detection.detector import (
    BACKGROUND,
    NEGATIVE_IOU,
    detect,
    fit_detector,
    non_max_suppression,
    training_set,
    window_grid,
)
from nodes.metrics import box_iou, evaluate_detections


def test_windows_cover_the_scene_at_every_size_and_stay_inside():
    grid = window_grid(np.zeros((96, 96), dtype=np.uint8))
    sides = np.unique(np.round(grid.boxes[:, 2] - grid.boxes[:, 0]))
    assert sides.tolist() == [12, 16, 20, 24, 28, 32]
    assert (grid.boxes[:, :2] >= 0).all() and (grid.boxes[:, 2:] <= 96).all()
    # every box of the scene generator's sizes is found by some window with IoU >= 0.6
    scenes = make_scenes(20, seed=2, empty_fraction=0.0)
    best = [box_iou(b, grid.boxes).max(axis=1) for b in scenes.boxes]
    assert np.concatenate(best).min() >= 0.6


def test_features_of_selected_windows_equal_those_of_all_windows():
    image = make_scenes(1, seed=5, empty_fraction=0.0).images[0]
    grid = window_grid(image)
    which = np.array([0, 7, len(grid.boxes) - 1, 400])
    assert np.allclose(grid.features(which), grid.features()[which])


def test_nms_keeps_the_best_of_overlapping_boxes_only():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40], [31, 30, 41, 40]], dtype=float)
    kept = non_max_suppression(boxes, np.array([0.5, 0.9, 0.8, 0.2]))
    assert kept.tolist() == [1, 2]
    assert non_max_suppression(np.zeros((0, 4)), np.zeros(0)).tolist() == []


def test_training_set_has_every_box_and_background_away_from_boxes():
    scenes = make_scenes(10, seed=3)
    features, targets = training_set(scenes.images, list(scenes.boxes), list(scenes.labels), seed=0)
    assert len(features) == len(targets)
    positives = targets[targets != BACKGROUND]
    assert len(positives) == 3 * scenes.n_objects  # the exact crop and two jittered copies
    assert (targets == BACKGROUND).sum() >= 30 * 10
    assert NEGATIVE_IOU < 0.5


def _ap(detector, scenes) -> float:
    gt, rows = [], []
    for i, (image, boxes, labels) in enumerate(zip(scenes.images, scenes.boxes, scenes.labels, strict=True)):
        gt += [
            dict(item_id=i, label=lab, left=b[0], top=b[1], right=b[2], bottom=b[3])
            for b, lab in zip(boxes, labels, strict=True)
        ]
        found = detect(detector, image)
        rows += [
            dict(item_id=i, label=lab, left=b[0], top=b[1], right=b[2], bottom=b[3], confidence=c)
            for b, lab, c in zip(found.boxes, found.labels, found.confidences, strict=True)
        ]
    return evaluate_detections(pd.DataFrame(gt), pd.DataFrame(rows), 0.5).mean_ap


def test_detector_learns_and_more_labels_help():
    pool = make_scenes(160, seed=1, source="train")
    test = make_scenes(40, seed=9, source="test")
    few = fit_detector(pool.images[:20], list(pool.boxes[:20]), list(pool.labels[:20]), LABELS)
    many = fit_detector(pool.images, list(pool.boxes), list(pool.labels), LABELS)
    ap_few, ap_many = _ap(few, test), _ap(many, test)
    assert ap_many >= 0.5  # far above chance on boxes of 10 classes
    assert ap_many > ap_few


def test_detections_carry_boxes_confidences_and_class_scores():
    pool = make_scenes(40, seed=1)
    detector = fit_detector(pool.images, list(pool.boxes), list(pool.labels), LABELS)
    found = detect(detector, make_scenes(3, seed=7, empty_fraction=0.0).images[0])
    assert len(found.labels) > 0
    assert found.class_scores.shape == (len(found.labels), len(LABELS))
    assert np.all((found.confidences > 0) & (found.confidences <= 1))
    best = [LABELS[k] for k in found.class_scores.argmax(axis=1)]
    assert best == list(found.labels)
    assert np.allclose(found.class_scores.max(axis=1), found.confidences)
    assert np.all(np.diff(found.confidences) <= 0)


@pytest.mark.parametrize("image", [np.zeros((8, 8), dtype=np.uint8), np.zeros((96, 96), dtype=np.uint8)])
def test_blank_or_tiny_images_give_no_detection_without_error(image):
    pool = make_scenes(20, seed=1)
    detector = fit_detector(pool.images, list(pool.boxes), list(pool.labels), LABELS)
    found = detect(detector, image)
    assert found.boxes.shape[1] == 4
    assert len(found.labels) <= 20


def test_cached_windows_and_the_softmax_path_give_the_same_detections_as_predict_proba():
    from demo.detection.detector import class_probabilities, scene_windows

    scenes = make_scenes(12, seed=8)
    windows = [scene_windows(image) for image in scenes.images]
    direct = fit_detector(scenes.images, list(scenes.boxes), list(scenes.labels), LABELS)
    cached = fit_detector(scenes.images, list(scenes.boxes), list(scenes.labels), LABELS, windows=windows)
    assert np.allclose(direct.classifier.coef_, cached.classifier.coef_, atol=1e-4)
    features = windows[3].features.astype(np.float64)
    order = [list(direct.classifier.classes_).index(label) for label in LABELS]
    assert np.allclose(class_probabilities(direct, features), direct.classifier.predict_proba(features)[:, order])
    a, b = detect(direct, scenes.images[3]), detect(direct, None, windows=windows[3])
    assert (
        a.labels == b.labels and np.allclose(a.boxes, b.boxes) and np.allclose(a.confidences, b.confidences, atol=1e-5)
    )
