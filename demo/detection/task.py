"""The detection task of the demo (``python main.py demo --task detection``): multi-digit scenes
(:mod:`demo.detection.data`) as PNG items, the CPU detector published as a model app
(``demo/model_app_detection/dataloop.json``), an annotator who replaces the predicted boxes by the
true ones, and box AP on the fixed test scenes with ``nodes.metrics``: AP@0.5 (what Compare Models
gates on: the template's ``iou_threshold`` 0.5) and COCO's AP@[.5:.95] beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from demo.detection.data import LABELS, make_scenes
from demo.task_data import ModelScore, TaskData

MODEL_CONFIGURATION = {"C": 1.0, "max_iter": 300, "batch_size": 64, "min_confidence": 0.25}
COCO_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))  # 0.50, 0.55, ..., 0.95
BOX_COLUMNS = ["item_id", "label", "left", "top", "right", "bottom"]


def split_scenes(n_items: int, test_fraction: float) -> tuple[int, int]:
    """How many training-source and test-source scenes a run of ``n_items`` makes.

    Examples
    --------
    >>> split_scenes(200, 0.25)
    (150, 50)
    """
    n_test = max(1, round(n_items * test_fraction))
    return n_items - n_test, n_test


def truth_frame(names: Sequence[str], truth: Mapping[str, Sequence[tuple[str, Sequence[float]]]]) -> pd.DataFrame:
    """Ground-truth boxes of ``names`` in ``nodes.metrics`` form.

    Examples
    --------
    >>> truth_frame(["a"], {"a": [("3", [0, 0, 10, 10])]})["label"].tolist()
    ['3']
    """
    rows = [(name, label, *box) for name in names for label, box in truth[name]]
    return pd.DataFrame(rows, columns=BOX_COLUMNS)


def score_detections(
    names: Sequence[str],
    records: Mapping[str, Sequence[Mapping]],
    truth: Mapping[str, Sequence[tuple[str, Sequence[float]]]],
) -> ModelScore:
    """AP@0.5 (primary), COCO AP@[.5:.95] (mean AP) and each label's AP@0.5 and precision-recall
    curve of box records (``label``, ``confidence``, ``left`` … ``bottom``) on the scenes ``names``.

    Examples
    --------
    >>> truth = {"a": [("3", [0, 0, 10, 10])]}
    >>> found = {"a": [{"label": "3", "confidence": 0.9, "left": 0, "top": 0, "right": 10, "bottom": 10}]}
    >>> s = score_detections(["a"], found, truth)
    >>> s.primary, s.mean_ap
    (1.0, 1.0)
    """
    from nodes.metrics import evaluate_detections

    ground_truth = truth_frame(names, truth)
    rows = [
        (name, r["label"], r["left"], r["top"], r["right"], r["bottom"], r["confidence"])
        for name in names
        for r in records.get(name, [])
    ]
    predictions = pd.DataFrame(rows, columns=[*BOX_COLUMNS, "confidence"])
    at_half = evaluate_detections(ground_truth, predictions, 0.5)
    coco = evaluate_detections(ground_truth, predictions, list(COCO_THRESHOLDS))
    curves = {}
    for label in sorted(set(ground_truth["label"])):
        try:
            curve = at_half.curve(label)
        except ValueError:
            continue
        curves[label] = (np.r_[0.0, curve.recall], np.r_[curve.precision[:1], curve.precision])
    per_label = {str(k): float(v) for k, v in at_half.per_label["ap"].to_dict().items()}
    primary, mean_ap = float(at_half.mean_ap), float(coco.mean_ap)
    return ModelScore(
        0.0 if math.isnan(primary) else primary, 0.0 if math.isnan(mean_ap) else mean_ap, per_label, curves
    )


class DetectionTask:
    """Digit detection (see the module docstring)."""

    name = "detection"
    labels = LABELS
    model_app_manifest = "demo/model_app_detection/dataloop.json"
    dpk_model_name = "digits-detector"
    model_configuration = MODEL_CONFIGURATION
    metric_names = ("AP@0.5", "AP@[.5:.95]")
    pr_caption = (
        "Each model uploads its boxes with a confidence; the curve ranks every predicted box by confidence, a box "
        "matching a true box of its label at IoU >= 0.5 is a hit. Higher and further right is better."
    )
    #: the margin arm's gate: the node's detection defaults (docs/detection.md, benchmarks/bench_al_detection.py)
    gate_config: Mapping = {"aggregation": "max", "emptyScore": 0.0}

    def __init__(self) -> None:
        self.image_cache: dict[str, np.ndarray] = {}
        self.detections: dict[str, dict[str, list[dict]]] = {}  # model id -> test scene -> box records

    def load(self, items: int, seed: int, test_fraction: float, initial: int, rounds: int, arrivals: int) -> TaskData:
        from demo.classification import split_arrivals

        n_train, n_test = split_scenes(items, test_fraction)
        train = make_scenes(n_train, seed=seed, source="train")
        test = make_scenes(n_test, seed=seed, source="test")
        names, images, truth = [], {}, {}
        for scenes in (train, test):
            for name, image, boxes, labels in zip(
                scenes.names, scenes.images, scenes.boxes, scenes.labels, strict=True
            ):
                names.append(name)
                images[name] = image
                truth[name] = [(label, [float(v) for v in box]) for box, label in zip(boxes, labels, strict=True)]
        self.image_cache.update(images)
        order = np.random.default_rng(seed).permutation(n_train)
        train_names = [train.names[i] for i in order]
        return TaskData(
            names=tuple(names),
            images=images,
            truth=truth,
            test=tuple(test.names),
            initial=tuple(train_names[:initial]),
            arrivals=split_arrivals(train_names[initial:], rounds, arrivals),
        )

    def annotate(self, item, truth, replace: bool = True) -> None:
        """Replace the item's predicted boxes by its true boxes (1 bulk delete, with ``replace``, + 1
        upload; an empty scene gets no box)."""
        import dtlpy as dl

        if replace:
            predictions = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
            predictions.add(field="metadata.user.model", values=True, operator=dl.FiltersOperations.EXISTS)
            item.annotations.delete(filters=predictions)
        if not truth:
            return
        builder = item.annotations.builder()
        for label, (left, top, right, bottom) in truth:
            builder.add(annotation_definition=dl.Box(left=left, top=top, right=right, bottom=bottom, label=str(label)))
        if not item.annotations.upload(builder):
            raise RuntimeError(f"labelling item {item.id} failed (dtlpy logged the error above)")

    def score(self, model, data: TaskData) -> ModelScore:
        """The model's weights (downloaded from the platform) on the fixed test scenes, in memory."""
        from demo.detection.adapter import DetectorAdapter, detection_records

        adapter = DetectorAdapter(model_entity=model, image_cache=self.image_cache)
        names = list(data.test)
        found = adapter.detect_batch([data.images[n] for n in names])
        records = {name: detection_records(f) for name, f in zip(names, found, strict=True)}
        self.detections[model.id] = records
        return score_detections(names, records, data.truth)

    def figure(self, previous_model, new_model, data: TaskData, path: str, n_images: int = 4) -> str | None:
        """Edge-free: a picture of ``n_images`` test scenes with the true boxes and the boxes of the
        previous and the new model (both scored first by :meth:`score`); ``None`` when not scored."""
        from demo.detection.figures import draw_scenes

        previous = self.detections.get(getattr(previous_model, "id", None))
        new = self.detections.get(getattr(new_model, "id", None))
        if previous is None or new is None:
            return None
        names = [n for n in data.test if data.truth[n]][:n_images]
        return draw_scenes(
            [data.images[n] for n in names],
            [data.truth[n] for n in names],
            {"previous model": [previous[n] for n in names], "new model": [new[n] for n in names]},
            path,
            subtitle=f"previous: {previous_model.name}\nnew: {new_model.name}",
        )
