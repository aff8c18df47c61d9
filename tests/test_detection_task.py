"""The demo's detection task without a platform: registration and option defaults, the run's data,
box scoring (AP@0.5 and COCO AP@[.5:.95] with per-label curves) and the test-scene picture."""

from __future__ import annotations

import numpy as np

from demo.cli import build_parser
from demo.detection.task import DetectionTask, score_detections
from demo.options import DemoOptions
from demo.tasks import TASK_TARGET_SECONDS, get_task


def test_registered_with_its_own_sizes_and_target():
    assert get_task("detection").name == "detection"
    options = DemoOptions.from_args(build_parser().parse_args(["--task", "detection"]))
    assert (options.items, options.initial, options.arrivals, options.budget, options.study_seeds) == (
        240,
        40,
        60,
        20,
        0,
    )
    given = DemoOptions.from_args(build_parser().parse_args(["--task", "detection", "--items", "300", "--budget", "5"]))
    assert (given.items, given.budget, given.initial) == (300, 5, 40)
    default = DemoOptions.from_args(build_parser().parse_args([]))
    assert (default.task, default.items, default.study_seeds) == ("classification", 1000, 10)
    assert TASK_TARGET_SECONDS["detection"] == 180


def test_load_splits_scenes_into_test_initial_and_arrivals():
    data = DetectionTask().load(items=60, seed=3, test_fraction=0.2, initial=10, rounds=2, arrivals=15)
    assert len(data.test) == 12 and all(n.startswith("scene_test_") for n in data.test)
    assert len(data.initial) == 10 and [len(a) for a in data.arrivals] == [15, 15]
    train_side = set(data.initial).union(*data.arrivals)
    assert not train_side & set(data.test) and all(n.startswith("scene_train_") for n in train_side)
    for name in data.names:
        assert data.images[name].shape == (96, 96)
        for label, (left, top, right, bottom) in data.truth[name]:
            assert label in DetectionTask.labels and 0 <= left < right <= 96 and 0 <= top < bottom <= 96
    again = DetectionTask().load(items=60, seed=3, test_fraction=0.2, initial=10, rounds=2, arrivals=15)
    assert again.initial == data.initial and again.truth == data.truth


def test_box_scores_and_curves():
    truth = {"a": [("1", [0, 0, 10, 10]), ("2", [20, 20, 30, 30])], "b": [("1", [5, 5, 15, 15])]}
    perfect = {
        name: [
            {"label": label, "confidence": 0.9, "left": b[0], "top": b[1], "right": b[2], "bottom": b[3]}
            for label, b in boxes
        ]
        for name, boxes in truth.items()
    }
    score = score_detections(["a", "b"], perfect, truth)
    assert (score.primary, score.mean_ap) == (1.0, 1.0) and set(score.curves) == {"1", "2"}
    shifted = {  # IoU 0.68 with its box: a hit at 0.5, a miss from 0.7 on
        "a": [{"label": "1", "confidence": 0.9, "left": 0, "top": 0, "right": 10, "bottom": 10}],
        "b": [{"label": "1", "confidence": 0.8, "left": 7, "top": 5, "right": 17, "bottom": 15}],
    }
    partial = score_detections(["a", "b"], shifted, truth)
    assert partial.per_label_ap["2"] == 0.0 and partial.per_label_ap["1"] == 1.0
    assert partial.mean_ap < partial.primary == 0.5
    empty = score_detections(["a"], {}, truth)
    assert (empty.primary, empty.mean_ap) == (0.0, 0.0)


def test_figure_of_both_models(tmp_path):
    task = DetectionTask()
    data = task.load(items=30, seed=1, test_fraction=0.2, initial=5, rounds=1, arrivals=5)

    class Model:
        def __init__(self, model_id):
            self.id, self.name = model_id, f"model-{model_id}"

    for model_id in ("p", "n"):
        task.detections[model_id] = {
            name: [
                {"label": label, "confidence": 0.9, "left": b[0], "top": b[1], "right": b[2], "bottom": b[3]}
                for label, b in data.truth[name]
            ]
            for name in data.test
        }
    path = task.figure(Model("p"), Model("n"), data, str(tmp_path / "scenes.png"))
    assert path and (tmp_path / "scenes.png").stat().st_size > 1000
    assert task.figure(Model("p"), Model("unscored"), data, str(tmp_path / "x.png")) is None
    assert np.isfinite((tmp_path / "scenes.png").stat().st_size)
