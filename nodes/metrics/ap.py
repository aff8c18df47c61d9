"""Precision-recall curves and average precision (COCO 101-point, VOC every-point / 11-point, step), plain
and weighted (bootstrap) from detection matches."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from nodes.metrics.inputs import CLASSIFICATION_INTERPOLATIONS, DETECTION_INTERPOLATIONS, _check_interpolation
from nodes.metrics.matching import DetectionMatches, match_detections  # noqa: F401 (match_detections: doctests)

#: The 101 recall points of COCO, built exactly as ``pycocotools`` builds them (``np.linspace``), so
#: recall values that fall on a point compare the same way.
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.00, round((1.00 - 0.0) / 0.01) + 1, endpoint=True)
#: The 11 recall points of VOC 2007 (0, 0.1, ..., 1), correctly rounded.
VOC07_RECALL_THRESHOLDS = np.arange(11) / 10.0


#: Bound on the elements of one (resamples x detections) block in the weighted AP path (4 MiB a copy).
_BLOCK_ELEMENTS = 2**19


class PrecisionRecallCurve(NamedTuple):
    """One label's precision-recall curve, one point per prediction in descending confidence.

    ``precision[i]`` and ``recall[i]`` are measured after accepting the ``i + 1`` most confident
    predictions; ``confidence[i]`` is the confidence of that prediction (the score threshold).
    """

    precision: np.ndarray
    recall: np.ndarray
    confidence: np.ndarray


# --------------------------------------------------------------------------------------------
# Precision-recall and AP core (single source for every path)
# --------------------------------------------------------------------------------------------


def _sample_envelope(envelope: np.ndarray, recall: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Per row, the envelope at the first index whose recall >= each point (0 past the end).

    Vectorised ``searchsorted(recall[row], points, side="left")`` for all rows at once: each recall
    is mapped to its bucket (how many points are <= it), buckets are small non-decreasing integers
    per row, so offsetting rows by ``row * (len(points) + 1)`` keeps one globally sorted key.
    """
    n_rows, n = recall.shape
    k = len(points)
    if n == 0:
        return np.zeros((n_rows, k))
    buckets = np.searchsorted(points, recall, side="right")
    stride = k + 1
    keys = (buckets + (np.arange(n_rows) * stride)[:, None]).ravel()
    queries = (np.arange(1, k + 1)[None, :] + (np.arange(n_rows) * stride)[:, None]).ravel()
    index = np.searchsorted(keys, queries, side="left").reshape(n_rows, k) - (np.arange(n_rows) * n)[:, None]
    inside = index < n
    sampled = np.take_along_axis(envelope, np.minimum(index, n - 1), axis=1)
    return np.where(inside, sampled, 0.0)


def _ap_rows(tp_cum: np.ndarray, fp_cum: np.ndarray, n_gt: np.ndarray, interpolation: str) -> np.ndarray:
    """AP for each row of cumulative TP / FP counts (rows are curves; columns in confidence order).

    ``tp_cum``, ``fp_cum``: (rows, n) float; ``n_gt``: (rows,). Rows with ``n_gt == 0`` give NaN;
    rows with no detections give 0. For ``"step"`` the caller passes one column per distinct score.
    """
    n_gt = np.asarray(n_gt, dtype=np.float64)
    rows, n = tp_cum.shape
    ap = np.full(rows, np.nan)
    has_gt = n_gt > 0
    if not has_gt.any():
        return ap
    if n == 0:
        ap[has_gt] = 0.0
        return ap
    tp = tp_cum[has_gt]
    fp = fp_cum[has_gt]
    total = tp + fp
    precision = np.zeros_like(tp)
    np.divide(tp, total, out=precision, where=total > 0)
    recall = tp / n_gt[has_gt][:, None]
    if interpolation == "step":
        # sklearn: sum over thresholds of (R_n - R_{n-1}) * P_n, no envelope
        ap[has_gt] = np.sum(np.diff(recall, axis=1, prepend=0.0) * precision, axis=1)
        return ap
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    if interpolation == "every_point":
        # summed in order (cumsum, not numpy's pairwise sum): zero-weight points of the weighted
        # path add exact zeros, so the result does not depend on how many there are
        ap[has_gt] = np.cumsum(np.diff(recall, axis=1, prepend=0.0) * envelope, axis=1)[:, -1]
    else:
        points = COCO_RECALL_THRESHOLDS if interpolation == "coco" else VOC07_RECALL_THRESHOLDS
        ap[has_gt] = _sample_envelope(envelope, recall, points).mean(axis=1)
    return ap


