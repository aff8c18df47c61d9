"""nodes.metrics: matching rules, result shapes, edge cases, validation and the resampling path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import metrics

BOX = ["left", "top", "right", "bottom"]


def boxes(rows, confidence: bool = False) -> pd.DataFrame:
    """rows: (item, label, left, top, right, bottom[, confidence])."""
    columns = ["item_id", "label", *BOX] + (["confidence"] if confidence else [])
    frame = pd.DataFrame(rows, columns=columns)
    frame[BOX] = frame[BOX].astype(float)
    return frame


def random_frames(seed: int, n_items: int = 40, per_item: int = 6, n_labels: int = 3):
    """Continuous coordinates and confidences (no ties), predictions near ground truth."""
    rng = np.random.default_rng(seed)
    gt_rows, pred_rows = [], []
    for i in range(n_items):
        for _ in range(int(rng.integers(0, per_item + 1))):
            x, y = rng.uniform(0, 80, 2)
            w, h = rng.uniform(5, 30, 2)
            label = f"l{rng.integers(n_labels)}"
            gt_rows.append((f"i{i:03d}", label, x, y, x + w, y + h))
            if rng.random() < 0.8:
                dx, dy = rng.normal(0, 3, 2)
                pred_rows.append((f"i{i:03d}", label, x + dx, y + dy, x + w + dx, y + h + dy, rng.random()))
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.uniform(0, 80, 2)
            pred_rows.append((f"i{i:03d}", f"l{rng.integers(n_labels)}", x, y, x + 10, y + 10, rng.random()))
    return boxes(gt_rows), boxes(pred_rows, confidence=True)


# ------------------------------------------------------------------------------------------------
# IoU
# ------------------------------------------------------------------------------------------------


def test_box_iou_values():
    iou = metrics.box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10], [2, 2, 4, 4]])
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0, 4 / 100]])


def test_box_iou_of_empty_and_degenerate_boxes_is_zero():
    iou = metrics.box_iou([[0, 0, 0, 10], [3, 3, 3, 3]], [[0, 0, 0, 10], [3, 3, 3, 3], [0, 0, 10, 10]])
    assert np.array_equal(iou, np.zeros((2, 3)))
    assert metrics.box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_box_iou_pairwise_is_the_diagonal():
    a = np.array([[0, 0, 4, 4], [1, 1, 3, 5.5]])
    b = np.array([[2, 2, 6, 6], [0, 0, 2, 2]])
    np.testing.assert_array_equal(metrics.box_iou(a, b, pairwise=True), np.diag(metrics.box_iou(a, b)))
    with pytest.raises(ValueError, match="pairwise"):
        metrics.box_iou(a, b[:1], pairwise=True)


def test_polygon_iou_triangle_and_square():
    square = [[0, 0], [4, 0], [4, 4], [0, 4]]
    triangle = [[0, 0], [4, 0], [0, 4]]
    assert metrics.polygon_iou([square], [triangle])[0, 0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="N >= 3"):
        metrics.polygon_iou([[[0, 0], [1, 1]]], [square])


def test_mask_iou_rejects_different_shapes():
    with pytest.raises(ValueError, match="differ in size"):
        metrics.mask_iou([np.ones((2, 2), bool)], [np.ones((3, 3), bool)])


# ------------------------------------------------------------------------------------------------
# Matching rules
# ------------------------------------------------------------------------------------------------


def test_labels_never_match_each_other():
    gt = boxes([("a", "cat", 0, 0, 10, 10)])
    pred = boxes([("a", "dog", 0, 0, 10, 10, 0.9)], confidence=True)
    result = metrics.evaluate_detections(gt, pred)
    table = result.per_label
    assert table.loc["cat", "ap"] == 0.0 and table.loc["cat", "n_predictions"] == 0
    assert math.isnan(table.loc["dog", "ap"]) and table.loc["dog", "false_positives"] == 1
    assert result.mean_ap == 0.0  # dog (no ground truth) is left out


def test_counts_when_the_last_labels_have_no_predictions():
    gt = boxes(
        [("a", "ant", 0, 0, 10, 10), ("a", "zebra", 0, 0, 10, 10), ("b", "yak", 0, 0, 5, 5), ("b", "ant", 0, 0, 5, 5)]
    )
    pred = boxes([("a", "ant", 0, 0, 10, 10, 0.9), ("b", "ant", 0, 0, 5, 5, 0.8)], confidence=True)
    table = metrics.evaluate_detections(gt, pred).per_label
    assert table["true_positives"].to_dict() == {"ant": 2, "yak": 0, "zebra": 0}
    assert table["false_positives"].to_dict() == {"ant": 0, "yak": 0, "zebra": 0}
    assert table["ap"].to_dict() == {"ant": 1.0, "yak": 0.0, "zebra": 0.0}


def test_items_never_match_each_other():
    gt = boxes([("a", "cat", 0, 0, 10, 10)])
    pred = boxes([("b", "cat", 0, 0, 10, 10, 0.9)], confidence=True)
    assert metrics.evaluate_detections(gt, pred).per_label.loc["cat", "true_positives"] == 0


def test_more_confident_prediction_takes_the_ground_truth_first():
    gt = boxes([("a", "cat", 0, 0, 10, 10)])
    # the worse box is more confident: it matches (IoU 0.64 >= 0.5) and the perfect box is a FP
    pred = boxes([("a", "cat", 0, 0, 10, 10, 0.5), ("a", "cat", 0, 0, 8, 8, 0.9)], confidence=True)
    matches = metrics.match_detections(gt, pred)
    assert matches.det_row.tolist() == [1, 0]
    assert matches.det_matched_row.tolist() == [[0, -1]]


def test_prediction_takes_the_highest_iou_ground_truth_and_each_ground_truth_once():
    gt = boxes([("a", "cat", 0, 0, 10, 10), ("a", "cat", 1, 0, 11, 10)])
    pred = boxes([("a", "cat", 1, 0, 11, 10, 0.9), ("a", "cat", 1, 0, 11, 10, 0.8)], confidence=True)
    matches = metrics.match_detections(gt, pred)
    # first prediction: exact match with gt row 1; second: gt row 0 (IoU 9/11 >= 0.5)
    assert matches.det_matched_row.tolist() == [[1, 0]]


def test_equal_iou_goes_to_the_last_ground_truth_as_in_pycocotools():
    gt = boxes([("a", "cat", 0, 0, 10, 10), ("a", "cat", 0, 0, 10, 10)])
    pred = boxes([("a", "cat", 0, 0, 10, 10, 0.9)], confidence=True)
    assert metrics.match_detections(gt, pred).det_matched_row.tolist() == [[1]]


def test_confidence_ties_keep_input_order():
    gt = boxes([("a", "cat", 0, 0, 10, 10)])
    pred = boxes([("a", "cat", 0, 0, 10, 9, 0.7), ("a", "cat", 0, 0, 10, 10, 0.7)], confidence=True)
    matches = metrics.match_detections(gt, pred)
    assert matches.det_row.tolist() == [0, 1]
    assert matches.det_matched_row.tolist() == [[0, -1]]


def test_threshold_is_inclusive_and_per_threshold():
    gt = boxes([("a", "cat", 0, 0, 10, 10)])
    pred = boxes([("a", "cat", 0, 0, 10, 5, 0.9)], confidence=True)  # IoU exactly 0.5
    matches = metrics.match_detections(gt, pred, iou_threshold=[0.5, 0.55])
    assert matches.is_true_positive.tolist() == [[True], [False]]


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


def test_per_label_table_for_one_threshold():
    gt, pred = random_frames(1)
    table = metrics.evaluate_detections(gt, pred, iou_threshold=0.5).per_label
    assert table.index.name == "label"
    assert list(table.columns) == [
        "ap",
        "n_ground_truth",
        "n_predictions",
        "true_positives",
        "false_positives",
        "iou_threshold",
    ]
    assert (table["true_positives"] + table["false_positives"] == table["n_predictions"]).all()
    assert table["n_ground_truth"].to_dict() == gt.groupby("label").size().to_dict()
    assert table["n_predictions"].to_dict() == pred.groupby("label").size().to_dict()
    assert (table["iou_threshold"] == 0.5).all()


def test_per_label_table_for_several_thresholds_has_label_threshold_index():
    gt, pred = random_frames(2)
    thresholds = np.linspace(0.5, 0.95, 10)
    result = metrics.evaluate_detections(gt, pred, iou_threshold=thresholds)
    table = result.per_label
    assert table.index.names == ["label", "iou_threshold"]
    assert len(table) == 3 * 10
    # true positives can only fall as the threshold rises
    tps = table["true_positives"].unstack("iou_threshold").to_numpy()
    assert (np.diff(tps, axis=1) <= 0).all()
    assert result.mean_ap == pytest.approx(table["ap"].mean())
    assert result.mean_ap_per_threshold.index.tolist() == thresholds.tolist()
    single = metrics.evaluate_detections(gt, pred, iou_threshold=thresholds[3]).per_label["ap"]
    np.testing.assert_array_equal(table["ap"].xs(thresholds[3], level="iou_threshold").to_numpy(), single.to_numpy())


def test_perfect_predictions_have_ap_one_and_curve_reaches_full_recall():
    gt, _ = random_frames(3)
    pred = gt.assign(confidence=np.linspace(0.1, 0.9, len(gt)))
    for interpolation in ("coco", "every_point", "11_point"):
        result = metrics.evaluate_detections(gt, pred, interpolation=interpolation)
        assert result.per_label["ap"].tolist() == pytest.approx([1.0] * 3)
    curve = result.curve("l0")
    assert np.all(np.diff(curve.confidence) <= 0)
    assert curve.recall[-1] == 1.0 and np.all(curve.precision == 1.0)
    assert len(curve.precision) == (gt["label"] == "l0").sum()


def test_curve_rejects_unknown_label_and_threshold():
    gt, pred = random_frames(4)
    result = metrics.evaluate_detections(gt, pred, iou_threshold=[0.5, 0.7])
    assert len(result.curve("l1", iou_threshold=0.7).recall) == (pred["label"] == "l1").sum()
    with pytest.raises(ValueError, match="curve.label"):
        result.curve("zebra")
    with pytest.raises(ValueError, match="curve.iou_threshold"):
        result.curve("l1", iou_threshold=0.6)


def test_known_ap_values_for_each_interpolation():
    # 3 ground truth; detections TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3
    tp = [True, False, True]
    assert metrics.average_precision(tp, 3, "every_point") == pytest.approx(1 / 3 + (1 / 3) * (2 / 3))
    # 11-point: recall 0..0.3 -> 1 (4 points), 0.4..0.6 -> 2/3 (3 points), 0.7..1 -> 0
    assert metrics.average_precision(tp, 3, "11_point") == pytest.approx((4 + 3 * 2 / 3) / 11)
    # coco: 101 points, recall <= 1/3 (34 points: 0..0.33) -> 1, 0.34..0.66 (33 points) -> 2/3
    assert metrics.average_precision(tp, 3, "coco") == pytest.approx((34 + 33 * 2 / 3) / 101)
    assert metrics.average_precision([], 3) == 0.0
    assert math.isnan(metrics.average_precision([True], 0))
    precision, recall = metrics.precision_recall_curve(tp, 3)
    np.testing.assert_allclose(precision, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3])


def test_empty_inputs_give_an_empty_valid_result():
    empty_gt = boxes([])
    empty_pred = boxes([], confidence=True)
    result = metrics.evaluate_detections(empty_gt, empty_pred, iou_threshold=[0.5, 0.75])
    assert result.per_label.empty and math.isnan(result.mean_ap)
    assert list(result.per_label.columns)[:5] == [
        "ap",
        "n_ground_truth",
        "n_predictions",
        "true_positives",
        "false_positives",
    ]
    gt, pred = random_frames(5)
    no_predictions = metrics.evaluate_detections(gt, empty_pred).per_label
    assert (no_predictions["ap"] == 0).all() and (no_predictions["n_predictions"] == 0).all()
    no_truth = metrics.evaluate_detections(empty_gt, pred)
    assert no_truth.per_label["ap"].isna().all() and math.isnan(no_truth.mean_ap)


def test_inputs_are_not_mutated_and_results_are_copies():
    gt, pred = random_frames(6)
    gt_before, pred_before = gt.copy(), pred.copy()
    result = metrics.evaluate_detections(gt, pred)
    pd.testing.assert_frame_equal(gt, gt_before)
    pd.testing.assert_frame_equal(pred, pred_before)
    table = result.per_label
    table["ap"] = -1.0
    assert (result.per_label["ap"] >= 0).all()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shuffle_seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_change_ap_without_ties(seed, shuffle_seed):
    gt, pred = random_frames(seed, n_items=20)
    ap = metrics.evaluate_detections(gt, pred, iou_threshold=[0.3, 0.5]).per_label["ap"]
    shuffled = metrics.evaluate_detections(
        gt.sample(frac=1, random_state=shuffle_seed % 2**31),
        pred.sample(frac=1, random_state=(shuffle_seed + 1) % 2**31),
        iou_threshold=[0.3, 0.5],
    ).per_label["ap"]
    pd.testing.assert_series_equal(ap, shuffled)


def test_polygon_and_mask_geometries_end_to_end():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=float)
    gt = pd.DataFrame({"item_id": ["a", "a"], "label": ["cat", "cat"], "polygon": [square, square + 20]})
    pred = pd.DataFrame(
        {"item_id": ["a", "a"], "label": ["cat", "cat"], "polygon": [square + 1, square + 40], "confidence": [0.9, 0.8]}
    )
    by_polygon = metrics.evaluate_detections(gt, pred, geometry="polygon", interpolation="every_point")
    assert by_polygon.per_label.loc["cat", "ap"] == pytest.approx(0.5)  # TP then FP, recall 1/2

    def raster(polygon):
        mask = np.zeros((64, 64), bool)
        (x0, y0), (x1, y1) = polygon.min(axis=0).astype(int), polygon.max(axis=0).astype(int)
        mask[max(y0, 0) : y1, max(x0, 0) : x1] = True
        return mask

    gt_mask = gt.assign(mask=[raster(p) for p in gt["polygon"]]).drop(columns="polygon")
    pred_mask = pred.assign(mask=[raster(p) for p in pred["polygon"]]).drop(columns="polygon")
    by_mask = metrics.evaluate_detections(gt_mask, pred_mask, geometry="mask", interpolation="every_point")
    assert by_mask.per_label.loc["cat", "ap"] == pytest.approx(0.5)
    bad = pred_mask.assign(mask=[np.zeros((8, 8), bool)] * 2)
    with pytest.raises(ValueError, match="predictions.mask"):
        metrics.evaluate_detections(gt_mask, bad, geometry="mask")


def test_self_intersecting_polygon_is_repaired_with_a_warning(caplog):
    bowtie = np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=float)
    gt = pd.DataFrame({"item_id": ["a"], "label": ["cat"], "polygon": [bowtie]})
    pred = gt.assign(confidence=[0.5])
    with caplog.at_level("WARNING", logger="nodes.metrics"):
        result = metrics.evaluate_detections(gt, pred, geometry="polygon")
    assert result.per_label.loc["cat", "ap"] == pytest.approx(1.0)
    assert "make_valid" in caplog.text


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g, p: (g.drop(columns="left"), p), r"ground_truth: missing column\(s\) \['left'\]"),
        (lambda g, p: (g, p.drop(columns="confidence")), r"predictions: missing column\(s\) \['confidence'\]"),
        (lambda g, p: (g.assign(top=[np.nan] + [1.0] * (len(g) - 1)), p), r"ground_truth.top: NaN at row 0"),
        (lambda g, p: (g, p.assign(confidence=np.nan)), r"predictions.confidence: NaN"),
        (lambda g, p: (g.assign(right=g["left"] - 1), p), r"ground_truth.right: .* < left"),
        (lambda g, p: (g, p.assign(bottom=p["top"] - 1)), r"predictions.bottom: .* < top"),
        (lambda g, p: (g.assign(item_id=None), p), r"ground_truth.item_id: missing value"),
        (lambda g, p: (g, p.assign(left="x")), r"predictions.left: values must be numbers"),
        (lambda g, p: (g.to_dict(), p), r"ground_truth: expected a pandas DataFrame"),
    ],
)
def test_invalid_frames_raise_value_error_naming_the_problem(change, message):
    gt, pred = random_frames(7, n_items=5)
    bad_gt, bad_pred = change(gt, pred)
    with pytest.raises(ValueError, match=message):
        metrics.evaluate_detections(bad_gt, bad_pred)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iou_threshold": 0}, r"iou_threshold: 0.0 is outside \(0, 1\]"),
        ({"iou_threshold": 1.5}, r"iou_threshold: 1.5 is outside"),
        ({"iou_threshold": [0.5, -0.1]}, r"iou_threshold: -0.1 is outside"),
        ({"iou_threshold": "high"}, r"iou_threshold: 'high' is not a number"),
        ({"iou_threshold": []}, r"iou_threshold: empty sequence"),
        ({"iou_threshold": [0.5, 0.5]}, r"iou_threshold: .* contains duplicates"),
        ({"interpolation": "voc"}, r"interpolation: 'voc' is not one of 'coco', 'every_point', '11_point'"),
        ({"geometry": "circle"}, r"geometry: 'circle' is not one of 'box', 'polygon', 'mask'"),
    ],
)
def test_invalid_parameters_raise_value_error(kwargs, message):
    gt, pred = random_frames(8, n_items=3)
    with pytest.raises(ValueError, match=message):
        metrics.evaluate_detections(gt, pred, **kwargs)


# ------------------------------------------------------------------------------------------------
# Resampling path
# ------------------------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), interpolation=st.sampled_from(["coco", "every_point", "11_point"]))
def test_weighted_ap_equals_evaluating_the_resampled_dataset(seed, interpolation):
    gt, pred = random_frames(seed, n_items=10)
    thresholds = [0.3, 0.6]
    matches = metrics.match_detections(gt, pred, thresholds)
    rng = np.random.default_rng(seed)
    n_items = len(matches.item_ids)
    weights = rng.multinomial(n_items, np.full(n_items, 1 / n_items), size=4)
    got = metrics.average_precision_from_matches(matches, weights, interpolation=interpolation)
    assert got.shape == (4, len(matches.labels), 2)
    for r in range(4):
        # explicit resample: copy j of item i becomes item "i#j"
        parts_gt, parts_pred = [], []
        for item, w in zip(matches.item_ids, weights[r], strict=True):
            for j in range(w):
                parts_gt.append(gt[gt["item_id"] == item].assign(item_id=f"{item}#{j}"))
                parts_pred.append(pred[pred["item_id"] == item].assign(item_id=f"{item}#{j}"))
        table = metrics.evaluate_detections(
            pd.concat(parts_gt), pd.concat(parts_pred), thresholds, interpolation=interpolation
        ).per_label["ap"]
        for k, label in enumerate(matches.labels):
            expected = table.get((label, 0.3), np.nan), table.get((label, 0.6), np.nan)
            np.testing.assert_allclose(got[r, k], expected, atol=1e-12, equal_nan=True)


def test_unit_weights_equal_the_plain_ap_and_validation():
    gt, pred = random_frames(9)
    matches = metrics.match_detections(gt, pred, [0.5, 0.75])
    plain = metrics.average_precision_from_matches(matches)
    ones = metrics.average_precision_from_matches(matches, np.ones(len(matches.item_ids)))
    np.testing.assert_allclose(ones, plain, atol=1e-12)
    many = metrics.average_precision_from_matches(matches, np.ones((3, len(matches.item_ids))))
    np.testing.assert_allclose(many, np.broadcast_to(plain, (3, *plain.shape)), atol=1e-12)
    with pytest.raises(ValueError, match="item_weights: shape"):
        metrics.average_precision_from_matches(matches, np.ones(2))
    with pytest.raises(ValueError, match=">= 0"):
        metrics.average_precision_from_matches(matches, -np.ones(len(matches.item_ids)))


# ------------------------------------------------------------------------------------------------
# Classification
# ------------------------------------------------------------------------------------------------


def test_classification_duplicates_missing_predictions_and_no_positives():
    gt = pd.DataFrame({"item_id": ["a", "a", "b"], "label": ["cat", "cat", "dog"]})
    pred = pd.DataFrame(
        {
            "item_id": ["a", "a", "b", "c"],
            "label": ["cat", "cat", "cat", "bird"],
            "confidence": [0.2, 0.9, 0.5, 0.4],
        }
    )
    result = metrics.evaluate_classification(gt, pred)
    table = result.per_label
    assert table.loc["cat", "ap"] == 1.0  # a keeps its best score 0.9, above b
    assert table.loc["cat", "n_predictions"] == 2 and table.loc["cat", "n_ground_truth"] == 1
    # dog never predicted: b ties with a and c at -inf -> precision 1/3 at recall 1
    assert table.loc["dog", "ap"] == pytest.approx(1 / 3)
    assert math.isnan(table.loc["bird", "ap"])
    assert result.mean_ap == pytest.approx((1 + 1 / 3) / 2)
    curve = result.curve("cat")
    assert curve.confidence.tolist() == [0.9, 0.5, -np.inf]
    with pytest.raises(ValueError, match="item_ids: misses"):
        metrics.evaluate_classification(gt, pred, item_ids=["a", "b"])
    with pytest.raises(ValueError, match="interpolation"):
        metrics.evaluate_classification(gt, pred, interpolation="area")
    extra = metrics.evaluate_classification(gt, pred, item_ids=["a", "b", "c", "d"]).per_label
    assert extra.loc["dog", "ap"] == pytest.approx(1 / 4) and (extra["n_items"] == 4).all()


def test_eleven_point_recall_points_are_exact_tenths():
    # 10 ground truth, 3 true positives then a false positive: recall reaches exactly 0.3
    tp = [True, True, True, False]
    assert metrics.average_precision(tp, 10, "11_point") == pytest.approx(4 / 11)
    assert metrics.average_precision(tp, 10, "step") == pytest.approx(0.3)


def test_docstring_examples_run():
    import doctest
    import importlib
    import pkgutil

    failures = attempted = 0
    for info in pkgutil.iter_modules(metrics.__path__, prefix="nodes.metrics."):
        result = doctest.testmod(importlib.import_module(info.name), optionflags=doctest.NORMALIZE_WHITESPACE)
        failures, attempted = failures + result.failed, attempted + result.attempted
    assert attempted >= 20 and failures == 0
