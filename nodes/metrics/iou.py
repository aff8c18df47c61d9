"""IoU of boxes (pycocotools' arithmetic), polygons (shapely) and masks (pixel counts), matrix or pairwise."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from nodes.metrics.inputs import _polygons_from_frame

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# IoU
# --------------------------------------------------------------------------------------------


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
    """(5, N) rows left, top, right, bottom, area as pycocotools sees them (x + w recomputed)."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    return np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 0] + width, boxes[:, 1] + height, width * height])


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


def _pair_iou(
    gt_geom: Any,
    pred_geom: Any,
    gt_order: np.ndarray,
    pred_order: np.ndarray,
    pair_gt: np.ndarray,
    pair_pred: np.ndarray,
    pred_key_sorted: np.ndarray,
    geometry: str,
) -> np.ndarray:
    """IoU of each candidate pair; ``pair_gt`` / ``pair_pred`` index the group-sorted rows."""
    if geometry == "box":
        # COCO's bbIou: ground truth is "g", detection "d"; gather from group-sorted copies
        # (np.take is much faster than fancy indexing along the second axis)
        gt_pairs = np.take(_box_table(gt_geom), gt_order[pair_gt], axis=1)
        pred_pairs = np.take(_box_table(pred_geom), pred_order[pair_pred], axis=1)
        return _box_table_iou(gt_pairs, pred_pairs)
    if geometry == "polygon":
        return _polygon_iou_pairs(gt_geom[gt_order[pair_gt]], pred_geom[pred_order[pair_pred]])
    return _mask_iou_pairs(gt_geom, pred_geom, gt_order[pair_gt], pred_order[pair_pred], pred_key_sorted[pair_pred])


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
