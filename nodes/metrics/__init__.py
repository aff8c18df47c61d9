"""IoU, matching, precision-recall curves and average precision: the app's only metrics code.

Pure numpy/pandas (shapely for polygons); never talks to the platform. Modules by concern:
``inputs`` (checks, key factorisation), ``iou`` (boxes, polygons, masks), ``matching`` (COCO
matching in memory-bounded blocks), ``ap`` (curves and AP, plain and weighted for bootstrap),
``detection`` and ``classification`` (per-label evaluations). Detection results equal
``pycocotools.cocoeval``'s per-category AP for ``interpolation="coco"``; see docs/metrics.md.
"""

from nodes.metrics.ap import (
    COCO_RECALL_THRESHOLDS,
    VOC07_RECALL_THRESHOLDS,
    PrecisionRecallCurve,
    average_precision,
    average_precision_from_matches,
    precision_recall_curve,
)
from nodes.metrics.classification import ClassificationEvaluation, evaluate_classification
from nodes.metrics.detection import DetectionEvaluation, evaluate_detections
from nodes.metrics.inputs import (
    BOX_COLUMNS,
    CLASSIFICATION_INTERPOLATIONS,
    DETECTION_INTERPOLATIONS,
    GEOMETRIES,
    GEOMETRY_COLUMNS,
)
from nodes.metrics.iou import box_iou, mask_iou, polygon_iou
from nodes.metrics.matching import DEFAULT_BLOCK_PAIRS, DetectionMatches, MatchingStats, match_detections

__all__ = [
    "BOX_COLUMNS",
    "CLASSIFICATION_INTERPOLATIONS",
    "COCO_RECALL_THRESHOLDS",
    "DEFAULT_BLOCK_PAIRS",
    "DETECTION_INTERPOLATIONS",
    "GEOMETRIES",
    "GEOMETRY_COLUMNS",
    "VOC07_RECALL_THRESHOLDS",
    "ClassificationEvaluation",
    "DetectionEvaluation",
    "DetectionMatches",
    "MatchingStats",
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
