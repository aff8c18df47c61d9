"""The demo's CPU detector (:mod:`demo.detection.detector`) wrapped as a Dataloop model adapter.

``DetectorAdapter`` implements ``load`` / ``save`` / ``train`` / ``predict`` / ``prepare_item_func``
as :class:`demo.adapter.DigitsAdapter` does and lets dtlpy's own ``train_model``,
``evaluate_model`` and ``predict_items`` do the platform work. ``predict`` uploads each detected
box as a ``dl.Box`` with ``model_info`` (name, model id, confidence) and the box's three largest
class probabilities, largest first, in ``metadata.user.model.scores`` (the class-score vector the
Uncertainty Gate reads). ``prepare_data`` writes each subset's images and ground-truth boxes to
``<subset>.npz``; the artifact ``weights.npz`` is loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import logging
import os

import dtlpy as dl
import numpy as np

from demo.adapter import ImageAdapter, classifier_from_arrays, classifier_to_arrays, list_items
from demo.detection.detector import Detections, Detector, detect, fit_detector

logger = logging.getLogger(__name__)

DEFAULT_CONFIGURATION = {"C": 1.0, "max_iter": 300, "batch_size": 64, "min_confidence": 0.25}
TOP_K_SCORES = 3  # class probabilities kept in each box's metadata.user.model.scores


def top_scores(class_scores: np.ndarray, k: int = TOP_K_SCORES) -> list[float]:
    """A box's ``k`` largest class probabilities, largest first (the uploaded class-score vector).

    Examples
    --------
    >>> top_scores(np.array([0.1, 0.6, 0.05, 0.2]))
    [0.6, 0.2, 0.1]
    """
    ordered = np.sort(np.clip(np.asarray(class_scores, dtype=float), 0.0, 1.0))[::-1]
    return [float(v) for v in ordered[:k]]


def detection_records(found: Detections) -> list[dict]:
    """One record per detected box: ``label``, ``confidence``, ``type`` ``"box"``, top-3 ``scores``
    and the box (``left``, ``top``, ``right``, ``bottom``): what :meth:`DetectorAdapter.predict`
    uploads, as the Uncertainty Gate reads it back.

    Examples
    --------
    >>> found = Detections(np.array([[1.0, 2, 13, 14]]), ("7",), np.array([0.8]), np.array([[0.1, 0.8]]))
    >>> detection_records(found)[0]["scores"], detection_records(found)[0]["right"]
    ([0.8, 0.1], 13.0)
    """
    return [
        {
            "label": label,
            "confidence": float(np.clip(confidence, 0.0, 1.0)),
            "type": "box",
            "scores": top_scores(scores),
            "left": float(box[0]),
            "top": float(box[1]),
            "right": float(box[2]),
            "bottom": float(box[3]),
        }
        for box, label, confidence, scores in zip(
            found.boxes, found.labels, found.confidences, found.class_scores, strict=True
        )
    ]


class DetectorAdapter(ImageAdapter):
    """Model adapter of the demo's sliding-window digit detector (load / save / train / predict).

    Parameters
    ----------
    model_entity : dl.Model, optional
        Loaded with ``load_from_model`` (artifacts downloaded) when given.
    image_cache : dict, optional
        ``file name -> uint8 image`` shared between adapters of one run.
    replace_predictions : bool
        ``True`` (dtlpy's behaviour): delete the model's earlier predictions of an item before
        uploading new ones.

    Examples
    --------
    >>> adapter = DetectorAdapter()          # doctest: +SKIP
    >>> adapter.train_model(model)           # doctest: +SKIP
    """

    # ----------------------------------------------------------------- the four methods
    def weights_from_arrays(self, arrays: dict) -> Detector:
        return Detector(classifier_from_arrays(arrays), tuple(self.model_entity.labels))

    def weights_to_arrays(self) -> dict[str, np.ndarray]:
        return classifier_to_arrays(self.model.classifier)

    def train(self, data_path: str, output_path: str, **kwargs) -> None:
        """Fit the detector on ``data_path/train.npz`` (images and their ground-truth boxes)."""
        config = {**DEFAULT_CONFIGURATION, **dict(self.configuration)}
        images, boxes, labels = read_subset(os.path.join(data_path, "train.npz"))
        self.model = fit_detector(
            images, boxes, labels, tuple(self.model_entity.labels), c=config["C"], max_iter=config["max_iter"]
        )
        callback = kwargs.get("on_epoch_end_callback")
        if callback is not None:
            callback(0, 1)
        logger.info("trained %s on %d images, %d boxes", self.model_entity.name, len(images), sum(map(len, boxes)))

    def predict(self, batch: list[np.ndarray], **kwargs) -> list[dl.AnnotationCollection]:
        """Each detected box as a ``dl.Box`` with its confidence and top-3 class-score vector."""
        collections = []
        for found in self.detect_batch(batch):
            collection = dl.AnnotationCollection()
            for record in detection_records(found):
                collection.add(
                    annotation_definition=dl.Box(
                        left=record["left"],
                        top=record["top"],
                        right=record["right"],
                        bottom=record["bottom"],
                        label=record["label"],
                    ),
                    model_info={
                        "name": self.model_entity.name,
                        "model_id": self.model_entity.id,
                        "confidence": record["confidence"],
                    },
                )
                collection.annotations[-1].metadata["user"]["model"]["scores"] = record["scores"]
            collections.append(collection)
        return collections

    # ----------------------------------------------------------------- helpers
    def detect_batch(self, batch: list[np.ndarray]) -> list[Detections]:
        """The detector's boxes on each image (no platform)."""
        if self.model is None:
            raise ValueError(f"model {self.model_entity.name!r} is not trained; run train_model first")
        min_confidence = float({**DEFAULT_CONFIGURATION, **dict(self.configuration)}["min_confidence"])
        return [detect(self.model, image, min_confidence=min_confidence) for image in batch]

    # ----------------------------------------------------------------- edge: data preparation
    def prepare_data(
        self, dataset: dl.Dataset, root_path=None, data_path=None, output_path=None, overwrite=False, **kwargs
    ):
        """Fetch each subset of ``model.metadata.system.subsets`` into ``data_path/<subset>.npz``.

        Edge function. Items are listed with the subset's DQL filter (paged); images come through
        :meth:`prepare_item_func`; boxes from one paged query of the dataset's ground-truth boxes
        (annotations without model metadata). An item of the subset without a ground-truth box is
        an image with no object (all background), as the annotator left it.
        """
        root_path, data_path, output_path, subsets = self.data_folders(dataset, root_path, data_path, output_path)
        truth = ground_truth_boxes(dataset)
        for subset, dql in subsets.items():
            # by file name: the fit samples background windows in item order, so a listing order that
            # depends on when the platform created the items would change the model
            items = sorted(list_items(dataset, dql), key=lambda item: (item.name, item.id))
            if subset == "train" and not items:
                raise ValueError(f"subset {subset!r} of model {self.model_entity.name!r} has no items")
            images = [self.prepare_item_func(item) for item in items]
            write_subset(os.path.join(data_path, f"{subset}.npz"), images, [truth.get(item.id, []) for item in items])
        return root_path, data_path, output_path


def write_subset(path: str, images: list[np.ndarray], boxes: list[list[tuple[str, list[float]]]]) -> None:
    """Write images and their ``(label, [left, top, right, bottom])`` boxes to ``path`` (npz, no pickles)."""
    rows = [(index, *box) for index, scene in enumerate(boxes) for _, box in scene]
    labels = [label for scene in boxes for label, _ in scene]
    stacked = np.stack(images) if images else np.zeros((0, 1, 1), dtype=np.uint8)
    np.savez(
        path,
        images=stacked.astype(np.uint8),
        boxes=np.asarray(rows, dtype=float).reshape(-1, 5),
        labels=np.asarray(labels, dtype=str),
    )


def read_subset(path: str) -> tuple[np.ndarray, list[np.ndarray], list[tuple[str, ...]]]:
    """Images, per-image box arrays and per-image labels written by :func:`write_subset`.

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> write_subset(os.path.join(folder, "s.npz"), [np.zeros((4, 4), np.uint8)] * 2, [[("3", [0, 0, 2, 2])], []])
    >>> images, boxes, labels = read_subset(os.path.join(folder, "s.npz"))
    >>> images.shape, [b.tolist() for b in boxes], labels
    ((2, 4, 4), [[[0.0, 0.0, 2.0, 2.0]], []], [('3',), ()])
    >>> import shutil; shutil.rmtree(folder)
    """
    with np.load(path, allow_pickle=False) as data:
        images, rows, names = data["images"], data["boxes"], data["labels"]
    scene = rows[:, 0].astype(int) if len(rows) else np.zeros(0, dtype=int)
    boxes = [rows[scene == i, 1:5] for i in range(len(images))]
    labels = [tuple(str(v) for v in names[scene == i]) for i in range(len(images))]
    return images, boxes, labels


def ground_truth_boxes(dataset: dl.Dataset) -> dict[str, list[tuple[str, list[float]]]]:
    """Edge: ``item id -> [(label, [left, top, right, bottom]), ...]`` of ground-truth boxes (no model
    metadata), one paged query."""
    filters = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
    filters.add(field="type", values="box")
    filters.add(field="metadata.system.model.name", values=False, operator=dl.FiltersOperations.EXISTS)
    filters.page_size = 1000
    boxes: dict[str, list[tuple[str, list[float]]]] = {}
    for page in dataset.annotations.list(filters=filters):
        for annotation in page:
            if (annotation.metadata or {}).get("user", {}).get("model"):
                continue
            boxes.setdefault(annotation.item_id, []).append(
                (annotation.label, [annotation.left, annotation.top, annotation.right, annotation.bottom])
            )
    return boxes
