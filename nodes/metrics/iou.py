"""IoU of boxes (pycocotools' arithmetic), polygons (shapely) and masks (pixel counts), matrix or pairwise."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nodes.metrics.inputs import _polygons_from_frame


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray, pairwise: bool = False) -> np.ndarray:
    """IoU of axis-aligned boxes given as ``(left, top, right, bottom)``, exactly as COCO computes it.

    Parameters
    ----------
    boxes_a, boxes_b : array_like, shape (N, 4) and (M, 4)
        Boxes in Dataloop's coordinates ``left, top, right, bottom`` (``right >= left``).
    pairwise : bool, default False
        False: the (N, M) matrix of every box of ``a`` against every box of ``b``.
        True: ``N == M`` and the result is the (N,) IoU of row i of ``a`` with row i of ``b``.

    Returns
    -------
    numpy.ndarray
        IoU in [0, 1]. Boxes that touch or do not overlap have IoU 0, as do empty boxes.

    Notes
    -----
    Widths are ``right - left`` with no ``+ 1`` (continuous coordinates), and the arithmetic follows
    pycocotools' ``bbIou`` step by step (it works on ``x, y, w, h``), so IoU values that land exactly
    on a threshold compare the same way as in pycocotools.

    Examples
    --------
    >>> box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30]])
    array([[0.33333333, 0.        ]])
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    if pairwise:
        if a.shape != b.shape:
            raise ValueError(f"box_iou: pairwise needs the same number of boxes, got {len(a)} and {len(b)}")
        return _box_iou_pairs(a, b)
    rows = np.repeat(np.arange(len(a)), len(b))
    cols = np.tile(np.arange(len(b)), len(a))
    return _box_iou_pairs(a[rows], b[cols]).reshape(len(a), len(b))


def _box_table(boxes: np.ndarray) -> np.ndarray:
    """(5, N) rows left, top, right, bottom, area of (N, 4) boxes as pycocotools sees them."""
    return _box_table_rows(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])


