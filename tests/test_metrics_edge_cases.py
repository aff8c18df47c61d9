"""Issue 13 §8 (and §1's COCO rule): metrics edge cases.

- ``average_precision_from_matches`` equals re-evaluating the resampled dataset also when one item
  holds tied confidences with both a true and a false positive (a hypothesis property test);
- ``evaluate_classification`` on empty frames gives ``mean_ap`` NaN;
- ±inf coordinates and confidences are a ``ValueError`` naming the column;
- predictions on an item without ground truth are false positives, as pycocotools counts them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes import metrics
from nodes.metrics.ap import _weighted_columns
from tests.test_metrics_reference import assert_same_ap, our_ap, pycocotools_ap

BOX = ["left", "top", "right", "bottom"]


def _frame(rows, confidence=False):
    columns = ["item_id", "label", *BOX] + (["confidence"] if confidence else [])
    frame = pd.DataFrame(rows, columns=columns)
    frame[BOX] = frame[BOX].astype(float)
    return frame


def _resampled(gt, pred, item_ids, weights):
    """The resampled dataset: copy j of item i is item ``f"{i}#{j}"`` (copies sort together)."""
    parts_gt, parts_pred = [], []
    for item, w in zip(item_ids, weights, strict=True):
        for j in range(int(w)):
            parts_gt.append(gt[gt["item_id"] == item].assign(item_id=f"{item}#{j:04d}"))
            parts_pred.append(pred[pred["item_id"] == item].assign(item_id=f"{item}#{j:04d}"))
    empty_gt, empty_pred = gt.iloc[:0], pred.iloc[:0]
    return pd.concat([empty_gt, *parts_gt]), pd.concat([empty_pred, *parts_pred])


def _re_evaluated(gt, pred, matches, weights, thresholds, interpolation):
    rgt, rpred = _resampled(gt, pred, matches.item_ids, weights)
    table = metrics.evaluate_detections(rgt, rpred, list(thresholds), interpolation=interpolation).per_label["ap"]
    return np.array([[table.get((label, t), np.nan) for t in thresholds] for label in matches.labels])


def test_tied_true_and_false_positive_on_one_item_equal_re_evaluation():
    """The case that was up to 0.33 apart: item a holds a TP and an FP at the same confidence."""
    gt = _frame([("a", "cat", 0, 0, 10, 10), ("b", "cat", 0, 0, 10, 10)])
    pred = _frame([("a", "cat", 0, 0, 10, 10, 0.5), ("a", "cat", 50, 50, 60, 60, 0.5),
                   ("b", "cat", 0, 0, 10, 10, 0.4)], confidence=True)  # fmt: skip
    matches = metrics.match_detections(gt, pred, [0.5])
    for interpolation in ("every_point", "coco", "11_point"):
        for weights in ([2, 1], [3, 0], [1, 2], [0, 3], [4, 4], [1, 1]):
            got = metrics.average_precision_from_matches(matches, np.array([weights]), interpolation=interpolation)[0]
            expected = _re_evaluated(gt, pred, matches, weights, [0.5], interpolation)
            np.testing.assert_allclose(got, expected, atol=1e-12, equal_nan=True, err_msg=f"{interpolation} {weights}")
    # every_point with item a twice: TP FP TP FP (not TP TP FP FP, which would give 1.0)
    got = metrics.average_precision_from_matches(matches, np.array([[2, 1]]), interpolation="every_point")[0, 0, 0]
    # precision 1, 1/2, 2/3, 2/4, 3/5 at recall 1/3, 1/3, 2/3, 2/3, 1: envelope 1, 2/3, 3/5 at the steps
    assert got == pytest.approx((1 + 2 / 3 + 3 / 5) / 3, abs=1e-12)


@st.composite
def tied_detections(draw):
    """Few items, a coarse grid and three confidence levels: ties inside items are the rule."""
    n_items = draw(st.integers(1, 5))
    labels = ["cat", "dog"][: draw(st.integers(1, 2))]
    gt_rows, pred_rows = [], []
    for i in range(n_items):
        item = f"it{i}"
        boxes = []
        for _ in range(draw(st.integers(0, 3))):
            left, top = draw(st.integers(0, 4)) * 10, draw(st.integers(0, 4)) * 10
            box = (left, top, left + 10, top + 10)
            label = draw(st.sampled_from(labels))
            boxes.append((label, box))
            gt_rows.append((item, label, *box))
        for _ in range(draw(st.integers(0, 4))):
            if boxes and draw(st.booleans()):
                label, (left, top, right, bottom) = draw(st.sampled_from(boxes))
                shift = draw(st.sampled_from([0, 2, 6]))
                box = (left + shift, top, right + shift, bottom)
            else:
                label = draw(st.sampled_from(labels))
                left, top = draw(st.integers(0, 4)) * 10, draw(st.integers(0, 4)) * 10
                box = (left, top, left + 10, top + 10)
            pred_rows.append((item, label, *box, draw(st.sampled_from([0.25, 0.5, 0.75]))))
    weights = draw(st.lists(st.lists(st.integers(0, 3), min_size=n_items, max_size=n_items), min_size=1, max_size=3))
    return _frame(gt_rows), _frame(pred_rows, confidence=True), weights


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=tied_detections(), interpolation=st.sampled_from(["every_point", "coco", "11_point"]))
def test_weighted_ap_equals_re_evaluating_the_resampled_dataset_with_ties(data, interpolation):
    gt, pred, weights = data
    thresholds = [0.5, 0.75]
    matches = metrics.match_detections(gt, pred, thresholds)
    if not len(matches.item_ids):
        return
    by_item = {f"it{i}": i for i in range(len(weights[0]))}
    w = np.array([[row[by_item[item]] for item in matches.item_ids] for row in weights])
    got = metrics.average_precision_from_matches(matches, w, interpolation=interpolation)
    for r in range(len(w)):
        expected = _re_evaluated(gt, pred, matches, w[r], thresholds, interpolation)
        np.testing.assert_allclose(got[r], expected, atol=1e-12, equal_nan=True)


def test_weighted_columns_expand_only_mixed_tie_groups():
    tp = np.array([[True, False, True, True, False]])
    items = np.array([0, 0, 1, 1, 2])
    confidence = np.array([0.9, 0.9, 0.9, 0.9, 0.5])  # item 0: mixed tie; item 1: tie of TPs only
    columns, copies = _weighted_columns(items, confidence, tp, np.array([[3.0, 2.0, 1.0]]))
    assert columns.tolist() == [0, 1, 0, 1, 0, 1, 2, 3, 4]
    assert copies.tolist() == [0, 0, 1, 1, 2, 2, -1, -1, -1]
    plain, none = _weighted_columns(items, confidence, np.ones((1, 5), bool), np.ones((1, 3)))
    assert plain.tolist() == [0, 1, 2, 3, 4] and none.tolist() == [-1] * 5


def test_fractional_and_infinite_weights():
    gt = _frame([("a", "cat", 0, 0, 10, 10)])
    pred = _frame([("a", "cat", 0, 0, 10, 10, 0.5), ("a", "cat", 50, 50, 60, 60, 0.5)], confidence=True)
    matches = metrics.match_detections(gt, pred)
    half = metrics.average_precision_from_matches(matches, np.array([0.5]), interpolation="every_point")
    one = metrics.average_precision_from_matches(matches, np.array([1.0]), interpolation="every_point")
    np.testing.assert_allclose(half, one)  # scaling every weight alike does not change AP
    with pytest.raises(ValueError, match="finite and >= 0"):
        metrics.average_precision_from_matches(matches, np.array([math.inf]))


# ------------------------------------------------------------------------------------------------
# empty frames, infinities
# ------------------------------------------------------------------------------------------------


def test_classification_on_empty_frames_gives_mean_ap_nan():
    result = metrics.evaluate_classification(
        pd.DataFrame({"item_id": [], "label": []}), pd.DataFrame({"item_id": [], "label": [], "confidence": []})
    )
    assert math.isnan(result.mean_ap) and result.per_label.empty
    assert list(result.per_label.columns) == ["ap", "n_ground_truth", "n_predictions", "n_items"]
    only_items = metrics.evaluate_classification(
        pd.DataFrame({"item_id": [], "label": []}),
        pd.DataFrame({"item_id": [], "label": [], "confidence": []}),
        item_ids=["a", "b"],
    )
    assert math.isnan(only_items.mean_ap)
    no_positive = metrics.evaluate_classification(
        pd.DataFrame({"item_id": [], "label": []}),
        pd.DataFrame({"item_id": ["a"], "label": ["cat"], "confidence": [0.5]}),
    )
    assert math.isnan(no_positive.mean_ap) and math.isnan(no_positive.per_label.loc["cat", "ap"])


def test_detections_on_empty_frames_give_mean_ap_nan():
    empty = _frame([])
    result = metrics.evaluate_detections(empty, _frame([], confidence=True))
    assert math.isnan(result.mean_ap) and result.per_label.empty


@pytest.mark.parametrize("value", [math.inf, -math.inf])
@pytest.mark.parametrize("column", BOX)
@pytest.mark.parametrize("frame", ["ground_truth", "predictions"])
def test_infinite_coordinates_are_refused_naming_the_column(value, column, frame):
    gt = _frame([("a", "cat", 0, 0, 10, 10)])
    pred = _frame([("a", "cat", 0, 0, 10, 10, 0.5)], confidence=True)
    target = gt if frame == "ground_truth" else pred
    target.loc[0, column] = value
    if (column in ("right", "bottom") and value < 0) or (column in ("left", "top") and value > 0):
        pattern = rf"{frame}\.(right|bottom|{column})"  # may be reported as an inverted box first
    else:
        pattern = rf"{frame}\.{column}: {value!r} at row 0 is not a finite number"
    with pytest.raises(ValueError, match=pattern):
        metrics.evaluate_detections(gt, pred)


def test_infinite_coordinates_are_named_before_the_box_order_check():
    gt = _frame([("a", "cat", math.inf, 0, 10, 10)])
    with pytest.raises(ValueError, match=r"ground_truth\.left: inf at row 0 is not a finite number"):
        metrics.evaluate_detections(gt, _frame([], confidence=True))


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_confidences_are_refused_naming_the_column(value):
    gt = _frame([("a", "cat", 0, 0, 10, 10)])
    pred = _frame([("a", "cat", 0, 0, 10, 10, value)], confidence=True)
    with pytest.raises(ValueError, match=r"predictions\.confidence: .*inf at row 0 is not a finite number"):
        metrics.evaluate_detections(gt, pred)
    classes = pd.DataFrame({"item_id": ["a"], "label": ["cat"]})
    with pytest.raises(ValueError, match=r"predictions\.confidence: .*inf at row 0 is not a finite number"):
        metrics.evaluate_classification(classes, classes.assign(confidence=[value]))


def test_infinite_polygon_vertices_are_refused():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10.0]])
    gt = pd.DataFrame({"item_id": ["a"], "label": ["cat"], "polygon": [square]})
    pred = gt.assign(polygon=[np.where(square == 10, np.inf, square)], confidence=[0.5])
    with pytest.raises(ValueError, match=r"predictions\.polygon: NaN or infinite vertex at row 0"):
        metrics.evaluate_detections(gt, pred, geometry="polygon")


# ------------------------------------------------------------------------------------------------
# predictions on items without ground truth: false positives, as in COCO
# ------------------------------------------------------------------------------------------------


def test_predictions_on_items_without_ground_truth_are_false_positives_as_pycocotools():
    gt = _frame([("a", "cat", 0, 0, 10, 10), ("b", "cat", 0, 0, 10, 10), ("b", "dog", 20, 20, 30, 30)])
    pred = _frame(
        [
            ("a", "cat", 0, 0, 10, 10, 0.6),
            ("b", "cat", 1, 0, 11, 10, 0.4),
            ("c", "cat", 0, 0, 10, 10, 0.9),  # item c has no ground truth at all
            ("c", "cat", 5, 5, 15, 15, 0.5),
            ("d", "dog", 20, 20, 30, 30, 0.95),  # nor has item d
            ("b", "dog", 20, 20, 30, 30, 0.3),
        ],
        confidence=True,
    )
    for thresholds in ([0.5], [0.5, 0.75]):
        ours = our_ap(gt, pred, thresholds)
        assert_same_ap(ours, pycocotools_ap(gt, pred, thresholds))
    result = metrics.evaluate_detections(gt, pred, interpolation="coco")
    table = result.per_label
    assert table.loc["cat", "false_positives"] == 2 and table.loc["dog", "false_positives"] == 1
    assert table.loc["cat", "ap"] < 1.0 and table.loc["dog", "ap"] < 1.0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_items_holding_only_predictions_match_pycocotools(seed):
    rng = np.random.default_rng(seed)
    gt_rows, pred_rows = [], []
    for i in range(8):
        has_gt = i % 2 == 0
        for _ in range(int(rng.integers(1, 4))):
            left, top = rng.integers(0, 5, 2) * 10
            box = (left, top, left + 10, top + 10)
            if has_gt:
                gt_rows.append((f"i{i}", "cat", *box))
            shift = int(rng.integers(0, 3)) * 3
            pred_rows.append((f"i{i}", "cat", box[0] + shift, box[1], box[2] + shift, box[3], rng.integers(1, 5) / 4))
    gt, pred = _frame(gt_rows), _frame(pred_rows, confidence=True)
    assert_same_ap(our_ap(gt, pred, [0.5]), pycocotools_ap(gt, pred, [0.5]))
