"""IoU, matching, precision-recall curves and average precision: the app's only metrics code.

Compare Models (and anything else that scores a model) calls this module; it never talks to the
platform. Inputs are pandas DataFrames of ground truth and predictions (boxes, polygons, masks or
item-level classes); outputs are immutable result objects holding plain DataFrames and arrays.
Detection matching follows COCO (``pycocotools.cocoeval``) exactly, including its tie rules, so
``interpolation="coco"`` reproduces pycocotools' per-category AP; ``"every_point"`` and
``"11_point"`` are the PASCAL VOC 2010+ and VOC 2007 variants. Everything is vectorised: matching
runs in "rounds" (the r-th most confident prediction of every item and label at once), so the
number of Python iterations is the largest number of predictions of one label on one item, not
the number of items. :func:`match_detections` + :func:`average_precision_from_matches` give a
resampling (bootstrap) friendly path that scores many weighted copies of a dataset at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "COCO_RECALL_THRESHOLDS",
    "ClassificationEvaluation",
    "DetectionEvaluation",
    "DetectionMatches",
    "PrecisionRecallCurve",
    "average_precision",
    "average_precision_from_matches",
    "box_iou",
    "evaluate_classification",
    "evaluate_detections",
    "mask_iou",
    "match_detections",
    "polygon_iou",
    "precision_recall_curve",
]

#: The 101 recall points of COCO, built exactly as ``pycocotools`` builds them (``np.linspace``), so
#: recall values that fall on a point compare the same way.
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.00, round((1.00 - 0.0) / 0.01) + 1, endpoint=True)
#: The 11 recall points of VOC 2007 (0, 0.1, ..., 1), correctly rounded.
VOC07_RECALL_THRESHOLDS = np.arange(11) / 10.0

DETECTION_INTERPOLATIONS = ("coco", "every_point", "11_point")
CLASSIFICATION_INTERPOLATIONS = ("step", "every_point", "coco", "11_point")
GEOMETRIES = ("box", "polygon", "mask")
BOX_COLUMNS = ("left", "top", "right", "bottom")
GEOMETRY_COLUMNS = {"box": BOX_COLUMNS, "polygon": ("polygon",), "mask": ("mask",)}
#: pycocotools caps the matching threshold just below 1 so that ``iou_threshold=1`` still matches
#: identical boxes whose IoU is 1 up to rounding.
_MAX_EFFECTIVE_THRESHOLD = 1 - 1e-10
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
# Validation helpers (public functions validate here, then hand clean arrays to the core)
# --------------------------------------------------------------------------------------------


def _check_interpolation(interpolation: Any, allowed: Sequence[str], field: str) -> str:
    if not isinstance(interpolation, str) or interpolation not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{field}: {interpolation!r} is not one of {options}; example: interpolation={allowed[0]!r}")
    return interpolation


def _check_thresholds(iou_threshold: Any, field: str = "iou_threshold") -> tuple[np.ndarray, bool]:
    """Return (thresholds as float array, whether a scalar was given)."""
    scalar = np.ndim(iou_threshold) == 0
    try:
        values = np.atleast_1d(np.asarray(iou_threshold, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise ValueError(
            f"{field}: {iou_threshold!r} is not a number in (0, 1] or a sequence of them; example: {field}=0.5"
        ) from None
    if values.size == 0:
        raise ValueError(f"{field}: empty sequence; give at least one threshold in (0, 1], example: {field}=0.5")
    bad = values[~((values > 0) & (values <= 1))]
    if bad.size:
        raise ValueError(
            f"{field}: {float(bad[0])!r} is outside (0, 1]; use a threshold such as 0.5 "
            f"(or numpy.linspace(0.5, 0.95, 10) for the COCO range)"
        )
    if np.unique(values).size != values.size:
        raise ValueError(f"{field}: {values.tolist()!r} contains duplicates; list each threshold once")
    return values, scalar


def _check_frame(frame: Any, field: str, columns: Sequence[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(
            f"{field}: expected a pandas DataFrame with columns {list(columns)}, got {type(frame).__name__}"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{field}: missing column(s) {missing}; expected columns {list(columns)}")
    return frame


def _first_bad_row(frame: pd.DataFrame, mask: np.ndarray) -> Any:
    return frame.index[int(np.flatnonzero(mask)[0])]


def _float_column(frame: pd.DataFrame, column: str, field: str) -> np.ndarray:
    try:
        values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise ValueError(
            f"{field}.{column}: values must be numbers; convert the column with pandas.to_numeric"
        ) from None
    nan = np.isnan(values)
    if nan.any():
        raise ValueError(
            f"{field}.{column}: NaN at row {_first_bad_row(frame, nan)!r}; drop or fill rows with missing values"
        )
    infinite = np.isinf(values)
    if infinite.any():
        row = _first_bad_row(frame, infinite)
        raise ValueError(
            f"{field}.{column}: {float(values[infinite][0])!r} at row {row!r} is not a finite number; "
            f"drop the row or give a finite value"
        )
    return values


def _boxes_from_frame(frame: pd.DataFrame, field: str) -> np.ndarray:
    """(N, 4) float array left, top, right, bottom; checks NaN and inverted boxes."""
    left, top, right, bottom = (_float_column(frame, c, field) for c in BOX_COLUMNS)
    for low, high, name_low, name_high in ((left, right, "left", "right"), (top, bottom, "top", "bottom")):
        inverted = high < low
        if inverted.any():
            row = _first_bad_row(frame, inverted)
            raise ValueError(
                f"{field}.{name_high}: {float(high[inverted][0])!r} < {name_low} {float(low[inverted][0])!r} at row {row!r}; "
                f"boxes are (left, top, right, bottom) with {name_low} <= {name_high}"
            )
    return np.stack([left, top, right, bottom], axis=1)


def _polygons_from_frame(frame: pd.DataFrame, field: str) -> np.ndarray:
    """Array of shapely polygons (valid, made valid when needed) from a ``polygon`` column."""
    import shapely

    coords_list = []
    for row, value in zip(frame.index, frame["polygon"].to_numpy(), strict=True):
        try:
            coords = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            coords = np.empty((0,))
        if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] < 3:
            raise ValueError(
                f"{field}.polygon: row {row!r} is not an (N, 2) array of N >= 3 vertices; "
                f"example: [[0, 0], [10, 0], [10, 5]]"
            )
        if not np.isfinite(coords).all():
            raise ValueError(f"{field}.polygon: NaN or infinite vertex at row {row!r}; drop or fix the row")
        coords_list.append(coords)
    if not coords_list:
        return np.empty(0, dtype=object)
    sizes = np.array([len(c) for c in coords_list])
    ring_index = np.repeat(np.arange(len(coords_list)), sizes)
    rings = shapely.linearrings(np.concatenate(coords_list), indices=ring_index)
    polygons = shapely.polygons(rings)
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():
        logger.warning(
            "%s: %d polygon(s) are invalid (e.g. self-intersecting, first at row %r); repaired with shapely.make_valid",
            field,
            int(invalid.sum()),
            frame.index[int(np.flatnonzero(invalid)[0])],
        )
        polygons = polygons.copy()
        polygons[invalid] = shapely.make_valid(polygons[invalid])
    return polygons


def _masks_from_frame(frame: pd.DataFrame, field: str) -> list[np.ndarray]:
    masks = []
    for row, value in zip(frame.index, frame["mask"].to_numpy(), strict=True):
        mask = np.asarray(value)
        if mask.ndim != 2 or mask.dtype != np.bool_:
            raise ValueError(
                f"{field}.mask: row {row!r} is not a 2-D boolean array (got dtype {mask.dtype}, "
                f"{mask.ndim} dims); convert with numpy.asarray(mask, dtype=bool)"
            )
        masks.append(mask)
    return masks


def _sort_uniques(uniques: np.ndarray, field: str) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each unique in sorted order, sorted uniques); strings are sorted as fixed-width text."""
    values = np.asarray(uniques, dtype=object)
    try:
        if pd.api.types.infer_dtype(values, skipna=False) == "string":
            order = np.argsort(np.asarray(values.tolist(), dtype=str), kind="stable")
        else:
            order = np.argsort(values, kind="stable")
    except TypeError:
        raise ValueError(f"{field}: values of mixed, unorderable types; use one type (e.g. all str)") from None
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return rank, values[order]


