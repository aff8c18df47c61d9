"""nodes.metrics against the references the field trusts: pycocotools, scikit-learn, shapely.

Random data (hypothesis and fixed seeds) is quantised so that confidences tie, boxes coincide and
IoUs land exactly on thresholds -- the cases where implementations usually disagree.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import average_precision_score

from nodes import metrics

COCO_THRESHOLDS = np.linspace(0.5, 0.95, 10)
HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------------
# Random detection data
# ------------------------------------------------------------------------------------------------


def random_detections(
    seed: int, n_items: int, max_boxes: int, n_labels: int, step: float = 1.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ground truth and predictions on a coarse grid; about half the predictions are jittered GT."""
    rng = np.random.default_rng(seed)
    labels = [f"label_{k}" for k in range(n_labels)]
    item_names = [f"item_{i:04d}" for i in rng.permutation(n_items)]
    gt_rows, pred_rows = [], []
    for item in item_names:
        n_gt = int(rng.integers(0, max_boxes + 1))
        n_pred = int(rng.integers(0, max_boxes + 1))
        gt_boxes = []
        for _ in range(n_gt):
            left, top = rng.integers(0, 12, size=2)
            width, height = rng.integers(0, 8, size=2)
            box = (left * step, top * step, (left + width) * step, (top + height) * step)
            gt_boxes.append(box)
            gt_rows.append((item, labels[rng.integers(n_labels)], *box))
        for _ in range(n_pred):
            if gt_boxes and rng.random() < 0.6:
                base = np.array(gt_boxes[rng.integers(len(gt_boxes))])
                jitter = rng.integers(-1, 2, size=4) * step * (rng.random() < 0.7)
                left, top, right, bottom = base + jitter
                right, bottom = max(right, left), max(bottom, top)
            else:
                left, top = rng.integers(0, 12, size=2) * step
                right, bottom = left + rng.integers(0, 8) * step, top + rng.integers(0, 8) * step
            confidence = rng.integers(1, 8) / 8
            pred_rows.append((item, labels[rng.integers(n_labels)], left, top, right, bottom, confidence))
    columns = ["item_id", "label", "left", "top", "right", "bottom"]
    gt = pd.DataFrame(gt_rows, columns=columns)
    pred = pd.DataFrame(pred_rows, columns=[*columns, "confidence"])
    for frame in (gt, pred):
        frame[["left", "top", "right", "bottom"]] = frame[["left", "top", "right", "bottom"]].astype(float)
    return gt, pred


def pycocotools_ap(gt: pd.DataFrame, pred: pd.DataFrame, thresholds) -> dict:
    """{(label, threshold): AP} from COCOeval (bbox, areaRng all, maxDets high); NaN for no GT."""
    items = sorted(set(gt["item_id"]) | set(pred["item_id"]))
    labels = sorted(set(gt["label"]) | set(pred["label"]))
    image_id = {item: i + 1 for i, item in enumerate(items)}
    category_id = {label: k + 1 for k, label in enumerate(labels)}
    images = [{"id": i} for i in image_id.values()]
    categories = [{"id": c, "name": str(label)} for label, c in category_id.items()]

    def annotations(frame: pd.DataFrame, with_score: bool) -> list:
        out = []
        for n, row in enumerate(frame.itertuples(index=False)):
            w, h = row.right - row.left, row.bottom - row.top
            ann = {
                "id": n + 1,
                "image_id": image_id[row.item_id],
                "category_id": category_id[row.label],
                "bbox": [row.left, row.top, w, h],
                "area": w * h,
                "iscrowd": 0,
            }
            if with_score:
                ann["score"] = row.confidence
            out.append(ann)
        return out

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "categories": categories, "annotations": annotations(gt, False)}
        coco_gt.createIndex()
        coco_dt = COCO()
        coco_dt.dataset = {"images": images, "categories": categories, "annotations": annotations(pred, True)}
        coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.iouThrs = np.asarray(thresholds, dtype=float)
        evaluator.params.areaRng = [[0, 1e10]]
        evaluator.params.areaRngLbl = ["all"]
        evaluator.params.maxDets = [100_000]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"]  # T x R x K x A x M
    result = {}
    for t, threshold in enumerate(thresholds):
        for label, c in category_id.items():
            values = precision[t, :, c - 1, 0, 0]
            result[(label, float(threshold))] = np.nan if (values == -1).all() else float(values.mean())
    return result


