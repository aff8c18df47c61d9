"""Per-label AP of item-level (multi-label) classification, matching scikit-learn's step AP."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nodes.metrics.ap import PrecisionRecallCurve, _ap_rows, _PerLabelResult
from nodes.metrics.inputs import (
    CLASSIFICATION_INTERPOLATIONS,
    _check_frame,
    _check_interpolation,
    _codes,
    _float_column,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ClassificationEvaluation(_PerLabelResult):
    """Result of :func:`evaluate_classification` (immutable; ``per_label`` returns a fresh copy).

    ``per_label`` is indexed by label with columns ``ap`` (NaN without positives),
    ``n_ground_truth`` (items having the label), ``n_predictions`` (items predicted with it) and
    ``n_items`` (items scored). ``mean_ap`` averages ``ap`` over labels with positives.
    """

    interpolation: str
    _per_label: pd.DataFrame
    _curves: dict

    def curve(self, label: Any) -> PrecisionRecallCurve:
        """Precision and recall at each distinct confidence of ``label`` (descending), for plotting.

        Examples
        --------
        >>> gt = pd.DataFrame({"item_id": ["a"], "label": ["cat"]})
        >>> pred = pd.DataFrame({"item_id": ["a", "b"], "label": ["cat", "cat"], "confidence": [0.9, 0.2]})
        >>> evaluate_classification(gt, pred).curve("cat").precision
        array([1. , 0.5])
        """
        if label not in self._curves:
            raise ValueError(f"curve.label: {label!r} is not in the evaluated labels {list(self._curves)}")
        precision, recall, confidence = self._curves[label]
        return PrecisionRecallCurve(precision.copy(), recall.copy(), confidence.copy())


def evaluate_classification(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    interpolation: str = "step",
    item_ids: Iterable[Any] | None = None,
) -> ClassificationEvaluation:
    """Per-label average precision of item-level (multi-label) classification.

    Parameters
    ----------
    ground_truth : pandas.DataFrame
        ``item_id`` and ``label``: one row per label an item has (several rows per item allowed;
        duplicates count once).
    predictions : pandas.DataFrame
        ``item_id``, ``label``, ``confidence``. Duplicate (item, label) rows keep the highest
        confidence.
    interpolation : {"step", "every_point", "coco", "11_point"}, default "step"
        ``"step"`` equals ``sklearn.metrics.average_precision_score`` per label.
    item_ids : iterable, optional
        The items scored. Default: every item in either frame. Pass it to include items that have
        neither a label nor a prediction (true negatives, which lower precision at full recall).

    Returns
    -------
    ClassificationEvaluation

    Notes
    -----
    Each label is a binary ranking over all scored items. An item with no prediction for a label
    gets score ``-inf`` for it (ranked after every predicted item, all such items tied), exactly as
    if the classifier had given it the lowest score; so recall always reaches 1 at the last point.
    Points are taken at each distinct confidence (ties form one step), as scikit-learn does.

    Examples
    --------
    >>> gt = pd.DataFrame({"item_id": ["a", "b"], "label": ["cat", "dog"]})
    >>> pred = pd.DataFrame({"item_id": ["a", "b", "b"], "label": ["cat", "cat", "dog"],
    ...                      "confidence": [0.9, 0.6, 0.8]})
    >>> evaluate_classification(gt, pred).per_label["ap"].to_dict()
    {'cat': 1.0, 'dog': 1.0}
    """
    interpolation = _check_interpolation(
        interpolation, CLASSIFICATION_INTERPOLATIONS, "evaluate_classification.interpolation"
    )
    gt = _check_frame(ground_truth, "ground_truth", ("item_id", "label"))
    pred = _check_frame(predictions, "predictions", ("item_id", "label", "confidence"))
    confidence = _float_column(pred, "confidence", "predictions")
    extra_items = None
    if item_ids is not None:
        extra_items = np.asarray(list(item_ids), dtype=object)
        if pd.isna(extra_items).any():
            raise ValueError("evaluate_classification.item_ids: contains a missing value; list real item ids only")
    gt_items, pred_items, items = _codes(gt, pred, "item_id", extra_items)
    if extra_items is not None and len(items) != len(pd.unique(extra_items)):
        known = set(extra_items.tolist())
        unknown = [i for i in items.tolist() if i not in known]
        raise ValueError(
            f"evaluate_classification.item_ids: misses item(s) {unknown[:5]} present in the frames; "
            f"include every item of ground_truth and predictions"
        )
    gt_labels, pred_labels, labels = _codes(gt, pred, "label")
    n_items = len(items)
    rows = []
    curves = {}
    for k, label in enumerate(labels.tolist()):
        positive = np.zeros(n_items, dtype=bool)
        positive[gt_items[gt_labels == k]] = True
        scores = np.full(n_items, -np.inf)
        sel = pred_labels == k
        np.maximum.at(scores, pred_items[sel], confidence[sel])
        n_predicted = int(_has_prediction(pred_items[sel], n_items).sum())
        order = np.argsort(-scores, kind="stable")
        sorted_scores = scores[order]
        tp_cum = np.cumsum(positive[order], dtype=np.float64)
        fp_cum = np.arange(1, n_items + 1, dtype=np.float64) - tp_cum
        last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True] if n_items else np.zeros(0, bool)
        tp_pts, fp_pts = tp_cum[last_of_tie], fp_cum[last_of_tie]
        n_pos = int(positive.sum())
        ap = _ap_rows(tp_pts[None, :], fp_pts[None, :], np.array([n_pos]), interpolation)[0]
        precision, recall = _points(tp_pts, fp_pts, n_pos)
        curves[label] = (precision, recall, sorted_scores[last_of_tie])
        rows.append((label, ap, n_pos, n_predicted, n_items))
    per_label = pd.DataFrame(rows, columns=["label", "ap", "n_ground_truth", "n_predictions", "n_items"])
    per_label = per_label.astype(
        {"ap": np.float64, "n_ground_truth": np.int64, "n_predictions": np.int64, "n_items": np.int64}
    ).set_index("label")
    logger.debug("evaluated classification of %d items over %d labels", n_items, len(labels))
    return ClassificationEvaluation(interpolation, per_label, curves)


def _has_prediction(items: np.ndarray, n_items: int) -> np.ndarray:
    present = np.zeros(n_items, dtype=bool)
    present[items] = True
    return present


def _points(tp_cum: np.ndarray, fp_cum: np.ndarray, n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    total = tp_cum + fp_cum
    precision = np.zeros_like(tp_cum)
    np.divide(tp_cum, total, out=precision, where=total > 0)
    recall = tp_cum / n_pos if n_pos else np.full(tp_cum.shape, np.nan)
    return precision, recall
