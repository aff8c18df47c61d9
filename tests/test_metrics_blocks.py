"""Issue 23 (crowded images): matching in blocks of pairs gives exactly the unblocked result, and
the pairs held at once are bounded -- checked by counting them (``MatchingStats``), never by timing.

Also the COCO rule at ``iou_threshold=1.0``: boxes identical up to floating-point rounding match,
as in pycocotools (the threshold is applied as ``1 - 1e-10``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes import metrics
from tests.test_metrics_reference import assert_same_ap, our_ap, pycocotools_ap, random_detections

BOX = ["left", "top", "right", "bottom"]
UNBLOCKED = 2**40
MATCH_FIELDS = (
    "labels", "item_ids", "iou_thresholds", "det_label", "det_item", "det_confidence", "det_row",
    "det_matched_row", "gt_item", "gt_label", "gt_count", "label_start",
)  # fmt: skip
THRESHOLDS = st.sampled_from([[0.5], [0.1, 0.5, 0.75], list(np.linspace(0.5, 0.95, 10)), [1.0]])


def assert_same_matches(a: metrics.DetectionMatches, b: metrics.DetectionMatches) -> None:
    for field in MATCH_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def largest_group(gt: pd.DataFrame) -> int:
    return int(gt.groupby(["item_id", "label"]).size().max()) if len(gt) else 0


def candidate_pairs(gt: pd.DataFrame, pred: pd.DataFrame) -> int:
    """Pairs of one item and label, counted the obvious way."""
    n_gt = gt.groupby(["item_id", "label"]).size()
    n_pred = pred.groupby(["item_id", "label"]).size()
    return int((n_gt * n_pred).dropna().sum())


def crowded(seed: int, n_items: int, n_gt: int, n_pred: int, n_labels: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Many boxes of few labels on a small grid: every box overlaps many others, confidences tie."""
    rng = np.random.default_rng(seed)
    labels = np.array([f"label_{k}" for k in range(n_labels)], dtype=object)

    def boxes(n: int) -> dict:
        left, top = rng.integers(0, 40, (2, n))
        width, height = rng.integers(1, 12, (2, n))
        return {
            "item_id": np.array([f"item_{i}" for i in rng.integers(0, n_items, n)], dtype=object),
            "label": labels[rng.integers(0, n_labels, n)],
            "left": left.astype(float),
            "top": top.astype(float),
            "right": (left + width).astype(float),
            "bottom": (top + height).astype(float),
        }

    gt = pd.DataFrame(boxes(n_gt))
    pred = pd.DataFrame(boxes(n_pred)).assign(confidence=rng.integers(1, 6, n_pred) / 5)
    return gt, pred


# ------------------------------------------------------------------------------------------------
# Blocked == unblocked
# ------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_items=st.integers(1, 3),
    max_boxes=st.integers(0, 60),
    n_labels=st.integers(1, 2),
    step=st.sampled_from([1.0, 0.1]),
    thresholds=THRESHOLDS,
    block_pairs=st.integers(1, 200),
)
def test_blocked_matching_equals_unblocked_on_crowded_items(
    seed, n_items, max_boxes, n_labels, step, thresholds, block_pairs
):
    gt, pred = random_detections(seed, n_items, max_boxes, n_labels, step)
    blocked = metrics.match_detections(gt, pred, thresholds, block_pairs=block_pairs)
    whole = metrics.match_detections(gt, pred, thresholds, block_pairs=UNBLOCKED)
    assert_same_matches(blocked, whole)
    assert whole.stats.blocks == (1 if whole.stats.candidate_pairs else 0)
    assert blocked.stats.candidate_pairs == whole.stats.candidate_pairs == candidate_pairs(gt, pred)
    assert blocked.stats.kept_pairs == whole.stats.kept_pairs
    assert blocked.stats.max_block_pairs <= max(block_pairs, largest_group(gt))
    for interpolation in ("coco", "every_point"):
        a = metrics.evaluate_detections(gt, pred, thresholds, interpolation, block_pairs=block_pairs).per_label
        b = metrics.evaluate_detections(gt, pred, thresholds, interpolation, block_pairs=UNBLOCKED).per_label
        pd.testing.assert_frame_equal(a, b)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_gt=st.integers(0, 120),
    n_pred=st.integers(0, 150),
    n_labels=st.integers(1, 2),
    block_pairs=st.integers(1, 500),
)
def test_blocked_matching_equals_unblocked_for_boxes_polygons_and_masks(seed, n_gt, n_pred, n_labels, block_pairs):
    gt, pred = crowded(seed, 2, n_gt, n_pred, n_labels)
    thresholds = [0.3, 0.5, 0.9]
    boxes_blocked = metrics.match_detections(gt, pred, thresholds, block_pairs=block_pairs)
    assert_same_matches(boxes_blocked, metrics.match_detections(gt, pred, thresholds, block_pairs=UNBLOCKED))

    def as_polygons(frame):
        corners = frame[BOX].to_numpy()
        rings = [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) for x0, y0, x1, y1 in corners]
        return frame.drop(columns=BOX).assign(polygon=pd.Series(rings, index=frame.index, dtype=object))

    def as_masks(frame):
        masks = []
        for x0, y0, x1, y1 in frame[BOX].to_numpy().astype(int):
            mask = np.zeros((52, 52), bool)
            mask[y0:y1, x0:x1] = True
            masks.append(mask)
        return frame.drop(columns=BOX).assign(mask=pd.Series(masks, index=frame.index, dtype=object))

    for geometry, convert in (("polygon", as_polygons), ("mask", as_masks)):
        g, p = convert(gt), convert(pred)
        blocked = metrics.match_detections(g, p, thresholds, geometry, block_pairs=block_pairs)
        assert_same_matches(blocked, metrics.match_detections(g, p, thresholds, geometry, block_pairs=UNBLOCKED))
        # integer rectangles: the same IoUs as boxes up to rounding; the grid avoids ties at the thresholds
        np.testing.assert_array_equal(blocked.is_true_positive, boxes_blocked.is_true_positive)