def our_ap(gt, pred, thresholds, interpolation="coco") -> dict:
    evaluation = metrics.evaluate_detections(gt, pred, iou_threshold=list(thresholds), interpolation=interpolation)
    table = evaluation.per_label
    return {(label, float(t)): ap for (label, t), ap in table["ap"].items()}


def assert_same_ap(ours: dict, reference: dict) -> None:
    assert set(ours) == set(reference)
    for key, expected in reference.items():
        if np.isnan(expected):
            assert np.isnan(ours[key]), key
        else:
            assert ours[key] == pytest.approx(expected, abs=1e-9), key


# ------------------------------------------------------------------------------------------------
# COCO
# ------------------------------------------------------------------------------------------------

data_params = st.tuples(
    st.integers(0, 2**32 - 1),  # seed
    st.integers(1, 200),  # items
    st.integers(0, 30),  # max boxes per item
    st.integers(1, 5),  # labels
    st.sampled_from([1.0, 0.5, 0.1]),  # grid step (0.1: inexact binary fractions)
)


@HYPOTHESIS
@given(params=data_params, threshold=st.sampled_from([0.5, 0.75]))
def test_coco_ap_equals_pycocotools_at_one_threshold(params, threshold):
    seed, n_items, max_boxes, n_labels, step = params
    gt, pred = random_detections(seed, n_items, max_boxes, n_labels, step)
    assert_same_ap(our_ap(gt, pred, [threshold]), pycocotools_ap(gt, pred, [threshold]))


@settings(max_examples=10, deadline=None)
@given(params=data_params)
def test_coco_ap_equals_pycocotools_for_the_ten_coco_thresholds(params):
    seed, n_items, max_boxes, n_labels, step = params
    gt, pred = random_detections(seed, n_items, max_boxes, n_labels, step)
    assert_same_ap(our_ap(gt, pred, COCO_THRESHOLDS), pycocotools_ap(gt, pred, COCO_THRESHOLDS))


@pytest.mark.parametrize(
    ("seed", "n_items", "max_boxes", "n_labels", "step"),
    [(0, 200, 30, 5, 1.0), (1, 200, 30, 1, 0.5), (2, 1, 30, 3, 1.0), (3, 150, 3, 2, 0.1), (4, 200, 0, 2, 1.0)],
)
def test_coco_ap_equals_pycocotools_fixed_seeds(seed, n_items, max_boxes, n_labels, step):
    gt, pred = random_detections(seed, n_items, max_boxes, n_labels, step)
    thresholds = [0.5, 0.75, *COCO_THRESHOLDS[[1, 2, 4, 6, 8]]]
    ours = our_ap(gt, pred, thresholds)
    assert_same_ap(ours, pycocotools_ap(gt, pred, thresholds))
    # and the scalar call gives the same numbers as the sequence call
    single = metrics.evaluate_detections(gt, pred, iou_threshold=0.75).per_label["ap"]
    for label, ap in single.items():
        assert (np.isnan(ap) and np.isnan(ours[(label, 0.75)])) or ap == ours[(label, 0.75)]


def test_threshold_one_matches_identical_boxes_as_pycocotools():
    gt, pred = random_detections(7, 40, 8, 2, 0.1)
    assert_same_ap(our_ap(gt, pred, [1.0]), pycocotools_ap(gt, pred, [1.0]))


def test_rows_shuffled_within_ties_only_change_what_pycocotools_changes():
    # ordering is part of COCO's definition on ties: shuffling rows must still agree with pycocotools
    gt, pred = random_detections(11, 80, 12, 3, 1.0)
    shuffled = pred.sample(frac=1.0, random_state=3)
    assert_same_ap(our_ap(gt, shuffled, [0.5]), pycocotools_ap(gt, shuffled, [0.5]))