def _box_table_rows(left: np.ndarray, top: np.ndarray, right: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """(5, N) rows left, top, right, bottom, area as pycocotools sees them (x + w recomputed)."""
    width = right - left
    height = bottom - top
    return np.stack([left, top, left + width, top + height, width * height])


def _box_iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _box_table_iou(_box_table(a), _box_table(b))


def _box_table_iou(g: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Element-wise IoU of two (5, N) box tables, with pycocotools' ``bbIou`` arithmetic."""
    inter_w = np.minimum(g[2], d[2])
    inter_w -= np.maximum(g[0], d[0])
    inter_h = np.minimum(g[3], d[3])
    inter_h -= np.maximum(g[1], d[1])
    np.maximum(inter_w, 0.0, out=inter_w)
    np.maximum(inter_h, 0.0, out=inter_h)
    inter = inter_w
    inter *= inter_h
    # bbIou: u = da + ga - i (detection area + ground-truth area - intersection)
    union = d[4] + g[4]
    union -= inter
    overlap = inter > 0
    union[~overlap] = 1.0
    inter /= union
    return inter


def polygon_iou(polygons_a: Sequence[Any], polygons_b: Sequence[Any], pairwise: bool = False) -> np.ndarray:
    """IoU of polygons: area of intersection / area of union (shapely 2, vectorised).

    Parameters
    ----------
    polygons_a, polygons_b : sequence
        Shapely polygons, or (N, 2) vertex arrays.
    pairwise : bool, default False
        False: the (N, M) matrix; True: element-wise for equally long inputs.

    Returns
    -------
    numpy.ndarray
        IoU in [0, 1]; 0 when the union is empty.

    Examples
    --------
    >>> polygon_iou([[[0, 0], [2, 0], [2, 2], [0, 2]]], [[[1, 0], [3, 0], [3, 2], [1, 2]]])
    array([[0.33333333]])
    """
    a = _as_polygons(polygons_a, "polygon_iou.polygons_a")
    b = _as_polygons(polygons_b, "polygon_iou.polygons_b")
    if pairwise:
        if len(a) != len(b):
            raise ValueError(f"polygon_iou: pairwise needs the same number of polygons, got {len(a)} and {len(b)}")
        return _polygon_iou_pairs(a, b)
    rows = np.repeat(np.arange(len(a)), len(b))
    cols = np.tile(np.arange(len(b)), len(a))
    return _polygon_iou_pairs(a[rows], b[cols]).reshape(len(a), len(b))


def _as_polygons(values: Sequence[Any], field: str) -> np.ndarray:
    import shapely

    values = list(values)
    if values and all(isinstance(v, shapely.Geometry) for v in values):
        return np.asarray(values, dtype=object)
    return _polygons_from_frame(pd.DataFrame({"polygon": pd.Series(values, dtype=object)}), field)


def _polygon_iou_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import shapely

    if len(a) == 0:
        return np.zeros(0)
    inter = shapely.area(shapely.intersection(a, b))
    union = shapely.area(a) + shapely.area(b) - inter
    iou = np.zeros(len(a))
    np.divide(inter, union, out=iou, where=union > 0)
    return np.clip(iou, 0.0, 1.0)


def mask_iou(masks_a: Sequence[np.ndarray], masks_b: Sequence[np.ndarray]) -> np.ndarray:
    """IoU matrix of boolean masks of one shape: ``|a & b| / |a | b|`` by counting pixels.

    Parameters
    ----------
    masks_a, masks_b : sequence of 2-D boolean arrays
        All masks must have the same shape.

    Returns
    -------
    numpy.ndarray, shape (len(masks_a), len(masks_b))
        IoU; 0 when both masks are empty.

    Notes
    -----
    Intersections are a matrix product of the flattened masks (exact in float64 up to 2**53
    pixels), so the cost is one BLAS call per item and label.

    Examples
    --------
    >>> a = np.zeros((4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4), bool); b[1:3] = True
    >>> mask_iou([a], [b])
    array([[0.33333333]])
    """
    a = np.asarray([np.asarray(m, dtype=bool).ravel() for m in masks_a], dtype=np.float64)
    b = np.asarray([np.asarray(m, dtype=bool).ravel() for m in masks_b], dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return np.zeros((len(masks_a), len(masks_b)))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"mask_iou: masks differ in size ({a.shape[1]} vs {b.shape[1]} pixels); use one shape")
    inter = a @ b.T
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - inter
    iou = np.zeros_like(inter)
    np.divide(inter, union, out=iou, where=union > 0)
    return iou


def pair_iou_function(
    geometry: str,
    gt_geom: Any,
    pred_geom: Any,
    gt_order: np.ndarray,
    pred_order: np.ndarray,
    pred_group_sorted: np.ndarray,
) -> Callable[[np.ndarray, np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A function ``(pair_gt, preds, counts, lowest) -> (gt, pred, iou)`` of the pairs with IoU >= ``lowest``.

    Pairs come grouped by prediction: prediction ``preds[j]`` is paired with the next ``counts[j]``
    entries of ``pair_gt``; the pairs kept come back in the same order. Positions index the
    group-sorted ground truth (``gt_order``) and predictions (``pred_order``);
    ``pred_group_sorted`` is each sorted prediction's (item, label) group; ``lowest`` > 0. Boxes
    are (4, N) rows (left, top, right, bottom). Geometry tables are reordered once, so a block
    only gathers its own pairs.
    """
    if geometry == "box":
        gt_table, pred_table = _ordered_box_table(gt_geom, gt_order), _ordered_box_table(pred_geom, pred_order)
        return lambda pair_gt, preds, counts, lowest: _box_pairs_at_least(
            gt_table, pred_table, pair_gt, np.repeat(preds, counts), lowest
        )
    if geometry == "polygon":
        gt_sorted, pred_sorted = gt_geom[gt_order], pred_geom[pred_order]

        def polygons(pair_gt: np.ndarray, preds: np.ndarray, counts: np.ndarray, lowest: float):
            pair_pred = np.repeat(preds, counts)
            return _at_least(pair_gt, pair_pred, _polygon_iou_pairs(gt_sorted[pair_gt], pred_sorted[pair_pred]), lowest)

        return polygons

    def masks(pair_gt: np.ndarray, preds: np.ndarray, counts: np.ndarray, lowest: float):
        # one matrix product per group and block: bring each group's pairs together (stable)
        pair_pred = np.repeat(preds, counts)
        by_group = np.argsort(pred_group_sorted[pair_pred], kind="stable")
        iou = np.empty(len(pair_gt))
        iou[by_group] = _mask_iou_pairs(
            gt_geom,
            pred_geom,
            gt_order[pair_gt[by_group]],
            pred_order[pair_pred[by_group]],
            pred_group_sorted[pair_pred[by_group]],
        )
        return _at_least(pair_gt, pair_pred, iou, lowest)

    return masks


def _ordered_box_table(boxes: np.ndarray, order: np.ndarray) -> np.ndarray:
    """:func:`_box_table_rows` of (4, N) boxes taken in ``order``, built in place."""
    left, top, right, bottom = np.take(boxes, order, axis=1)
    table = np.empty((5, len(order)))
    table[0], table[1] = left, top
    width, height = np.subtract(right, left, out=right), np.subtract(bottom, top, out=bottom)
    np.add(left, width, out=table[2])
    np.add(top, height, out=table[3])
    np.multiply(width, height, out=table[4])
    return table


def _at_least(
    pair_gt: np.ndarray, pair_pred: np.ndarray, iou: np.ndarray, lowest: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = np.flatnonzero(iou >= lowest)
    return pair_gt[index], pair_pred[index], iou[index]


def _box_pairs_at_least(
    g: np.ndarray, d: np.ndarray, pair_gt: np.ndarray, pair_pred: np.ndarray, lowest: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gt, pred, IoU) of the box pairs with IoU >= ``lowest`` > 0, from (5, N) tables g and d.

    pycocotools' ``bbIou`` step by step: the width of the intersection first (pairs without one
    have IoU 0 and are dropped), then its height, then ``i / (da + ga - i)``; each step runs only
    on the pairs that survived the one before, with the same operations (so the same values) as
    :func:`_box_table_iou`.
    """
    width = np.minimum(np.take(g[2], pair_gt), np.take(d[2], pair_pred))
    width -= np.maximum(np.take(g[0], pair_gt), np.take(d[0], pair_pred))
    index = np.flatnonzero(width > 0)
    pair_gt, pair_pred, width = pair_gt[index], pair_pred[index], width[index]
    height = np.minimum(np.take(g[3], pair_gt), np.take(d[3], pair_pred))
    height -= np.maximum(np.take(g[1], pair_gt), np.take(d[1], pair_pred))
    index = np.flatnonzero(height > 0)
    pair_gt, pair_pred = pair_gt[index], pair_pred[index]
    inter = width[index]
    inter *= height[index]
    union = np.take(d[4], pair_pred) + np.take(g[4], pair_gt)
    union -= inter
    inter /= union
    return _at_least(pair_gt, pair_pred, inter, lowest)


def _mask_iou_pairs(
    gt_masks: list, pred_masks: list, gt_rows: np.ndarray, pred_rows: np.ndarray, pair_group: np.ndarray
) -> np.ndarray:
    """IoU of (gt, pred) pairs: one matrix product of flattened masks per (item, label) group.

    Pairs arrive sorted by group, so each group is one contiguous run.
    """
    iou = np.zeros(len(gt_rows))
    if not len(gt_rows):
        return iou
    starts = np.flatnonzero(np.r_[True, pair_group[1:] != pair_group[:-1]])
    ends = np.r_[starts[1:], len(gt_rows)]
    for start, end in zip(starts, ends, strict=True):
        g_rows, g_inv = np.unique(gt_rows[start:end], return_inverse=True)
        p_rows, p_inv = np.unique(pred_rows[start:end], return_inverse=True)
        shape = gt_masks[g_rows[0]].shape
        for field, masks, rows in (("ground_truth", gt_masks, g_rows), ("predictions", pred_masks, p_rows)):
            bad = [r for r in rows if masks[r].shape != shape]
            if bad:
                raise ValueError(
                    f"{field}.mask: row position {int(bad[0])} has shape {masks[bad[0]].shape} but the item's "
                    f"ground truth has {shape}; give every mask of an item the item's image shape"
                )
        g_stack = np.stack([gt_masks[r].ravel() for r in g_rows]).astype(np.float64)
        p_stack = np.stack([pred_masks[r].ravel() for r in p_rows]).astype(np.float64)
        inter = g_stack @ p_stack.T
        union = g_stack.sum(axis=1)[:, None] + p_stack.sum(axis=1)[None, :] - inter
        block = np.zeros_like(inter)
        np.divide(inter, union, out=block, where=union > 0)
        iou[start:end] = block[g_inv, p_inv]
    return iou