@pytest.mark.parametrize("block_pairs", [1, 7, 1000])
def test_blocked_matching_equals_pycocotools_on_a_crowded_image(block_pairs):
    gt, pred = random_detections(5, 1, 150, 1, 0.5)
    assert len(gt) > 50 and len(pred) > 50
    thresholds = [0.5, 0.75, 1.0]
    evaluation = metrics.evaluate_detections(gt, pred, thresholds, block_pairs=block_pairs)
    ours = {(label, float(t)): ap for (label, t), ap in evaluation.per_label["ap"].items()}
    assert_same_ap(ours, pycocotools_ap(gt, pred, thresholds))
    assert evaluation.matches.stats.max_block_pairs <= max(block_pairs, largest_group(gt))


# ------------------------------------------------------------------------------------------------
# The bound, counted
# ------------------------------------------------------------------------------------------------


def test_pairs_held_at_once_stay_within_the_block_on_crowded_images():
    """2 images x 2,000 boxes x ~2,200 predictions of one label: 8.8 million candidate pairs, of
    which the default block holds at most 2**19 at once (all of them at once before issue 23)."""
    gt, pred = crowded(0, 2, 4000, 4400)
    stats = metrics.match_detections(gt, pred, 0.5).stats
    assert stats.candidate_pairs == candidate_pairs(gt, pred) > 8_000_000
    assert stats.max_block_pairs <= metrics.DEFAULT_BLOCK_PAIRS
    assert stats.blocks >= stats.candidate_pairs / metrics.DEFAULT_BLOCK_PAIRS
    assert stats.rounds == pred.groupby("item_id").size().max()
    small = metrics.match_detections(gt, pred, 0.5, block_pairs=50_000).stats
    assert small.max_block_pairs <= 50_000 and small.blocks >= stats.candidate_pairs / 50_000


def test_one_prediction_s_candidates_are_never_split():
    """The documented exception to the bound: a block holds at least one prediction's candidates."""
    gt, pred = crowded(1, 1, 50, 5)
    stats = metrics.match_detections(gt, pred, 0.5, block_pairs=3).stats
    assert stats.max_block_pairs == 50 and stats.blocks == 5


def test_stats_count_nothing_without_candidates():
    gt, pred = crowded(2, 1, 10, 10, n_labels=1)
    elsewhere = pred.assign(item_id="another item")
    assert metrics.match_detections(gt, elsewhere, 0.5).stats == metrics.MatchingStats(0, 0, 0, 0, 0)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1000", None])
def test_block_pairs_must_be_a_positive_integer(bad):
    gt, pred = crowded(3, 1, 5, 5)
    with pytest.raises(ValueError, match=r"match_detections\.block_pairs: .* positive integer"):
        metrics.match_detections(gt, pred, 0.5, block_pairs=bad)


# ------------------------------------------------------------------------------------------------
# iou_threshold=1.0 and boxes identical up to rounding
# ------------------------------------------------------------------------------------------------