# ------------------------------------------------------------------------------------------------
# VOC interpolations against an obviously-correct reference
# ------------------------------------------------------------------------------------------------


def reference_detection_flags(gt: pd.DataFrame, pred: pd.DataFrame, threshold: float) -> dict:
    """Per label: (list of (confidence, tp) in accumulation order, n_gt), by plain loops."""
    out = {}
    items = sorted(set(gt["item_id"]) | set(pred["item_id"]))
    for label in sorted(set(gt["label"]) | set(pred["label"])):
        detections = []
        n_gt = int((gt["label"] == label).sum())
        for item in items:
            g = gt[(gt["item_id"] == item) & (gt["label"] == label)]
            p = pred[(pred["item_id"] == item) & (pred["label"] == label)]
            p = p.iloc[np.argsort(-p["confidence"].to_numpy(), kind="stable")]
            used = [False] * len(g)
            g_boxes = g[["left", "top", "right", "bottom"]].to_numpy()
            for row in p.itertuples(index=False):
                best, best_iou = -1, min(threshold, 1 - 1e-10)
                for j, gb in enumerate(g_boxes):
                    if used[j]:
                        continue
                    iou = metrics.box_iou([gb], [[row.left, row.top, row.right, row.bottom]])[0, 0]
                    if iou >= best_iou:
                        best, best_iou = j, iou
                if best >= 0:
                    used[best] = True
                detections.append((row.confidence, best >= 0))
        order = np.argsort([-c for c, _ in detections], kind="stable")
        out[label] = ([detections[i][1] for i in order], n_gt)
    return out


def voc_reference(tp_flags: list, n_gt: int, interpolation: str) -> float:
    """PASCAL VOC devkit's voc_ap, written out with loops."""
    if n_gt == 0:
        return float("nan")
    tp = fp = 0
    precision, recall = [], []
    for flag in tp_flags:
        tp += flag
        fp += not flag
        precision.append(tp / (tp + fp))
        recall.append(tp / n_gt)
    if interpolation == "11_point":
        total = 0.0
        for t in [k / 10 for k in range(11)]:
            candidates = [p for p, r in zip(precision, recall, strict=True) if r >= t]
            total += max(candidates) if candidates else 0.0
        return total / 11
    mrec = [0.0, *recall, 1.0]
    mpre = [0.0, *precision, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_items=st.integers(1, 25),
    max_boxes=st.integers(0, 10),
    n_labels=st.integers(1, 4),
    threshold=st.sampled_from([0.3, 0.5, 0.75]),
    interpolation=st.sampled_from(["every_point", "11_point"]),
)
def test_voc_interpolations_equal_the_reference(seed, n_items, max_boxes, n_labels, threshold, interpolation):
    gt, pred = random_detections(seed, n_items, max_boxes, n_labels)
    evaluation = metrics.evaluate_detections(gt, pred, iou_threshold=threshold, interpolation=interpolation)
    table = evaluation.per_label
    reference = reference_detection_flags(gt, pred, threshold)
    assert sorted(table.index) == sorted(reference)
    for label, (flags, n_gt) in reference.items():
        expected = voc_reference(flags, n_gt, interpolation)
        got = table.loc[label, "ap"]
        assert (np.isnan(expected) and np.isnan(got)) or got == pytest.approx(expected, abs=1e-12), label
        assert table.loc[label, "true_positives"] == sum(flags)
        assert table.loc[label, "false_positives"] == len(flags) - sum(flags)
        assert table.loc[label, "n_ground_truth"] == n_gt