def _factorize_sorted(values: np.ndarray, field: str = "item_id") -> tuple[np.ndarray, np.ndarray]:
    """Codes into the sorted unique values (hashing first, then sorting only the uniques)."""
    codes, uniques = pd.factorize(values, sort=False)
    rank, sorted_uniques = _sort_uniques(uniques, field)
    return rank[codes], sorted_uniques


def _key_codes(frame: pd.DataFrame, column: str, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Factorize one key column; a missing value is an error naming the row."""
    series = frame[column]
    values = series.to_numpy(dtype=object) if series.dtype != object else series.to_numpy()
    codes, uniques = pd.factorize(values, sort=False)
    missing = codes < 0
    if missing.any():
        raise ValueError(
            f"{field}.{column}: missing value at row {_first_bad_row(frame, missing)!r}; every row needs a {column}"
        )
    return codes, np.asarray(uniques, dtype=object)


def _codes(
    gt: pd.DataFrame, pred: pd.DataFrame, column: str, extra: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint sorted factorization of a key column of both frames -> (gt codes, pred codes, uniques)."""
    gt_codes, gt_uniques = _key_codes(gt, column, "ground_truth")
    pred_codes, pred_uniques = _key_codes(pred, column, "predictions")
    parts = [gt_uniques, pred_uniques] if extra is None else [gt_uniques, pred_uniques, extra]
    union_codes, union = pd.factorize(np.concatenate(parts), sort=False)
    rank, sorted_values = _sort_uniques(union, column)
    final = rank[union_codes]
    return (
        final[: len(gt_uniques)][gt_codes],
        final[len(gt_uniques) : len(gt_uniques) + len(pred_uniques)][pred_codes],
        sorted_values,
    )


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
# Detection evaluation
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


@dataclass(frozen=True, eq=False)
class DetectionEvaluation(_PerLabelResult):
    """Result of :func:`evaluate_detections` (immutable; ``per_label`` returns a fresh copy).

    Attributes
    ----------
    per_label : pandas.DataFrame
        Columns ``ap`` (NaN when the label has no ground truth), ``n_ground_truth``,
        ``n_predictions``, ``true_positives``, ``false_positives``. For a single threshold
        (a scalar ``iou_threshold``): one row per label, index ``label``, plus an
        ``iou_threshold`` column. For a sequence of thresholds: one row per label and threshold,
        MultiIndex ``(label, iou_threshold)`` (select one with
        ``per_label.xs(0.5, level="iou_threshold")``). Labels are sorted.
    mean_ap : float
        Mean of ``ap`` over labels with ground truth (and over thresholds: COCO's
        mAP@[.5:.95] for the 10 COCO thresholds); NaN when no label has ground truth.
    matches : DetectionMatches
        The underlying matches (reuse them for bootstrap resampling).
    interpolation : str
    """

    matches: DetectionMatches
    interpolation: str
    _per_label: pd.DataFrame
    _multi_threshold: bool

    @property
    def mean_ap_per_threshold(self) -> pd.Series:
        """Mean AP over labels with ground truth, per IoU threshold (index ``iou_threshold``)."""
        table = self._per_label
        if self._multi_threshold:
            return table.groupby(level="iou_threshold", sort=False)["ap"].mean()
        return table.groupby("iou_threshold", sort=False)["ap"].mean()

    def curve(self, label: Any, iou_threshold: float | None = None) -> PrecisionRecallCurve:
        """Precision, recall and confidence after each prediction of ``label``, most confident first.

        Parameters
        ----------
        label
            A label present in the ground truth or the predictions.
        iou_threshold : float, optional
            Which threshold's matching to use; required only if several were evaluated and you want
            another than the first.

        Examples
        --------
        >>> gt = pd.DataFrame({"item_id": ["a"], "label": ["cat"], "left": [0.0], "top": [0.0],
        ...                    "right": [10.0], "bottom": [10.0]})
        >>> evaluate_detections(gt, gt.assign(confidence=[0.7])).curve("cat")
        PrecisionRecallCurve(precision=array([1.]), recall=array([1.]), confidence=array([0.7]))
        """
        m = self.matches
        hits = np.flatnonzero(m.labels == label) if len(m.labels) else np.empty(0, dtype=int)
        if hits.size == 0:
            raise ValueError(f"curve.label: {label!r} is not in the evaluated labels {list(m.labels)}")
        k = int(hits[0])
        t = 0
        if iou_threshold is not None:
            close = np.flatnonzero(np.isclose(m.iou_thresholds, iou_threshold, rtol=0, atol=1e-12))
            if close.size == 0:
                raise ValueError(
                    f"curve.iou_threshold: {iou_threshold!r} was not evaluated; choose one of {m.iou_thresholds.tolist()}"
                )
            t = int(close[0])
        lo, hi = m.label_start[k], m.label_start[k + 1]
        n_gt = int(m.n_ground_truth[k])
        precision, recall = precision_recall_curve(m.is_true_positive[t, lo:hi], n_gt)
        return PrecisionRecallCurve(precision, recall, m.det_confidence[lo:hi].copy())


def evaluate_detections(
    ground_truth: pd.DataFrame,
    predictions: pd.DataFrame,
    iou_threshold: float | Sequence[float] = 0.5,
    interpolation: str = "coco",
    geometry: str = "box",
) -> DetectionEvaluation:
    """Per-label average precision of detections (boxes, polygons or masks) against ground truth.

    Parameters
    ----------
    ground_truth : pandas.DataFrame
        ``item_id``, ``label`` and the geometry columns: ``left, top, right, bottom`` for boxes,
        ``polygon`` ((N, 2) vertex arrays) or ``mask`` (2-D boolean arrays, one shape per item).
    predictions : pandas.DataFrame
        The same columns plus ``confidence``.
    iou_threshold : float or sequence of float, default 0.5
        In (0, 1]. A sequence such as ``numpy.linspace(0.5, 0.95, 10)`` is evaluated in one pass.
    interpolation : {"coco", "every_point", "11_point"}, default "coco"
        ``"coco"``: 101 recall points as pycocotools; ``"every_point"``: VOC 2010+ area under the
        precision envelope; ``"11_point"``: VOC 2007.
    geometry : {"box", "polygon", "mask"}, default "box"

    Returns
    -------
    DetectionEvaluation
        ``per_label``, ``mean_ap``, ``curve(label)`` and the ``matches``.

    Raises
    ------
    ValueError
        Missing columns, NaN or ±inf coordinates or confidences (the message names the column),
        ``right < left`` / ``bottom < top``,
        a threshold outside (0, 1], an unknown interpolation or geometry.

    Notes
    -----
    Matching is COCO's (see :func:`match_detections`). Detections of a label are accumulated in
    descending confidence; ties are ordered by item id (sorted), then input row, which is the order
    pycocotools uses when image ids follow the sorted item ids. A label with ground truth and no
    predictions has AP 0; a label with predictions but no ground truth has AP NaN and is left out of
    ``mean_ap``. Empty inputs give an empty ``per_label`` and ``mean_ap`` NaN.

    Examples
    --------
    >>> gt = pd.DataFrame({"item_id": ["a", "a"], "label": ["cat", "dog"],
    ...                    "left": [0.0, 20.0], "top": [0.0, 0.0], "right": [10.0, 30.0],
    ...                    "bottom": [10.0, 10.0]})
    >>> pred = gt.assign(confidence=[0.9, 0.8], left=[0.0, 29.0])
    >>> result = evaluate_detections(gt, pred, iou_threshold=0.5)
    >>> result.per_label["ap"].to_dict()
    {'cat': 1.0, 'dog': 0.0}
    >>> result.mean_ap
    0.5
    """
    interpolation = _check_interpolation(interpolation, DETECTION_INTERPOLATIONS, "evaluate_detections.interpolation")
    thresholds, scalar = _check_thresholds(iou_threshold, "evaluate_detections.iou_threshold")
    matches = match_detections(ground_truth, predictions, thresholds, geometry)
    ap = average_precision_from_matches(matches, interpolation=interpolation)  # (L, T)
    per_label = _detection_table(matches, ap, scalar)
    logger.debug(
        "evaluated %d predictions against %d ground truth over %d labels at %d IoU threshold(s)",
        len(matches.det_row),
        int(matches.gt_count.sum()),
        len(matches.labels),
        len(thresholds),
    )
    return DetectionEvaluation(matches, interpolation, per_label, not scalar)


def _detection_table(matches: DetectionMatches, ap: np.ndarray, scalar: bool) -> pd.DataFrame:
    n_labels = len(matches.labels)
    thresholds = matches.iou_thresholds
    n_t = len(thresholds)
    n_pred = np.diff(matches.label_start)
    tp = matches.is_true_positive
    tp_cum = np.zeros((n_t, tp.shape[1] + 1), dtype=np.int64)
    np.cumsum(tp, axis=1, out=tp_cum[:, 1:])
    tp_per_label = tp_cum[:, matches.label_start[1:]] - tp_cum[:, matches.label_start[:-1]]  # (T, L)
    n_gt = matches.n_ground_truth
    frame = pd.DataFrame(
        {
            "ap": ap.ravel(),
            "n_ground_truth": np.repeat(n_gt, n_t),
            "n_predictions": np.repeat(n_pred, n_t),
            "true_positives": tp_per_label.T.ravel(),
            "false_positives": (np.repeat(n_pred, n_t) - tp_per_label.T.ravel()),
            "iou_threshold": np.tile(thresholds, n_labels),
        }
    )
    label_values = pd.Index(np.repeat(matches.labels, n_t), name="label")
    if scalar:
        frame.index = label_values
        return frame
    frame.index = pd.MultiIndex.from_arrays(
        [label_values, pd.Index(frame["iou_threshold"].to_numpy(), name="iou_threshold")]
    )
    return frame.drop(columns="iou_threshold")


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


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
