"""COCO matching of predictions to ground truth per item and label, vectorised by rounds, in blocks."""

from __future__ import annotations

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
from nodes.metrics.iou import pair_iou_function

#: Default bound on the (ground truth, prediction) pairs whose IoU is held at once (~35 MiB of
#: working arrays for boxes): matching memory does not grow with the crowding of an image.
DEFAULT_BLOCK_PAIRS = 2**19
#: pycocotools caps the matching threshold just below 1 so that ``iou_threshold=1`` still matches
#: identical boxes whose IoU is 1 up to rounding.
_MAX_EFFECTIVE_THRESHOLD = 1 - 1e-10


@dataclass(frozen=True)
class MatchingStats:
    """How much pair work one matching did (counted, never timed; the memory bound is checked on it).

    Attributes
    ----------
    candidate_pairs : int
        (ground truth, prediction) pairs of the same item and label: the IoUs computed.
    kept_pairs : int
        Pairs with IoU >= the lowest threshold (the only ones that can match).
    blocks : int
        Blocks the pairs were processed in.
    max_block_pairs : int
        Most pairs materialised at once: ``<= max(block_pairs, largest (item, label) ground truth)``.
    rounds : int
        Matching rounds (the most predictions of one label on one item).
    """

    candidate_pairs: int = 0
    kept_pairs: int = 0
    blocks: int = 0
    max_block_pairs: int = 0
    rounds: int = 0


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
    stats : MatchingStats
        The pair work done (see :class:`MatchingStats`).
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
    stats: MatchingStats = MatchingStats()

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
    block_pairs: int = DEFAULT_BLOCK_PAIRS,
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
    block_pairs : int, default ``DEFAULT_BLOCK_PAIRS`` (2**19)
        Most candidate pairs whose IoU is held at once. Results do not depend on it; memory does
        (about 70 bytes a pair for boxes). A single prediction's candidates are never split, so a
        block can reach the largest number of ground truth of one label on one item.

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

    Pairs are processed round by round (the r-th most confident prediction of every item and label
    at once), in blocks of at most ``block_pairs`` pairs cut along that order, so that a crowded
    image (thousands of boxes of one label) never holds all its pairs at once; ``stats`` counts them.

    Examples
    --------
    >>> gt = pd.DataFrame({"item_id": ["a"], "label": ["cat"], "left": [0.0], "top": [0.0],
    ...                    "right": [10.0], "bottom": [10.0]})
    >>> pred = gt.assign(confidence=[0.9])
    >>> match_detections(gt, pred).is_true_positive
    array([[ True]])
    """
    geometry = _check_interpolation(geometry, GEOMETRIES, "match_detections.geometry")
    block_pairs = _check_block_pairs(block_pairs, "match_detections.block_pairs")
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
        item_ids, labels, thresholds, geometry, block_pairs,
    )  # fmt: skip


def _check_block_pairs(block_pairs: Any, field: str) -> int:
    if isinstance(block_pairs, bool) or not isinstance(block_pairs, (int, np.integer)) or block_pairs < 1:
        raise ValueError(f"{field}: {block_pairs!r} is not a positive integer; example: block_pairs=2**19")
    return int(block_pairs)


def _stable_order(key: np.ndarray, bound: int) -> np.ndarray:
    """``argsort(key, kind="stable")`` for integer keys in ``[0, bound)``, by the fastest exact route.

    Small keys use numpy's radix sort (uint16); otherwise the row number is folded into the key so
    that every key is unique and the unstable (SIMD) sort gives the stable order.

    Examples
    --------
    >>> _stable_order(np.array([2, 0, 2, 1, 0]), 3).tolist()
    [1, 4, 3, 0, 2]
    """
    n = len(key)
    if bound <= 2**16:
        return np.argsort(key.astype(np.uint16), kind="stable")
    if bound * max(n, 1) < 2**63:
        unique = key * n
        unique += np.arange(n)
        return np.argsort(unique)
    return np.argsort(key, kind="stable")


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
    block_pairs: int = DEFAULT_BLOCK_PAIRS,
) -> DetectionMatches:
    """Vectorised COCO matching on clean, factorised arrays, pairs in blocks of ``block_pairs``."""
    n_labels = max(len(labels), 1)
    n_items = max(len(item_ids), 1)
    n_thresholds = len(thresholds)
    n_gt = len(gt_items)
    n_pred = len(pred_items)
    effective = np.minimum(thresholds, _MAX_EFFECTIVE_THRESHOLD)

    # ground truth: stable sort by group (item-major, then label); rows keep input order in a group
    gt_group_key = gt_items * n_labels + gt_labels
    gt_order = _stable_order(gt_group_key, n_items * n_labels)
    gt_keys_sorted = gt_group_key[gt_order]
    group_first = np.ones(n_gt, dtype=bool)
    group_first[1:] = gt_keys_sorted[1:] != gt_keys_sorted[:-1]
    group_start = np.flatnonzero(group_first)
    group_keys = gt_keys_sorted[group_start]
    group_count = np.diff(np.r_[group_start, n_gt])

    # predictions: dense rank of descending confidence (ties share a rank, so any sort will do)
    by_confidence = np.argsort(-confidence)
    conf_sorted = confidence[by_confidence]
    conf_rank = np.empty(n_pred, dtype=np.int64)
    conf_rank[by_confidence] = np.cumsum(np.r_[False, conf_sorted[1:] != conf_sorted[:-1]])
    n_ranks = int(conf_rank.max()) + 1 if n_pred else 1
    pred_group_key = pred_items * n_labels + pred_labels
    # matching order (group = item, label; -confidence; input row) as one stable integer sort
    if n_items * n_labels * n_ranks < 2**62:
        pred_order = _stable_order(pred_group_key * n_ranks + conf_rank, n_items * n_labels * n_ranks)
    else:  # astronomically many keys: a multi-key sort
        pred_order = np.lexsort((conf_rank, pred_group_key))
    # accumulation order (label, -confidence, item, input row): matching order is already sorted by
    # (item, input row) within equal (label, confidence), so a stable sort on those two suffices
    acc_rows = pred_order[_stable_order((pred_labels * n_ranks + conf_rank)[pred_order], n_labels * n_ranks)]
    p_key = pred_group_key[pred_order]
    # candidate ground truth of each (sorted) prediction: the rows of its group
    cand_count = np.zeros(n_pred, dtype=np.int64)
    cand_start = np.zeros(n_pred, dtype=np.int64)
    if len(group_keys):
        if n_items * n_labels <= max(4 * n_pred, 2**16):  # a dense table of groups is cheap
            lookup = np.full(n_items * n_labels, len(group_keys), dtype=np.int64)
            lookup[group_keys] = np.arange(len(group_keys))
            pos = np.minimum(lookup[p_key], len(group_keys) - 1)
        else:
            pos = np.minimum(np.searchsorted(group_keys, p_key), len(group_keys) - 1)
        has_group = group_keys[pos] == p_key
        cand_count[has_group] = group_count[pos[has_group]]
        cand_start[has_group] = group_start[pos[has_group]]

    # rank of each prediction inside its group (0 = most confident) = its matching round
    new_group = np.ones(n_pred, dtype=bool)
    new_group[1:] = p_key[1:] != p_key[:-1]
    first_of_group = np.maximum.accumulate(np.where(new_group, np.arange(n_pred), 0)) if n_pred else np.zeros(0, int)
    rank = np.arange(n_pred) - first_of_group

    # processing order: round-major, groups in order inside a round; only predictions with candidates
    active = np.flatnonzero(cand_count)
    n_rounds = int(rank[active].max()) + 1 if active.size else 0
    active = active[_stable_order(rank[active], n_rounds)]
    active_count = cand_count[active]
    pairs_before = np.zeros(active.size + 1, dtype=np.int64)
    np.cumsum(active_count, out=pairs_before[1:])

    pair_iou = pair_iou_function(geometry, gt_geom, pred_geom, gt_order, pred_order, p_key)
    matched_gt = np.zeros((n_thresholds, n_gt), dtype=bool)  # indexed by group-sorted gt position
    det_match = np.full((n_thresholds, n_pred), -1, dtype=np.int64)  # group-sorted gt position or -1
    thr_col = effective[:, None]
    lowest = effective.min()
    blocks = kept = max_block = 0
    lo = 0
    while lo < active.size:
        # the longest run of predictions whose pairs fit in the block (at least one prediction)
        hi = max(int(np.searchsorted(pairs_before, pairs_before[lo] + block_pairs, side="right")) - 1, lo + 1)
        block_pred = active[lo:hi]
        counts = active_count[lo:hi]
        n_pairs = int(pairs_before[hi] - pairs_before[lo])
        # index into the group-sorted gt: the group's start + the pair's offset inside its prediction
        pair_gt = np.repeat(cand_start[block_pred] - (pairs_before[lo:hi] - pairs_before[lo]), counts)
        pair_gt += np.arange(n_pairs)
        # pairs below every threshold can never match: only the others come back
        pair_gt, pair_pred, iou = pair_iou(pair_gt, block_pred, counts, lowest)
        blocks, kept, max_block = blocks + 1, kept + len(iou), max(max_block, n_pairs)
        lo = hi
        if not iou.size:
            continue
        # rounds in order; a round cut by a block boundary touches disjoint groups on either side
        pair_rank = rank[pair_pred]
        bounds = np.flatnonzero(np.r_[True, pair_rank[1:] != pair_rank[:-1], True])
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            _match_round(pair_pred[start:end], pair_gt[start:end], iou[start:end], thr_col, matched_gt, det_match)

    # detections in accumulation order: label, -confidence, item, input row
    position = np.empty(n_pred, dtype=np.int64)
    position[pred_order] = np.arange(n_pred)
    matched = np.take(det_match, position[acc_rows], axis=1)
    matched_rows = np.full(matched.shape, -1, dtype=np.int64)
    hit = matched >= 0
    matched_rows[hit] = gt_order[matched[hit]]
    det_label = pred_labels[acc_rows]
    return DetectionMatches(
        labels=labels,
        item_ids=item_ids,
        iou_thresholds=thresholds,
        det_label=det_label,
        det_item=pred_items[acc_rows],
        det_confidence=confidence[acc_rows],
        det_row=acc_rows,
        det_matched_row=matched_rows,
        gt_item=group_keys // n_labels,
        gt_label=group_keys % n_labels,
        gt_count=group_count.astype(np.int64),
        label_start=np.searchsorted(det_label, np.arange(len(labels) + 1)),
        stats=MatchingStats(int(pairs_before[-1]), kept, blocks, max_block, n_rounds),
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
