"""Per-label detection AP: :func:`evaluate_detections` and its immutable result."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nodes.metrics.ap import (
    PrecisionRecallCurve,
    _PerLabelResult,
    average_precision_from_matches,
    precision_recall_curve,
)
from nodes.metrics.inputs import DETECTION_INTERPOLATIONS, _check_interpolation, _check_thresholds
from nodes.metrics.matching import DEFAULT_BLOCK_PAIRS, DetectionMatches, match_detections

logger = logging.getLogger(__name__)


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
    block_pairs: int = DEFAULT_BLOCK_PAIRS,
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
    block_pairs : int, default 2**19
        Bound on the candidate pairs held at once by the matching (memory, not results).

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
    matches = match_detections(ground_truth, predictions, thresholds, geometry, block_pairs)
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
