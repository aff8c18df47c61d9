"""The classification task of the demo (the default): scikit-learn's 8x8 digits as PNG items,
the digits classifier published as a model app (``demo/model_app/dataloop.json``), an annotator
who replaces the predictions by one class annotation with the true digit, and the top-3 class
predictions scored on the fixed test items with ``nodes.metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from demo.data import LABELS, load_digits_images, plan_pools
from demo.task_data import ModelScore, TaskData

MODEL_CONFIGURATION = {"C": 1.0, "max_iter": 300, "batch_size": 256}


def split_arrivals(pool: Sequence[str], rounds: int, per_round: int) -> tuple[tuple[str, ...], ...]:
    """The pool cut into ``rounds`` consecutive batches of new raw items, each at most ``per_round``
    and at most an equal share of the pool.

    Examples
    --------
    >>> split_arrivals(list("abcdefg"), 2, 10)
    (('a', 'b', 'c'), ('d', 'e', 'f'))
    >>> split_arrivals(list("abcdefg"), 2, 2)
    (('a', 'b'), ('c', 'd'))
    """
    size = min(per_round, len(pool) // rounds)
    return tuple(tuple(pool[r * size : (r + 1) * size]) for r in range(rounds))


def top_k_records(probabilities: np.ndarray, item_ids: list[str], labels: list[str], k: int = 3) -> pd.DataFrame:
    """The prediction records a model adapter uploads: the ``k`` most likely labels per item.

    Examples
    --------
    >>> top_k_records(np.array([[0.7, 0.2, 0.1]]), ["i1"], ["a", "b", "c"], k=2)["label"].tolist()
    ['a', 'b']
    """
    from demo.adapter import top_k_indices

    rows = [
        (item_id, labels[j], float(row[j]))
        for item_id, row in zip(item_ids, probabilities, strict=True)
        for j in top_k_indices(row, k)
    ]
    return pd.DataFrame(rows, columns=["item_id", "label", "confidence"])


def score_probabilities(
    probabilities: np.ndarray, names: list[str], labels: list[str], truth: Mapping[str, str]
) -> ModelScore:
    """Accuracy (top-1) and per-label AP (``nodes.metrics``, every point, as Compare Models) of the
    top-3 predictions a model uploads, with each label's precision-recall curve.

    Examples
    --------
    >>> s = score_probabilities(np.array([[.9, .1], [.2, .8]]), ["x", "y"], ["0", "1"], {"x": "0", "y": "1"})
    >>> s.primary, s.mean_ap
    (1.0, 1.0)
    """
    from demo.adapter import TOP_K
    from nodes import metrics

    predictions = top_k_records(probabilities, names, labels, TOP_K)
    ground_truth = pd.DataFrame({"item_id": names, "label": [truth[n] for n in names]})
    evaluation = metrics.evaluate_classification(ground_truth, predictions, interpolation="every_point")
    accuracy = float(
        np.mean([labels[int(j)] == truth[n] for n, j in zip(names, probabilities.argmax(axis=1), strict=True)])
    )
    curves = {}
    for label in labels:
        try:
            curve = evaluation.curve(label)
        except ValueError:
            continue
        curves[label] = (np.r_[0.0, curve.recall], np.r_[curve.precision[:1], curve.precision])
    mean_ap = float(evaluation.mean_ap)
    per_label = {str(k): float(v) for k, v in evaluation.per_label["ap"].to_dict().items()}
    return ModelScore(accuracy, 0.0 if math.isnan(mean_ap) else mean_ap, per_label, curves)


class ClassificationTask:
    """Digit classification (see the module docstring); the demo's default task."""

    name = "classification"
    labels = LABELS
    model_app_manifest = "demo/model_app/dataloop.json"
    dpk_model_name = "digits-classifier"
    model_configuration = MODEL_CONFIGURATION
    metric_names = ("accuracy", "mAP")
    gate_config: Mapping = {}

    def __init__(self) -> None:
        self.image_cache: dict[str, np.ndarray] = {}

    def load(self, items: int, seed: int, test_fraction: float, initial: int, rounds: int, arrivals: int) -> TaskData:
        data = load_digits_images(items, seed=seed)
        plan = plan_pools(items, seed=seed, test_fraction=test_fraction, initial_size=initial)
        names = tuple(data.names)
        pool = [names[i] for i in plan.pool]
        self.image_cache.update(zip(data.names, data.images, strict=True))
        return TaskData(
            names=names,
            images=dict(zip(names, data.images, strict=True)),
            truth=dict(zip(names, data.labels, strict=True)),
            test=tuple(names[i] for i in plan.test),
            initial=tuple(names[i] for i in plan.initial),
            arrivals=split_arrivals(pool, rounds, arrivals),
        )

    def annotate(self, item, truth, replace: bool = True) -> None:
        """Replace the item's predictions by its true class (1 bulk delete, with ``replace``, + 1 upload)."""
        import dtlpy as dl

        if replace:
            self._delete_predictions(item)
        builder = item.annotations.builder()
        builder.add(annotation_definition=dl.Classification(label=str(truth)))
        if not item.annotations.upload(builder):
            raise RuntimeError(f"labelling item {item.id} failed (dtlpy logged the error above)")

    @staticmethod
    def _delete_predictions(item) -> None:
        import dtlpy as dl

        predictions = dl.Filters(resource=dl.FiltersResource.ANNOTATION)
        predictions.add(field="metadata.user.model", values=True, operator=dl.FiltersOperations.EXISTS)
        item.annotations.delete(filters=predictions)

    def score(self, model, data: TaskData) -> ModelScore:
        """The model's weights (downloaded from the platform) on the fixed test items, in memory."""
        from demo.adapter import DigitsAdapter

        adapter = DigitsAdapter(model_entity=model, image_cache=self.image_cache)
        names = list(data.test)
        probabilities = adapter.predict_proba([data.images[n] for n in names])
        return score_probabilities(probabilities, names, list(model.labels), data.truth)
