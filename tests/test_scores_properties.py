"""Property tests of the uncertainty scores (issue 20, "Scores that mean what they say").

``score_items`` — what batch selection and the Uncertainty Gate score with, per item for
classification and per instance for detection / segmentation — against ``scipy.stats.entropy``
and a transcription of scikit-activeml's ``uncertainty_scores`` (least confidence, margin
sampling, entropy; skactiveml/pool/_uncertainty_sampling.py) on random, tied and near-one-hot
probability matrices with K = 2 … 1,000 classes, whole and top-k uploads; the issue's worked
examples; and what the record says when K is unknown.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import entropy as scipy_entropy

from nodes.select_for_labeling.config import SelectionConfig
from nodes.select_for_labeling.scores import (
    completed_uncertainty,
    model_class_count,
    predictions_frame,
    score_items,
)
from nodes.select_for_labeling.select import select_pool, selection_record

# --------------------------------------------------------------------------- references


def skactiveml_uncertainty(probas: np.ndarray, method: str) -> np.ndarray:
    """scikit-activeml's ``uncertainty_scores`` without a cost matrix, transcribed."""
    if method == "least_confident":
        return 1 - np.max(probas, axis=1)
    if method == "margin_sampling":
        top = -(np.partition(-probas, 1, axis=1)[:, :2])
        return 1 - np.abs(top[:, 0] - top[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nansum(-probas * np.log(probas), axis=1)


OURS = {"least_confidence": "least_confident", "margin": "margin_sampling", "entropy": "entropy"}


def _matrix(kind: str, n: int, k: int, seed: int) -> np.ndarray:
    """``n`` probability rows over ``k`` classes: random (Dirichlet), tied (repeated rows and
    uniform / two-way ties) or near one-hot."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.dirichlet(np.full(k, rng.choice([0.05, 0.5, 2.0])), size=n)
    if kind == "tied":
        rows = [np.full(k, 1.0 / k), np.r_[0.5, 0.5, np.zeros(k - 2)], rng.dirichlet(np.ones(k))]
        return np.array([rows[i % 3] for i in rng.integers(0, 3, size=n)])
    eps = 10.0 ** rng.uniform(-12, -2, size=(n, 1))
    hot = np.zeros((n, k))
    hot[np.arange(n), rng.integers(0, k, size=n)] = 1.0
    noise = rng.dirichlet(np.ones(k), size=n)
    return (1 - eps) * hot + eps * noise


def _as_vectors(p: np.ndarray, kind: str = "class") -> dict:
    """One prediction per item carrying its whole class-score vector."""
    return {
        f"i{r}": [{"label": "x", "confidence": float(row.max()), "type": kind, "scores": row.tolist()}]
        for r, row in enumerate(p)
    }


def _as_class_records(p: np.ndarray, top_k: int | None = None) -> pd.DataFrame:
    """One class record per (item, class) — the ``top_k`` most probable classes when given."""
    rows = []
    for r, row in enumerate(p):
        order = np.argsort(-row, kind="stable")[: top_k or len(row)]
        rows.extend((f"i{r}", f"c{c}", float(row[c]), "class", None) for c in order)
    return pd.DataFrame(rows, columns=["item_id", "label", "confidence", "type", "scores"])


def _ids(p: np.ndarray) -> list[str]:
    return [f"i{r}" for r in range(len(p))]


def _same_ranking(ours: np.ndarray, reference: np.ndarray) -> None:
    """Every pair the reference orders strictly (beyond rounding) is ordered the same way."""
    tol = 1e-9 * np.maximum(np.abs(reference[:, None]), np.abs(reference[None, :])) + 1e-13
    strictly = reference[:, None] - reference[None, :] > tol
    difference = ours[:, None] - ours[None, :]
    assert np.all(difference[strictly] > 0)


matrices = st.tuples(
    st.sampled_from(["random", "tied", "near_one_hot"]),
    st.integers(1, 12),
    st.one_of(st.integers(2, 12), st.sampled_from([50, 257, 1000])),
    st.integers(0, 2**32 - 1),
)


# --------------------------------------------------------------------------- whole distributions


@settings(max_examples=60, deadline=None)
@given(spec=matrices, strategy=st.sampled_from(["least_confidence", "margin", "entropy"]))
def test_whole_distributions_equal_scikit_activeml_and_scipy(spec, strategy):
    kind, n, k, seed = spec
    p = _matrix(kind, n, k, seed)
    reference = skactiveml_uncertainty(p, OURS[strategy])
    for predictions, n_classes in ((_as_vectors(p), k), (_as_vectors(p), None), (_as_class_records(p), k)):
        result = score_items(predictions, _ids(p), strategy, n_classes=n_classes)
        assert result.strategy_used == strategy and not result.fallback.any()
        scale = math.log(k) if strategy == "entropy" else 1.0
        np.testing.assert_allclose(result.scores * scale, reference, rtol=1e-9, atol=1e-12)
        if strategy == "entropy":
            scipy = np.array([scipy_entropy(row) for row in p])
            np.testing.assert_allclose(result.scores * scale, scipy, rtol=1e-9, atol=1e-12)
            _same_ranking(result.scores, scipy)


@settings(max_examples=25, deadline=None)
@given(spec=matrices, strategy=st.sampled_from(["least_confidence", "margin", "entropy"]))
def test_an_instance_scores_as_a_classified_item_with_the_same_distribution(spec, strategy):
    kind, n, k, seed = spec
    p = _matrix(kind, n, k, seed)
    as_class = score_items(_as_vectors(p, "class"), _ids(p), strategy, n_classes=k)
    as_box = score_items(_as_vectors(p, "box"), _ids(p), strategy, n_classes=k)
    np.testing.assert_allclose(as_box.scores, as_class.scores, rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- top-k uploads


def _completed(p: np.ndarray, top_k: int) -> np.ndarray:
    """The maximum-entropy completion of each row's top ``top_k``: the rest share the missing mass."""
    k = p.shape[1]
    top = -np.sort(-p, axis=1)[:, :top_k]
    share = np.clip(1 - top.sum(axis=1, keepdims=True), 0, None) / (k - top_k)
    return np.hstack([top, np.repeat(share, k - top_k, axis=1)])


@settings(max_examples=60, deadline=None)
@given(
    spec=matrices,
    fraction=st.floats(0.0, 0.99),
    strategy=st.sampled_from(["least_confidence", "margin", "entropy"]),
)
def test_top_k_uploads_are_completed_by_spreading_the_missing_mass(spec, fraction, strategy):
    kind, n, k, seed = spec
    p = _matrix(kind, n, k, seed)
    top_k = 1 + int(fraction * (k - 1))  # 1 … K - 1
    if top_k >= k:
        top_k = k - 1
    q = _completed(p, top_k)
    result = score_items(_as_class_records(p, top_k), _ids(p), strategy, n_classes=k)
    scale = math.log(k) if strategy == "entropy" else 1.0
    reference = skactiveml_uncertainty(q, OURS[strategy])
    np.testing.assert_allclose(result.scores * scale, reference, rtol=1e-9, atol=1e-12)
    assert result.strategy_used == strategy and not result.fallback.any()


@settings(max_examples=40, deadline=None)
@given(k=st.integers(3, 1000), p1=st.floats(0.34, 1.0), strategy=st.sampled_from(["margin", "entropy"]))
def test_never_renormalised_per_item(k, p1, strategy):
    """Top-2 (p1, p2) of K classes: the score is the completed distribution's, not (p1, p2)/(p1 + p2)'s."""
    p2 = (1 - p1) / 2
    result = score_items({"i": [_cls("a", p1), _cls("b", p2)]}, ["i"], strategy, n_classes=k)
    q = np.r_[p1, p2, np.full(k - 2, (1 - p1 - p2) / (k - 2))]
    expected = skactiveml_uncertainty(q[None, :], OURS[strategy])[0] / (math.log(k) if strategy == "entropy" else 1)
    assert float(result.scores[0]) == pytest.approx(expected, rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------- the issue's examples


def _cls(label, confidence):
    return {"label": label, "confidence": confidence, "type": "class"}


B = [0.4] + [0.1] * 6


@pytest.mark.parametrize("k", [7, 10, 1000])
def test_issue_example_more_spread_ranks_higher(k):
    a = [_cls("a", 0.5), _cls("b", 0.25), _cls("c", 0.25)]  # 1.04 nats
    b = [_cls(f"b{j}", v) for j, v in enumerate(B)]  # 1.75 nats
    result = score_items({"A": a, "B": b}, ["A", "B"], "entropy", n_classes=k)
    assert result.scores[0] < result.scores[1]
    assert result.item_ids[result.ranking()].tolist() == ["B", "A"]
    np.testing.assert_allclose(result.scores * math.log(k), [scipy_entropy([0.5, 0.25, 0.25]), scipy_entropy(B)])
    unknown = score_items({"A": a, "B": b}, ["A", "B"], "entropy")  # K unknown: one normaliser for the pool
    assert unknown.item_ids[unknown.ranking()].tolist() == ["B", "A"]


@pytest.mark.parametrize("k", [None, 3, 5, 100])
def test_issue_example_two_records_do_not_outrank_three(k):
    two = [_cls("a", 0.5), _cls("b", 0.5)]
    three = [_cls("a", 0.34), _cls("b", 0.33), _cls("c", 0.33)]
    result = score_items({"two": two, "three": three}, ["two", "three"], "entropy", n_classes=k)
    assert result.scores[0] < result.scores[1]


# --------------------------------------------------------------------------- K unknown, and where K comes from


def test_margin_with_one_uploaded_class_and_k_unknown_says_least_confidence():
    p = predictions_frame({"a": [_cls("cat", 0.9)], "b": [_cls("cat", 0.6), _cls("dog", 0.4)]})
    result = score_items(p, ["a", "b"], "margin")
    assert (result.strategy, result.strategy_used) == ("margin", "least_confidence")
    assert result.scores.tolist() == pytest.approx([0.1, 0.4]) and result.fallback.tolist() == [True, True]
    record = selection_record(0.1, result.strategy_used, "m1", 1, "e1", "t", True, result.strategy)
    assert (record["strategy"], record["requested"]) == ("least_confidence", "margin")
    known = score_items(p, ["a", "b"], "margin", n_classes=2)  # p2 = the missing 0.1
    assert known.strategy_used == "margin" and known.scores.tolist() == pytest.approx([0.2, 0.8])


def test_select_pool_passes_k_and_the_used_strategy():
    p = predictions_frame({"a": [_cls("cat", 0.9)], "b": [_cls("cat", 0.6), _cls("dog", 0.4)]})
    config = SelectionConfig(budget=1, strategy="entropy")
    _, unknown = select_pool(p, ["a", "b"], config)
    _, known = select_pool(p, ["a", "b"], config, n_classes=4)
    assert unknown.strategy_used == "least_confidence" and known.strategy_used == "entropy"
    assert known.n_classes == 4 and float(known.scores[0]) == pytest.approx(
        scipy_entropy([0.9, 0.1 / 3, 0.1 / 3, 0.1 / 3]) / math.log(4)
    )


@pytest.mark.parametrize(
    ("model_json", "k"),
    [
        ({"configuration": {"id_to_label_map": {"0": "a", "1": "b", "2": "c"}}, "labels": ["a"]}, 3),
        ({"configuration": {"id_to_label_map": {}}, "labels": ["a", "b"]}, 2),
        ({"configuration": {}, "labels": ["a", "b", "a"]}, 2),
        ({"labels": []}, None),
        ({}, None),
        ({"labels": "abc"}, None),
        ("not a model", None),
    ],
)
def test_k_from_the_model_json(model_json, k):
    assert model_class_count(model_json) == k


def test_a_one_label_model_scores_its_label_against_not_it():
    result = score_items({"i": [{"label": "car", "confidence": 0.8, "type": "box"}]}, ["i"], "margin", n_classes=1)
    assert float(result.scores[0]) == pytest.approx(1 - (0.8 - 0.2)) and result.strategy_used == "margin"


def test_kernel_rows_need_no_python_loop_and_stay_in_the_unit_interval():
    rng = np.random.default_rng(0)
    top = -np.sort(-rng.uniform(0, 1, size=(500, 4)), axis=1)  # not distributions: sums up to 4
    lengths = rng.integers(1, 5, size=500)
    top[np.arange(4)[None, :] >= lengths[:, None]] = 0.0
    for strategy in ("least_confidence", "margin", "entropy"):
        for k in (None, 2, 4, 50):
            values, exact = completed_uncertainty(top, lengths, strategy, k)
            assert np.all((values >= 0) & (values <= 1)) and values.shape == exact.shape == (500,)


# --------------------------------------------------------------------------- detection roll-up


def test_top_label_is_the_most_uncertain_instances_label():
    boxes = [
        {"label": "car", "confidence": 0.95, "type": "box"},
        {"label": "bus", "confidence": 0.35, "type": "box"},  # the most uncertain
        {"label": "car", "confidence": 0.6, "type": "box"},
    ]
    for strategy, k in (("least_confidence", None), ("margin", 5), ("entropy", 5)):
        result = score_items({"i": boxes}, ["i"], strategy, n_classes=k)
        assert result.top_label.tolist() == ["bus"], strategy
    reordered = score_items({"i": boxes[::-1]}, ["i"], "margin", n_classes=5)
    assert reordered.top_label.tolist() == ["bus"]