def precision_recall_curve(is_true_positive: Sequence[bool], n_ground_truth: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, for detections already in descending confidence.

    Parameters
    ----------
    is_true_positive : array_like of bool, shape (n,)
        Whether each detection matched a ground truth, most confident first.
    n_ground_truth : int
        Number of ground-truth objects (the recall denominator).

    Returns
    -------
    precision, recall : numpy.ndarray, shape (n,)
        ``precision[i] = TP_i / (i + 1)``; ``recall[i] = TP_i / n_ground_truth`` (NaN if no ground
        truth).

    Examples
    --------
    >>> precision_recall_curve([True, False, True], 4)
    (array([1.        , 0.5       , 0.66666667]), array([0.25, 0.25, 0.5 ]))
    """
    tp = np.asarray(is_true_positive, dtype=bool).ravel()
    if n_ground_truth < 0:
        raise ValueError(f"precision_recall_curve.n_ground_truth: {n_ground_truth!r} is negative; count >= 0")
    tp_cum = np.cumsum(tp, dtype=np.float64)
    precision = tp_cum / np.arange(1, tp.size + 1)
    recall = tp_cum / n_ground_truth if n_ground_truth > 0 else np.full(tp.size, np.nan)
    return precision, recall


def average_precision(is_true_positive: Sequence[bool], n_ground_truth: int, interpolation: str = "coco") -> float:
    """Average precision of one label from its detections in descending confidence.

    Parameters
    ----------
    is_true_positive : array_like of bool
        Match flags of the detections, most confident first (ties in the order you want counted).
    n_ground_truth : int
        Number of ground-truth objects.
    interpolation : {"coco", "every_point", "11_point", "step"}
        ``"coco"``: mean of the precision envelope at the 101 recall points 0, 0.01, ..., 1 (0 where
        recall is never reached), as pycocotools. ``"every_point"``: area under the precision
        envelope (PASCAL VOC 2010+). ``"11_point"``: mean envelope at recall 0, 0.1, ..., 1 (VOC
        2007). ``"step"``: sum of (recall step) x precision without an envelope (scikit-learn); here
        every detection is its own threshold.

    Returns
    -------
    float
        AP in [0, 1]; 0 with no detections; NaN with no ground truth.

    Examples
    --------
    >>> average_precision([True, False, True], 2, interpolation="every_point")
    0.8333333333333333
    """
    _check_interpolation(interpolation, CLASSIFICATION_INTERPOLATIONS, "average_precision.interpolation")
    tp = np.asarray(is_true_positive, dtype=bool).ravel()
    tp_cum = np.cumsum(tp, dtype=np.float64)[None, :]
    fp_cum = np.cumsum(~tp, dtype=np.float64)[None, :]
    return float(_ap_rows(tp_cum, fp_cum, np.array([n_ground_truth]), interpolation)[0])


# --------------------------------------------------------------------------------------------
# AP from matches (plain and resampled)
# --------------------------------------------------------------------------------------------


def average_precision_from_matches(
    matches: DetectionMatches,
    item_weights: np.ndarray | None = None,
    interpolation: str = "coco",
) -> np.ndarray:
    """AP per label and threshold, optionally for many weighted (resampled) copies of the dataset.

    Parameters
    ----------
    matches : DetectionMatches
        From :func:`match_detections`.
    item_weights : numpy.ndarray, optional
        Multiplicity of each item (columns follow ``matches.item_ids``): shape (n_items,) for one
        weighting or (n_resamples, n_items) for many, e.g. bootstrap counts
        ``rng.multinomial(n_items, [1 / n_items] * n_items, size=1000)``. Non-negative; integers
        give exactly the AP of the dataset in which item i appears ``w[i]`` times.
    interpolation : {"coco", "every_point", "11_point"}

    Returns
    -------
    numpy.ndarray
        Shape (n_labels, n_thresholds) without weights or with 1-D weights, and
        (n_resamples, n_labels, n_thresholds) with 2-D weights. NaN where a label has no (weighted)
        ground truth.

    Notes
    -----
    A resampled copy is scored by weighted cumulative sums over the confidence-sorted detections:
    the matching of an item does not change when the item is repeated, so no re-matching is needed.
    The result equals evaluating the resampled dataset in which copy ``j`` of item ``i`` is a new
    item whose id sorts right after copy ``j - 1`` (e.g. ``f"{i}#{j}"``): re-evaluated, the copies
    of an item are ranked one after the other among equal confidences, each copy's tied detections in
    input order. A detection repeated ``w`` times is one point of weight ``w`` (exact: a run of
    true positives, or of false positives, has the AP of its last point), except where one item holds
    several detections of a label with the same confidence that are not all true or all false
    positives; those tie groups are expanded copy by copy (copy ``c`` weighs
    ``clip(w - c, 0, 1)``), so equality holds there too. Work is done in blocks of resamples so that
    memory stays near 50 MB whatever the number of resamples.

    Examples
    --------
    >>> gt = pd.DataFrame({"item_id": ["a", "b"], "label": ["cat", "cat"], "left": [0.0, 0.0],
    ...                    "top": [0.0, 0.0], "right": [10.0, 10.0], "bottom": [10.0, 10.0]})
    >>> pred = gt.assign(confidence=[0.9, 0.8], right=[10.0, 1.0])
    >>> m = match_detections(gt, pred)
    >>> average_precision_from_matches(m, interpolation="every_point")
    array([[0.5]])
    >>> average_precision_from_matches(m, np.array([[2, 0], [0, 2]]), interpolation="every_point")
    array([[[1.]],
    <BLANKLINE>
           [[0.]]])
    """
    _check_interpolation(interpolation, DETECTION_INTERPOLATIONS, "average_precision_from_matches.interpolation")
    n_labels = len(matches.labels)
    n_thresholds = len(matches.iou_thresholds)
    tp_all = matches.is_true_positive
    if item_weights is None:
        result = np.empty((n_labels, n_thresholds))
        n_gt = matches.n_ground_truth.astype(np.float64)
        for k in range(n_labels):
            lo, hi = matches.label_start[k], matches.label_start[k + 1]
            tp = tp_all[:, lo:hi]
            tp_cum = np.cumsum(tp, axis=1, dtype=np.float64)
            fp_cum = np.arange(1, hi - lo + 1, dtype=np.float64)[None, :] - tp_cum
            result[k] = _ap_rows(tp_cum, fp_cum, np.full(n_thresholds, n_gt[k]), interpolation)
        return result
    weights = np.asarray(item_weights, dtype=np.float64)
    single = weights.ndim == 1
    weights = np.atleast_2d(weights)
    if weights.ndim != 2 or weights.shape[1] != len(matches.item_ids):
        raise ValueError(
            f"average_precision_from_matches.item_weights: shape {np.shape(item_weights)} does not match "
            f"{len(matches.item_ids)} items; use (n_items,) or (n_resamples, n_items) in matches.item_ids order"
        )
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("average_precision_from_matches.item_weights: weights must be finite and >= 0")
    n_resamples = weights.shape[0]
    result = np.empty((n_resamples, n_labels, n_thresholds))
    for k in range(n_labels):
        lo, hi = matches.label_start[k], matches.label_start[k + 1]
        gt_sel = matches.gt_label == k
        gt_weighted = np.take(weights, matches.gt_item[gt_sel], axis=1) @ matches.gt_count[gt_sel].astype(np.float64)
        columns, copy_index = _weighted_columns(
            matches.det_item[lo:hi], matches.det_confidence[lo:hi], tp_all[:, lo:hi], weights
        )
        det_items = matches.det_item[lo:hi][columns]
        expanded = copy_index >= 0
        tp_k = tp_all[:, lo:hi][:, columns].astype(np.float64)
        n_det = len(columns)
        block = max(1, _BLOCK_ELEMENTS // max(1, n_det * n_thresholds))
        for b0 in range(0, n_resamples, block):
            w = np.take(weights[b0 : b0 + block], det_items, axis=1)  # (B, n_det)
            if expanded.any():  # copy c of a mixed tie group weighs clip(w - c, 0, 1)
                w[:, expanded] = np.clip(w[:, expanded] - copy_index[expanded], 0.0, 1.0)
            w_cum = np.cumsum(w, axis=1)
            tp_cum = np.cumsum(w[:, None, :] * tp_k[None, :, :], axis=2)  # (B, T, n_det)
            fp_cum = w_cum[:, None, :] - tp_cum
            n_b = w.shape[0]
            ap = _ap_rows(
                tp_cum.reshape(n_b * n_thresholds, n_det),
                fp_cum.reshape(n_b * n_thresholds, n_det),
                np.repeat(gt_weighted[b0 : b0 + block], n_thresholds),
                interpolation,
            )
            result[b0 : b0 + n_b, k, :] = ap.reshape(n_b, n_thresholds)
    return result[0] if single else result


def _weighted_columns(
    det_item: np.ndarray, det_confidence: np.ndarray, tp: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Column layout of one label's weighted accumulation: (detection index, copy index or -1).

    Detections come in accumulation order. A *tie group* is a run of detections of one item with
    the same confidence; when it holds both true and false positives (at any threshold), its
    detections are laid out ``R`` times, copy-major (copy 0: d1..dm, copy 1: d1..dm, ...), where
    ``R`` is the largest weight of the item (rounded up); other detections are one column each
    (copy index -1: weighted by the item's weight).

    Examples
    --------
    >>> tp = np.array([[True, False, True]])
    >>> _weighted_columns(np.array([0, 0, 1]), np.array([0.9, 0.9, 0.5]), tp, np.array([[2.0, 1.0]]))
    (array([0, 1, 0, 1, 2]), array([ 0,  0,  1,  1, -1]))
    """
    n = len(det_item)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    new_group = np.r_[True, (det_item[1:] != det_item[:-1]) | (det_confidence[1:] != det_confidence[:-1])]
    group_start = np.flatnonzero(new_group)
    group_size = np.diff(np.r_[group_start, n])
    # mixed: some threshold has both a true and a false positive in the group
    tp_count = np.add.reduceat(tp.astype(np.int64), group_start, axis=1)  # (T, G)
    mixed = ((tp_count > 0) & (tp_count < group_size[None, :])).any(axis=0)
    if not mixed.any():
        return np.arange(n, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    max_weight = np.ceil(weights.max(axis=0)).astype(np.int64) if weights.size else np.zeros(0, np.int64)
    reps = np.where(mixed, np.maximum(max_weight[det_item[group_start]], 1), 1)
    width = group_size * reps
    total = int(width.sum())
    unit = np.repeat(np.arange(len(group_start)), width)
    offset = np.arange(total) - np.repeat(np.cumsum(width) - width, width)
    columns = group_start[unit] + offset % group_size[unit]
    copy_index = np.where(mixed[unit], offset // group_size[unit], -1)
    return columns.astype(np.int64), copy_index.astype(np.int64)


# --------------------------------------------------------------------------------------------
# What detection and classification results share
# --------------------------------------------------------------------------------------------


class _PerLabelResult:
    """What both evaluation results share: a per-label table with an ``ap`` column.

    ``per_label`` returns a copy (results are immutable); ``mean_ap`` averages ``ap`` over the
    labels where it is defined (NaN marks a label without ground truth / positives).
    """

    _per_label: pd.DataFrame

    @property
    def per_label(self) -> pd.DataFrame:
        """Per-label (and, for several IoU thresholds, per-threshold) AP and counts."""
        return self._per_label.copy()

    @property
    def mean_ap(self) -> float:
        """Mean AP over labels that have ground truth (and over thresholds)."""
        ap = np.asarray(self._per_label["ap"].to_numpy(), dtype=np.float64)
        ap = ap[~np.isnan(ap)]
        return float(ap.mean()) if ap.size else math.nan