# each ground-truth box and its prediction describe the same rectangle, computed two ways
ROUNDED_PAIRS = [
    ((0.1 + 0.2, 0.0, 10.0, 10.0), (0.3, 0.0, 10.0, 10.0)),
    ((0.0, 1.1 * 3, 7.0, 9.0), (0.0, 3.3, 7.0, 9.0)),
    ((1.0, 0.1 * 3, 5.0, 0.7 + 0.1 + 4), (1.0, 0.3, 5.0, 4.8)),
    ((1e4 + 0.1 + 0.2, 0.0, 12000 + 0.7 + 0.1, 50.0), (10000.3, 0.0, 12000.8, 50.0)),
    ((0.1 * 3, 0.7 + 0.1, 0.3 + 0.6, 1.1 + 2.2), (0.3, 0.8, 0.9, 3.3)),
]


def _one_label(boxes, confidence=None) -> pd.DataFrame:
    frame = pd.DataFrame(boxes, columns=BOX).assign(item_id=[f"i{k}" for k in range(len(boxes))], label="cat")
    return frame if confidence is None else frame.assign(confidence=confidence)


def test_boxes_identical_up_to_rounding_match_at_threshold_one_as_in_pycocotools():
    gt = _one_label([g for g, _ in ROUNDED_PAIRS])
    pred = _one_label([p for _, p in ROUNDED_PAIRS], confidence=0.9)
    assert [g != p for g, p in ROUNDED_PAIRS] == [True] * len(ROUNDED_PAIRS)  # not bit-identical
    iou = metrics.box_iou(gt[BOX].to_numpy(), pred[BOX].to_numpy(), pairwise=True)
    assert (iou != 1.0).any() and (np.abs(iou - 1.0) <= 1e-12).all()
    evaluation = metrics.evaluate_detections(gt, pred, iou_threshold=1.0)
    assert evaluation.per_label.loc["cat", "ap"] == 1.0
    assert evaluation.per_label.loc["cat", "true_positives"] == len(ROUNDED_PAIRS)
    assert_same_ap(our_ap(gt, pred, [1.0]), pycocotools_ap(gt, pred, [1.0]))


def test_boxes_that_really_differ_do_not_match_at_threshold_one():
    """The tolerance is pycocotools' 1e-10 on the IoU: a 1e-6 shift is a real difference."""
    gt = _one_label([(0.0, 0.0, 10.0, 10.0), (0.0, 0.0, 10.0, 10.0)])
    pred = _one_label([(1e-6, 0.0, 10.0, 10.0), (0.0, 0.0, 10.0, 10.0 - 1e-8)], confidence=0.9)
    evaluation = metrics.evaluate_detections(gt, pred, iou_threshold=1.0)
    assert evaluation.per_label.loc["cat", "ap"] == 0.0
    assert_same_ap(our_ap(gt, pred, [1.0]), pycocotools_ap(gt, pred, [1.0]))
    # a shift of 1e-11 of a side of 10 moves the IoU by ~1e-12: within the tolerance, a match
    close = _one_label([(1e-11, 0.0, 10.0, 10.0), (0.0, 0.0, 10.0, 10.0 - 1e-11)], confidence=0.9)
    assert metrics.evaluate_detections(gt, close, iou_threshold=1.0).per_label.loc["cat", "ap"] == 1.0
    assert_same_ap(our_ap(gt, close, [1.0]), pycocotools_ap(gt, close, [1.0]))


# ------------------------------------------------------------------------------------------------
# Integer item ids are keys like any other (hashed natively, same result as their text form)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int64", "uint32", "float64"])
def test_numeric_item_ids_give_the_matches_of_their_text_form(dtype):
    gt, pred = random_detections(3, 60, 12, 3, 0.5)
    number = {item: k * 7 for k, item in enumerate(sorted(set(gt["item_id"]) | set(pred["item_id"])))}
    as_numbers = [frame.assign(item_id=frame["item_id"].map(number).astype(dtype)) for frame in (gt, pred)]
    text = metrics.match_detections(gt, pred, [0.5, 0.75])
    numeric = metrics.match_detections(*as_numbers, [0.5, 0.75])
    for field in set(MATCH_FIELDS) - {"item_ids"}:
        np.testing.assert_array_equal(getattr(numeric, field), getattr(text, field), err_msg=field)
    assert numeric.item_ids.dtype == object and numeric.item_ids.tolist() == sorted(number.values())
    missing = as_numbers[1].astype({"item_id": "float64"})
    missing.loc[missing.index[4], "item_id"] = np.nan
    with pytest.raises(ValueError, match=r"predictions\.item_id: missing value at row 4"):
        metrics.match_detections(as_numbers[0], missing, 0.5)