# ------------------------------------------------------------------------------------------------
# Classification against scikit-learn
# ------------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_items=st.integers(1, 120),
    n_labels=st.integers(1, 5),
    levels=st.sampled_from([3, 10, 1000]),
)
def test_classification_step_equals_sklearn(seed, n_items, n_labels, levels):
    rng = np.random.default_rng(seed)
    labels = [f"c{k}" for k in range(n_labels)]
    items = [f"i{n}" for n in range(n_items)]
    truth = rng.random((n_items, n_labels)) < 0.3  # multi-label
    predicted = rng.random((n_items, n_labels)) < 0.7
    scores = rng.integers(0, levels, size=(n_items, n_labels)) / levels
    gt = pd.DataFrame(
        [(items[i], labels[k]) for i, k in zip(*np.nonzero(truth), strict=True)], columns=["item_id", "label"]
    )
    pred = pd.DataFrame(
        [(items[i], labels[k], scores[i, k]) for i, k in zip(*np.nonzero(predicted), strict=True)],
        columns=["item_id", "label", "confidence"],
    )
    result = metrics.evaluate_classification(gt, pred, item_ids=items).per_label
    for k, label in enumerate(labels):
        present = label in result.index
        if not truth[:, k].any():
            assert not present or np.isnan(result.loc[label, "ap"])
            continue
        # an item without a prediction for the label scores below every predicted item
        y_score = np.where(predicted[:, k], scores[:, k], -1.0)
        expected = average_precision_score(truth[:, k], y_score)
        assert result.loc[label, "ap"] == pytest.approx(expected, abs=1e-12)
        assert result.loc[label, "n_ground_truth"] == truth[:, k].sum()
        assert result.loc[label, "n_predictions"] == predicted[:, k].sum()


# ------------------------------------------------------------------------------------------------
# Polygons and masks
# ------------------------------------------------------------------------------------------------


def random_polygon(rng: np.random.Generator, scale: float = 40.0) -> np.ndarray:
    """A polygon star-shaped around its centre (one vertex per angular sector), hence simple."""
    n = int(rng.integers(3, 9))
    angles = 2 * np.pi * (np.arange(n) + rng.uniform(0, 0.8, n)) / n
    radii = rng.uniform(0.3, 1.0, n) * scale / 4
    centre = rng.uniform(scale / 4, 3 * scale / 4, 2)
    return np.c_[centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_a=st.integers(1, 6), n_b=st.integers(1, 6))
def test_polygon_iou_equals_shapely_area_ratio(seed, n_a, n_b):
    rng = np.random.default_rng(seed)
    a = [random_polygon(rng) for _ in range(n_a)]
    b = [random_polygon(rng) for _ in range(n_b)]
    got = metrics.polygon_iou(a, b)
    for i, pa in enumerate(a):
        for j, pb in enumerate(b):
            sa, sb = shapely.Polygon(pa), shapely.Polygon(pb)
            expected = sa.intersection(sb).area / sa.union(sb).area
            assert got[i, j] == pytest.approx(expected, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_a=st.integers(1, 5), n_b=st.integers(1, 5))
def test_mask_iou_equals_boolean_count_ratio(seed, n_a, n_b):
    rng = np.random.default_rng(seed)
    a = [rng.random((9, 13)) < rng.random() for _ in range(n_a)]
    b = [rng.random((9, 13)) < rng.random() for _ in range(n_b)]
    got = metrics.mask_iou(a, b)
    for i, ma in enumerate(a):
        for j, mb in enumerate(b):
            union = np.count_nonzero(ma | mb)
            expected = np.count_nonzero(ma & mb) / union if union else 0.0
            assert got[i, j] == expected


