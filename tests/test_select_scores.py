"""Unit and property tests of nodes/select_for_labeling/scores.py (pure, no platform)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import entropy as scipy_entropy

from nodes.select_for_labeling.scores import (
    class_score_matrix,
    prediction_model_ids,
    predictions_frame,
    predictions_from_annotations,
    random_scores,
    resolve_model_id,
    score_items,
    tie_break_keys,
)


def cls(label, confidence, **extra):
    return {"label": label, "confidence": confidence, "type": "class", **extra}


def box(confidence, label="car", **extra):
    return {"label": label, "confidence": confidence, "type": "box", **extra}


def one(records, strategy, aggregation="max", **kwargs):
    result = score_items({"i": records}, ["i"], strategy, aggregation, **kwargs)
    return float(result.scores[0]), bool(result.fallback[0])


THREE = [cls("cat", 0.6), cls("dog", 0.3), cls("fox", 0.1)]


# --------------------------------------------------------------------------- hand-computed values


def test_classification_scores_by_hand():
    assert one(THREE, "least_confidence") == (pytest.approx(0.4), False)
    assert one(THREE, "margin") == (pytest.approx(0.7), False)
    h = -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1))  # 0.897946 nats
    assert one(THREE, "entropy") == (pytest.approx(h / math.log(3)), False)
    assert one(THREE, "entropy")[0] == pytest.approx(0.817345, abs=1e-6)


def test_top_k_entropy_is_completed_to_k_classes_never_renormalised():
    records = [cls("a", 0.5), cls("b", 0.2), cls("c", 0.1)]  # top-3 of a 5-class softmax: 0.2 missing
    expected = scipy_entropy([0.5, 0.2, 0.1, 0.1, 0.1]) / math.log(5)  # the missing 0.2 spread over 2 classes
    assert one(records, "entropy", n_classes=5) == (pytest.approx(expected), False)
    result = score_items({"i": records}, ["i"], "entropy")  # K unknown and 0.2 missing: least confidence
    assert (float(result.scores[0]), result.strategy_used, result.strategy) == (
        pytest.approx(0.5),
        "least_confidence",
        "entropy",
    )
    assert result.detail(0)["strategy"] == "least_confidence" and result.detail(0)["requested"] == "entropy"


def test_record_order_and_duplicate_labels_do_not_matter():
    shuffled = [cls("fox", 0.1), cls("cat", 0.6), cls("dog", 0.3), cls("dog", 0.2)]  # dog twice: 0.3 kept
    for strategy in ("least_confidence", "margin", "entropy"):
        assert one(shuffled, strategy) == one(THREE, strategy)


def test_single_class_annotation_falls_back_to_least_confidence():
    assert one([cls("cat", 0.8)], "least_confidence") == (pytest.approx(0.2), False)
    assert one([cls("cat", 0.8)], "margin") == (pytest.approx(0.2), True)
    assert one([cls("cat", 0.8)], "entropy") == (pytest.approx(0.2), True)


def test_class_score_vector_replaces_the_confidences():
    records = [cls("cat", 0.5, scores=[0.5, 0.45, 0.05])]
    assert one(records, "margin") == (pytest.approx(0.95), False)
    expected = scipy_entropy([0.5, 0.45, 0.05]) / math.log(3)
    assert one(records, "entropy") == (pytest.approx(expected), False)


def test_detection_aggregations_by_hand():
    boxes = [box(0.9), box(0.6), box(0.2)]  # instance uncertainties 0.1, 0.4, 0.8
    assert one(boxes, "least_confidence", "max")[0] == pytest.approx(0.8)
    assert one(boxes, "least_confidence", "mean")[0] == pytest.approx((0.1 + 0.4 + 0.8) / 3)
    assert one(boxes, "least_confidence", "sum")[0] == 1.0  # 0.1 + 0.4 + 0.8 = 1.3, capped at 1
    assert one([box(0.9), box(0.7)], "least_confidence", "sum")[0] == pytest.approx(0.1 + 0.3)
    assert one(boxes, "margin", "max") == (pytest.approx(0.8), True)  # no class scores: falls back


def test_instance_class_scores_give_margin_and_entropy():
    boxes = [box(0.7, scores=[0.7, 0.3]), box(0.9, scores=[0.9, 0.05, 0.05])]
    assert one(boxes, "margin", "max") == (pytest.approx(1 - 0.4), False)
    assert one(boxes, "margin", "mean")[0] == pytest.approx((0.6 + 0.15) / 2)
    # K unknown: a vector is a whole distribution; the pool shares log(3), its longest vector
    ent = [scipy_entropy([0.7, 0.3]) / math.log(3), scipy_entropy([0.9, 0.05, 0.05]) / math.log(3)]
    assert one(boxes, "entropy", "max") == (pytest.approx(max(ent)), False)
    ent = [scipy_entropy([0.7, 0.3, 0, 0]) / math.log(4), scipy_entropy([0.9, 0.05, 0.05, 0]) / math.log(4)]
    assert one(boxes, "entropy", "max", n_classes=4) == (pytest.approx(max(ent)), False)


def test_mixed_item_rolls_class_uncertainty_up_with_instances():
    records = [*THREE, box(0.95)]  # class margin 0.7; instance 0.95 + 0.025 + 0.025: margin 0.075
    assert one(records, "margin", "max", n_classes=3)[0] == pytest.approx(0.7)
    assert one(records, "margin", "mean", n_classes=3)[0] == pytest.approx((0.7 + 0.075) / 2)
    assert one(records, "margin", "max") == (pytest.approx(0.4), True)  # K unknown: the box has one class


def test_empty_items_score_empty_score_and_random_ignores_predictions():
    result = score_items({"a": THREE}, ["a", "b"], "margin", empty_score=0.25)
    assert result.scores.tolist() == pytest.approx([0.7, 0.25])
    assert result.n_predictions.tolist() == [3, 0]
    assert result.top_label.tolist() == ["cat", None]
    assert score_items({}, ["b"], "margin").scores.tolist() == [1.0]
    rnd = score_items({"a": THREE}, ["a", "b"], "random", seed=4)
    np.testing.assert_array_equal(rnd.scores, random_scores(["a", "b"], 4))
    assert not rnd.fallback.any()


def test_predictions_outside_the_pool_are_ignored():
    result = score_items({"a": THREE, "zz": [cls("x", 0.01)]}, ["a"], "least_confidence")
    assert result.item_ids.tolist() == ["a"] and result.scores.tolist() == pytest.approx([0.4])


def test_tie_break_is_sha256_of_seed_and_id():
    expected = int.from_bytes(hashlib.sha256(b"7:item-1").digest()[:8], "big")
    assert int(tie_break_keys(["item-1"], 7)[0]) == expected


def test_ties_are_ranked_by_the_seeded_hash_whatever_the_input_order():
    ids = [f"item{i}" for i in range(50)]
    forward = score_items({}, ids, "margin", seed=3)
    backward = score_items({}, ids[::-1], "margin", seed=3)
    order_f = forward.item_ids[forward.ranking()].tolist()
    assert order_f == backward.item_ids[backward.ranking()].tolist()
    keys = {i: int(k) for i, k in zip(ids, tie_break_keys(ids, 3), strict=True)}
    assert order_f == sorted(ids, key=keys.__getitem__)
    other = score_items({}, ids, "margin", seed=4)
    assert other.item_ids[other.ranking()].tolist() != order_f


@pytest.mark.parametrize(
    ("predictions", "kwargs", "message"),
    [
        ({"i": [cls("a", 1.5)]}, {}, r"predictions.confidence: 1.5 on item 'i'"),
        ({"i": [cls("a", float("nan"))]}, {}, "predictions.confidence"),
        ({"i": [cls("a", 0.5)]}, {"strategy": "greedy"}, "strategy: 'greedy'"),
        ({"i": [cls("a", 0.5)]}, {"aggregation": "median"}, "aggregation: 'median'"),
        ({"i": [cls("a", 0.5)]}, {"empty_score": 2}, "empty_score: 2"),
        ({"i": [box(0.5, scores=[0.5, float("nan")])]}, {}, r"metadata.user.model.scores: .* on item 'i'"),
        ({"i": [cls("a", 0.5)]}, {"n_classes": 0}, "n_classes: 0 is not a positive integer"),
        ({"i": [cls("a", 0.5)]}, {"n_classes": True}, "n_classes: True"),
        (pd.DataFrame({"item_id": ["i"]}), {}, "missing column"),
    ],
)
def test_bad_input_names_the_field(predictions, kwargs, message):
    with pytest.raises(ValueError, match=message):
        score_items(predictions, ["i"], **kwargs)


def test_duplicate_pool_ids_are_rejected():
    with pytest.raises(ValueError, match="item_ids: 'a' appears more than once"):
        score_items({}, ["a", "a"])


# --------------------------------------------------------------------------- annotation JSON


def annotation(item, label, model_id=None, confidence=None, kind="class", ann_id="x"):
    metadata = {"user": {"model": {"model_id": model_id, "name": "m", "confidence": confidence}}} if model_id else {}
    return {"id": ann_id, "itemId": item, "type": kind, "label": label, "metadata": metadata}


def test_predictions_from_annotations_keeps_one_models_predictions():
    annotations = [
        annotation("i1", "cat", "m1", 0.7),
        annotation("i1", "dog", "m1", 0.2),
        annotation("i1", "cat", "m2", 0.99),
        annotation("i1", "cat"),  # ground truth
        annotation("i2", "car", "m1", 0.4, kind="box"),
        annotation("i2", "car", "m1", None, kind="box"),  # no confidence: dropped
    ]
    frame = predictions_from_annotations(annotations, "m1")
    assert frame[["item_id", "label", "confidence", "type"]].values.tolist() == [
        ["i1", "cat", 0.7, "class"],
        ["i1", "dog", 0.2, "class"],
        ["i2", "car", 0.4, "box"],
    ]
    assert len(predictions_from_annotations(annotations)) == 4
    scores = score_items(frame, ["i1", "i2"], "margin")  # K unknown, a box of one class: least confidence
    assert scores.scores.tolist() == pytest.approx([0.3, 0.6]) and scores.strategy_used == "least_confidence"
    scores = score_items(frame, ["i1", "i2"], "margin", n_classes=3)  # the box: 0.4 and 0.3, 0.3 completed
    assert scores.scores.tolist() == pytest.approx([0.5, 0.9]) and scores.strategy_used == "margin"


def test_model_ids_and_resolution():
    both = [annotation("i", "a", "m2", 0.5), annotation("i", "a", "m1", 0.5), annotation("i", "a")]
    assert prediction_model_ids(both) == ("m1", "m2")
    assert resolve_model_id(both[:1], None) == "m2"
    assert resolve_model_id([annotation("i", "a")], None) is None
    assert resolve_model_id(both, "m1") == "m1"
    with pytest.raises(ValueError, match=r"customNodeConfig.modelId: .*item i9 .* 2 models \(m1, m2\)"):
        resolve_model_id(both, None, item_id="i9")


def test_class_score_matrix():
    matrix, labels = class_score_matrix({"a": [cls("dog", 0.7), cls("cat", 0.2), cls("dog", 0.8)]}, ["b", "a"])
    assert labels == ("cat", "dog")
    assert matrix.tolist() == [[0.0, 0.0], [0.2, 0.8]]


# --------------------------------------------------------------------------- properties


record = st.builds(
    dict,
    label=st.sampled_from(["a", "b", "c", "d"]),
    confidence=st.floats(0.0, 1.0),
    type=st.sampled_from(["class", "box", "segment"]),
)
pools = st.dictionaries(st.text("abcdef", min_size=1, max_size=4), st.lists(record, max_size=6), max_size=15)


@settings(max_examples=80, deadline=None)
@given(
    pool=pools,
    strategy=st.sampled_from(["least_confidence", "margin", "entropy", "random"]),
    aggregation=st.sampled_from(["max", "mean", "sum"]),
    seed=st.integers(0, 2**31),
    n_classes=st.one_of(st.none(), st.integers(1, 6)),
)
def test_scores_are_in_unit_interval_and_deterministic(pool, strategy, aggregation, seed, n_classes):
    ids = list(pool)
    result = score_items(pool, ids, strategy, aggregation, seed=seed, n_classes=n_classes)
    assert np.all((result.scores >= 0) & (result.scores <= 1))
    again = score_items(
        dict(reversed(list(pool.items()))), ids[::-1], strategy, aggregation, seed=seed, n_classes=n_classes
    )
    assert again.strategy_used == result.strategy_used
    assert dict(zip(again.item_ids, again.scores, strict=True)) == pytest.approx(
        dict(zip(result.item_ids, result.scores, strict=True))
    )
    assert result.item_ids[result.ranking()].tolist() == again.item_ids[again.ranking()].tolist()


@settings(max_examples=60, deadline=None)
@given(p=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=8))
def test_entropy_of_a_whole_distribution_equals_scipy_normalised(p):
    p = (np.asarray(p) / np.sum(p)).tolist()
    records = [cls(f"l{i}", v) for i, v in enumerate(p)]
    expected = scipy_entropy(p) / math.log(len(p))
    assert one(records, "entropy", n_classes=len(p))[0] == pytest.approx(expected, abs=1e-9)
    assert one(records, "entropy")[0] == pytest.approx(expected, abs=1e-9)  # K unknown, nothing missing: K = k


def test_predictions_frame_shape():
    frame = predictions_frame({"a": [cls("x", 0.5)], "b": []})
    assert list(frame.columns) == ["item_id", "label", "confidence", "type", "scores"]
    assert len(frame) == 1


@pytest.mark.parametrize(
    ("vector", "problem"),
    [
        ("0.7,0.3", "is a str"),
        ([[0.7, 0.3]], "is a nested list"),
        ([[0.7], [0.2, 0.1]], "is a nested list"),
        ({"cat": 0.7}, "is a dict"),
        ([True, 0.5], "holding True"),
        (["0.7", "0.3"], "holding '0.7'"),
        ([0.5, None], "holding None"),
        ([], "is empty"),
        (0.7, "is a float"),
        ([0.5, float("nan")], "holding nan"),
        ([0.5, 1.5], "holding 1.5"),
        (np.zeros((2, 2)), "is a nested list"),
    ],
)
def test_malformed_class_score_vectors_name_the_field_and_the_fix(vector, problem):
    annotations = [annotation("i1", "cat", "m1", 0.7, ann_id="a9")]
    annotations[0]["metadata"]["user"]["model"]["scores"] = vector
    with pytest.raises(ValueError, match=r"^metadata.user.model.scores: .* on annotation a9 of item i1 ") as error:
        predictions_from_annotations(annotations)
    assert problem in str(error.value) and "upload one number per class" in str(error.value)
    with pytest.raises(ValueError, match=r"^metadata.user.model.scores: .* on item 'i1' "):
        score_items({"i1": [cls("cat", 0.7, scores=vector)]}, ["i1"], "margin")


def test_well_formed_class_score_vectors_are_kept():
    for vector in ([0.7, 0.3], (0.7, 0.3), [1, 0], np.array([0.7, 0.3])):
        annotations = [annotation("i1", "cat", "m1", 0.7)]
        annotations[0]["metadata"]["user"]["model"]["scores"] = vector
        assert predictions_from_annotations(annotations)["scores"].tolist() == [list(map(float, vector))]
