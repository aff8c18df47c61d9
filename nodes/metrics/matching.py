"""COCO matching of predictions to ground truth per item and label, vectorised by rounds, in blocks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nodes.metrics.inputs import (
    GEOMETRIES,
    GEOMETRY_COLUMNS,
    _boxes_from_frame,
    _check_frame,
    _check_interpolation,
    _check_thresholds,
    _codes,
    _float_column,
    _masks_from_frame,
    _polygons_from_frame,
)
from nodes.metrics.iou import _pair_iou

logger = logging.getLogger(__name__)

#: pycocotools caps the matching threshold just below 1 so that ``iou_threshold=1`` still matches
#: identical boxes whose IoU is 1 up to rounding.
_MAX_EFFECTIVE_THRESHOLD = 1 - 1e-10


# --------------------------------------------------------------------------------------------
# Detection matching
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DetectionMatches:
    """COCO matching of predictions to ground truth; the input of every AP computation.

    Detections are stored sorted by (label, descending confidence, item, input row) -- the order
    pycocotools accumulates them in -- so a label's detections are one contiguous run.

    Attributes
    ----------
    labels : numpy.ndarray
        Sorted label values; ``det_label`` / ``gt_label`` are codes into it.
    item_ids : numpy.ndarray
        Sorted item ids; ``det_item`` / ``gt_item`` are codes into it (and the columns of
        ``item_weights`` in :func:`average_precision_from_matches`).
    iou_thresholds : numpy.ndarray, shape (T,)
        The thresholds, in the order given.
    det_label, det_item : numpy.ndarray of int64, shape (D,)
    det_confidence : numpy.ndarray of float64, shape (D,)
    det_row : numpy.ndarray of int64, shape (D,)
        Position (0-based, not the index label) of each detection in the predictions frame.
    det_matched_row : numpy.ndarray of int64, shape (T, D)
        Position of the matched ground truth in the ground-truth frame, or -1 (a false positive).
    gt_item, gt_label, gt_count : numpy.ndarray of int64, shape (G,)
        Ground-truth object counts per (item, label) that has any ground truth.
    label_start : numpy.ndarray of int64, shape (L + 1,)
        Detections of label code ``k`` are ``label_start[k]:label_start[k + 1]``.
    """

    labels: np.ndarray
    item_ids: np.ndarray
    iou_thresholds: np.ndarray
    det_label: np.ndarray
    det_item: np.ndarray
    det_confidence: np.ndarray
    det_row: np.ndarray
    det_matched_row: np.ndarray
    gt_item: np.ndarray
    gt_label: np.ndarray
    gt_count: np.ndarray
    label_start: np.ndarray

    @property
    def is_true_positive(self) -> np.ndarray:
        """(T, D) bool: detection matched at each threshold."""
        return self.det_matched_row >= 0

    @property
    def n_ground_truth(self) -> np.ndarray:
        """(L,) ground-truth objects per label code."""
        return np.bincount(self.gt_label, weights=self.gt_count, minlength=len(self.labels)).astype(np.int64)


def match_detections(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    iou_threshold: float | Sequence[float] = 0.5,
    geometry: str = "box",
) -> DetectionMatches:
    """Match predictions to ground truth per item and label, greedily by confidence (COCO rules).

    Parameters
    ----------
    ground_truth : pandas.DataFrame
        Columns ``item_id``, ``label`` and the geometry: ``left, top, right, bottom`` (boxes),
        ``polygon`` ((N, 2) vertex arrays) or ``mask`` (2-D boolean arrays, one shape per item).
    predictions : pandas.DataFrame
        The same columns plus ``confidence``.
    iou_threshold : float or sequence of float
        In (0, 1]; several thresholds are matched in one pass.
    geometry : {"box", "polygon", "mask"}

    Returns
    -------
    DetectionMatches

    Notes
    -----
    Within each (item, label), predictions are taken in descending confidence (ties: input row
    order, as pycocotools' mergesort); each takes the still-unmatched ground truth with the highest
    IoU >= threshold, the last one in input order among equal IoUs (pycocotools' scan keeps a
    candidate whose IoU is >= the best so far). Labels never match each other. A threshold of 1 is
    applied as ``1 - 1e-10``, as pycocotools does. No area range or crowd handling is applied
    (COCO ``areaRng="all"``, ``iscrowd=0``) and every prediction is kept (no ``maxDets`` cap).

    Examples
    --------
    >>> gt = pd.DataFrame({"item_id": ["a"], "label": ["cat"], "left": [0.0], "top": [0.0],
    ...                    "right": [10.0], "bottom": [10.0]})
    >>> pred = gt.assign(confidence=[0.9])
    >>> match_detections(gt, pred).is_true_positive
    array([[ True]])
    """
    geometry = _check_interpolation(geometry, GEOMETRIES, "match_detections.geometry")
    thresholds, _ = _check_thresholds(iou_threshold, "match_detections.iou_threshold")
    geometry_columns = GEOMETRY_COLUMNS[geometry]
    gt = _check_frame(ground_truth, "ground_truth", ("item_id", "label", *geometry_columns))
    pred = _check_frame(predictions, "predictions", ("item_id", "label", *geometry_columns, "confidence"))
    confidence = _float_column(pred, "confidence", "predictions")
    if geometry == "box":
        gt_geom: Any = _boxes_from_frame(gt, "ground_truth")
        pred_geom: Any = _boxes_from_frame(pred, "predictions")
    elif geometry == "polygon":
        gt_geom = _polygons_from_frame(gt, "ground_truth")
        pred_geom = _polygons_from_frame(pred, "predictions")
    else:
        gt_geom = _masks_from_frame(gt, "ground_truth")
        pred_geom = _masks_from_frame(pred, "predictions")
    gt_items, pred_items, item_ids = _codes(gt, pred, "item_id")
    gt_labels, pred_labels, labels = _codes(gt, pred, "label")
    return _match(
        gt_items, gt_labels, gt_geom, pred_items, pred_labels, pred_geom, confidence,
        item_ids, labels, thresholds, geometry,
    )  # fmt: skip


def _match(
    gt_items: np.ndarray,
    gt_labels: np.ndarray,
    gt_geom: Any,
    pred_items: np.ndarray,
    pred_labels: np.ndarray,
    pred_geom: Any,
    confidence: np.ndarray,
    item_ids: np.ndarray,
    labels: np.ndarray,
    thresholds: np.ndarray,
    geometry: str,
) -> DetectionMatches:
    """Vectorised COCO matching on clean, factorised arrays."""
    n_labels = len(labels)
    n_thresholds = len(thresholds)
    n_gt = len(gt_items)
    n_pred = len(pred_items)
    effective = np.minimum(thresholds, _MAX_EFFECTIVE_THRESHOLD)

    # ground truth: stable sort by group (item-major, then label); rows keep input order in a group
    gt_group_key = gt_items * n_labels + gt_labels
    gt_order = np.argsort(gt_group_key, kind="stable")
    gt_keys_sorted = gt_group_key[gt_order]
    group_first = np.ones(n_gt, dtype=bool)
    group_first[1:] = gt_keys_sorted[1:] != gt_keys_sorted[:-1]
    group_start = np.flatnonzero(group_first)
    group_keys = gt_keys_sorted[group_start]
    group_count = np.diff(np.r_[group_start, n_gt])

    # predictions: dense rank of descending confidence (ties share a rank), then integer sort keys
    by_confidence = np.argsort(-confidence, kind="stable")
    conf_sorted = confidence[by_confidence]
    conf_rank = np.empty(n_pred, dtype=np.int64)
    conf_rank[by_confidence] = np.cumsum(np.r_[False, conf_sorted[1:] != conf_sorted[:-1]])
    n_ranks = int(conf_rank.max()) + 1 if n_pred else 1
    pred_group_key = pred_items * n_labels + pred_labels
    n_items = len(item_ids)
    if max(n_items * n_labels, 1) * n_ranks < 2**62 and max(n_labels, 1) * n_ranks * max(n_items, 1) < 2**62:
        # matching order (group, -confidence, input row) and accumulation order
        # (label, -confidence, item, input row) as single stable integer sorts
        pred_order = np.argsort(pred_group_key * n_ranks + conf_rank, kind="stable")
        acc_rows = np.argsort((pred_labels * n_ranks + conf_rank) * n_items + pred_items, kind="stable")
    else:  # astronomically many keys: multi-key sorts
        pred_order = np.lexsort((conf_rank, pred_group_key))
        acc_rows = np.lexsort((pred_items, conf_rank, pred_labels))
    p_key = pred_group_key[pred_order]
    # candidate ground truth of each prediction: the rows of its group
    cand_count = np.zeros(n_pred, dtype=np.int64)
    cand_start = np.zeros(n_pred, dtype=np.int64)
    if len(group_keys):
        pos = np.minimum(np.searchsorted(group_keys, p_key), len(group_keys) - 1)
        has_group = group_keys[pos] == p_key
        cand_count[has_group] = group_count[pos[has_group]]
        cand_start[has_group] = group_start[pos[has_group]]
    n_pairs = int(cand_count.sum())
    pair_pred = np.repeat(np.arange(n_pred), cand_count)
    pair_offset = np.arange(n_pairs) - np.repeat(np.cumsum(cand_count) - cand_count, cand_count)
    pair_gt = np.repeat(cand_start, cand_count) + pair_offset  # index into the group-sorted gt
    iou = _pair_iou(gt_geom, pred_geom, gt_order, pred_order, pair_gt, pair_pred, p_key, geometry)

    # pairs below every threshold can never match: drop them before the rounds
    keep = iou >= effective.min()
    pair_pred, pair_gt, iou = pair_pred[keep], pair_gt[keep], iou[keep]

    # rank of each prediction inside its group (0 = most confident)
    new_group = np.ones(n_pred, dtype=bool)
    new_group[1:] = p_key[1:] != p_key[:-1]
    first_of_group = np.maximum.accumulate(np.where(new_group, np.arange(n_pred), 0)) if n_pred else np.zeros(0, int)
    rank = np.arange(n_pred) - first_of_group

    matched_gt = np.zeros((n_thresholds, n_gt), dtype=bool)  # indexed by group-sorted gt position
    det_match = np.full((n_thresholds, n_pred), -1, dtype=np.int64)  # group-sorted gt position or -1
    if iou.size:
        pair_rank = rank[pair_pred]
        round_order = np.argsort(pair_rank, kind="stable")
        pair_pred, pair_gt, iou, pair_rank = (
            pair_pred[round_order], pair_gt[round_order], iou[round_order], pair_rank[round_order],
        )  # fmt: skip
        round_bounds = np.searchsorted(pair_rank, np.arange(int(pair_rank[-1]) + 2))
        thr_col = effective[:, None]
        for r in range(len(round_bounds) - 1):
            lo, hi = round_bounds[r], round_bounds[r + 1]
            if lo == hi:
                continue
            _match_round(pair_pred[lo:hi], pair_gt[lo:hi], iou[lo:hi], thr_col, matched_gt, det_match)

    # detections in accumulation order: label, -confidence, item, input row
    position = np.empty(n_pred, dtype=np.int64)
    position[pred_order] = np.arange(n_pred)
    matched = np.take(det_match, position[acc_rows], axis=1)
    matched_rows = np.full(matched.shape, -1, dtype=np.int64)
    hit = matched >= 0
    matched_rows[hit] = gt_order[matched[hit]]
    det_rows = acc_rows
    det_label = pred_labels[acc_rows]
    label_start = np.searchsorted(det_label, np.arange(n_labels + 1))
    return DetectionMatches(
        labels=labels,
        item_ids=item_ids,
        iou_thresholds=thresholds,
        det_label=det_label,
        det_item=pred_items[det_rows],
        det_confidence=confidence[det_rows],
        det_row=det_rows,
        det_matched_row=matched_rows,
        gt_item=group_keys // max(n_labels, 1),
        gt_label=group_keys % max(n_labels, 1),
        gt_count=group_count.astype(np.int64),
        label_start=label_start,
    )


def _match_round(
    pair_pred: np.ndarray,
    pair_gt: np.ndarray,
    iou: np.ndarray,
    thr_col: np.ndarray,
    matched_gt: np.ndarray,
    det_match: np.ndarray,
) -> None:
    """Match one round: at most one prediction per (item, label), all thresholds at once.

    Pairs are grouped by prediction (contiguous) with ground truth in input order; each prediction
    takes the last unmatched ground truth of maximal IoU >= threshold.
    """
    n = len(pair_pred)
    seg_first = np.ones(n, dtype=bool)
    seg_first[1:] = pair_pred[1:] != pair_pred[:-1]
    starts = np.flatnonzero(seg_first)
    seg_id = np.cumsum(seg_first) - 1
    valid = (iou[None, :] >= thr_col) & ~np.take(matched_gt, pair_gt, axis=1)
    key = np.where(valid, iou[None, :], -1.0)
    seg_max = np.maximum.reduceat(key, starts, axis=1)
    best_here = valid & (key == np.take(seg_max, seg_id, axis=1))
    position = np.where(best_here, np.arange(n)[None, :], -1)
    best = np.maximum.reduceat(position, starts, axis=1)
    t_idx, s_idx = np.nonzero(best >= 0)
    chosen = best[t_idx, s_idx]
    matched_gt[t_idx, pair_gt[chosen]] = True
    det_match[t_idx, pair_pred[chosen]] = pair_gt[chosen]