def rasterise(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixel (x, y) covers [x, x+1) x [y, y+1); it is inside when its centre is."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    return shapely.contains_xy(shapely.Polygon(polygon), xs + 0.5, ys + 0.5)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_items=st.integers(1, 6))
def test_rasterised_polygons_give_the_same_matches(seed, n_items):
    rng = np.random.default_rng(seed)
    shape = (64, 64)
    gt_rows, pred_rows = [], []
    for item in range(n_items):
        # axis-aligned integer rectangles rasterise exactly (same areas, so the same IoUs) ...
        for _ in range(int(rng.integers(0, 5))):
            x0, y0 = rng.integers(3, 40, 2)  # shifted copies stay inside the image
            w, h = rng.integers(4, 20, 2)
            rect = np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]], dtype=float)
            label = f"l{rng.integers(2)}"
            gt_rows.append((f"it{item}", label, rect))
            shift = rng.integers(-3, 4, 2)
            pred_rows.append((f"it{item}", label, rect + shift, float(rng.integers(1, 5) / 4)))
        # ... and large star polygons are kept only when no IoU is near a threshold (below)
        for _ in range(int(rng.integers(0, 3))):
            poly = random_polygon(rng, scale=64)
            gt_rows.append((f"it{item}", "star", poly))
            pred_rows.append((f"it{item}", "star", poly + rng.uniform(-4, 4, 2), float(rng.random())))
    gt = pd.DataFrame(gt_rows, columns=["item_id", "label", "polygon"])
    pred = pd.DataFrame(pred_rows, columns=["item_id", "label", "polygon", "confidence"])
    as_mask = lambda frame: frame.assign(mask=[rasterise(p, shape) for p in frame["polygon"]]).drop(columns="polygon")  # noqa: E731
    gt_mask, pred_mask = as_mask(gt), as_mask(pred)
    thresholds = [0.3, 0.5, 0.7]

    # rectangles: always the same matches (their IoUs are equal, checked here too)
    rect_gt = gt.index[gt["label"] != "star"]
    rect_pred = pred.index[pred["label"] != "star"]
    by_polygon = metrics.match_detections(gt.loc[rect_gt], pred.loc[rect_pred], thresholds, "polygon")
    by_mask = metrics.match_detections(gt_mask.loc[rect_gt], pred_mask.loc[rect_pred], thresholds, "mask")
    np.testing.assert_array_equal(by_polygon.det_row, by_mask.det_row)
    np.testing.assert_array_equal(by_polygon.det_matched_row, by_mask.det_matched_row)
    # everything, when no star IoU is near a threshold (rasterisation moves IoU by a few percent)
    for (item, label), g in gt.groupby(["item_id", "label"]):
        p = pred[(pred["item_id"] == item) & (pred["label"] == label)]
        poly_iou = metrics.polygon_iou(list(g["polygon"]), list(p["polygon"]))
        mask_iou = metrics.mask_iou(list(gt_mask.loc[g.index, "mask"]), list(pred_mask.loc[p.index, "mask"]))
        if label != "star":
            np.testing.assert_allclose(poly_iou, mask_iou, atol=1e-12)
        elif np.abs(np.stack([poly_iou, mask_iou])[..., None] - np.array(thresholds)).min() < 0.08:
            return
    by_polygon = metrics.match_detections(gt, pred, thresholds, geometry="polygon")
    by_mask = metrics.match_detections(gt_mask, pred_mask, thresholds, geometry="mask")
    np.testing.assert_array_equal(by_polygon.det_row, by_mask.det_row)
    np.testing.assert_array_equal(by_polygon.det_matched_row, by_mask.det_matched_row)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_items=st.integers(1, 40), n_labels=st.integers(1, 3))
def test_boxes_given_as_polygons_give_the_pycocotools_verified_box_result(seed, n_items, n_labels):
    gt, pred = random_detections(seed, n_items, 8, n_labels, 1.0)
    # integer rectangles: shapely areas are exact, so IoUs (and ties) equal the box path's
    gt = gt[(gt["right"] > gt["left"]) & (gt["bottom"] > gt["top"])].reset_index(drop=True)
    pred = pred[(pred["right"] > pred["left"]) & (pred["bottom"] > pred["top"])].reset_index(drop=True)

    def as_polygons(frame: pd.DataFrame) -> pd.DataFrame:
        corners = [
            np.array([[r.left, r.top], [r.right, r.top], [r.right, r.bottom], [r.left, r.bottom]])
            for r in frame.itertuples(index=False)
        ]
        return frame.drop(columns=["left", "top", "right", "bottom"]).assign(polygon=corners)

    thresholds = [0.5, 0.75]
    by_box = metrics.match_detections(gt, pred, thresholds)
    by_polygon = metrics.match_detections(as_polygons(gt), as_polygons(pred), thresholds, geometry="polygon")
    np.testing.assert_array_equal(by_box.det_row, by_polygon.det_row)
    np.testing.assert_array_equal(by_box.det_matched_row, by_polygon.det_matched_row)
