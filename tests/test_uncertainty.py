"""Unit and property tests of nodes/select_for_labeling/scores.py (pure numpy, no platform)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nodes.select_for_labeling.scores import (
    entropy_uncertainty,
    least_confidence_uncertainty,
    margin_uncertainty,
    select_most_uncertain,
    select_random,
    uncertainty_scores,
)


def _rows(min_items=1, max_items=30, max_labels=8):
    """Random probability matrices: non-negative rows normalised to sum 1."""
    return st.tuples(st.integers(min_items, max_items), st.integers(2, max_labels)).flatmap(
        lambda shape: arrays(np.float64, shape, elements=st.floats(0.0, 1.0)).map(_normalise)
    )


def _normalise(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[a.sum(axis=1) == 0, 0] = 1.0
    return a / a.sum(axis=1, keepdims=True)


def test_known_values():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(margin_uncertainty(p), [1.0, 0.0, 0.7])
    np.testing.assert_allclose(least_confidence_uncertainty(p), [0.5, 0.0, 0.4])
    expected_entropy = -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1))
    np.testing.assert_allclose(entropy_uncertainty(p), [math.log(2), 0.0, expected_entropy])


def test_uniform_row_is_most_uncertain_for_every_method():
    p = np.array([[0.97, 0.01, 0.01, 0.01], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]])
    for method in ("margin", "entropy", "least_confidence"):
        assert select_most_uncertain(p, k=1, method=method).tolist() == [1]
    np.testing.assert_allclose(entropy_uncertainty(p)[1], math.log(4))


def test_selection_order_and_ties_are_stable():
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
    assert select_most_uncertain(p, k=3).tolist() == [0, 2, 3]
    assert select_most_uncertain(p, k=10).tolist() == [0, 2, 3, 1]
    assert select_most_uncertain(p, k=0).tolist() == []


def test_empty_input():
    empty = np.zeros((0, 3))
    assert margin_uncertainty(empty).shape == (0,)
    assert entropy_uncertainty(empty).shape == (0,)
    assert select_most_uncertain(empty, k=5).tolist() == []


@pytest.mark.parametrize(
    ("probabilities", "k", "method", "message"),
    [
        ([0.5, 0.5], 1, "margin", "2-D"),
        ([[1.0]], 1, "margin", "at least 2 label columns"),
        ([[np.nan, 0.5]], 1, "margin", "NaN"),
        ([[-0.1, 1.1]], 1, "entropy", r"\[0, 1\]"),
        ([[0.5, 0.5]], -1, "margin", "k: -1"),
        ([[0.5, 0.5]], 1.5, "margin", "k: 1.5"),
        ([[0.5, 0.5]], 1, "random", "method: 'random'"),
    ],
)
def test_bad_input_names_the_field(probabilities, k, method, message):
    with pytest.raises(ValueError, match=message):
        select_most_uncertain(probabilities, k=k, method=method)


@settings(max_examples=60, deadline=None)
@given(p=_rows())
def test_scores_are_bounded_and_invariant_to_label_order(p):
    n_labels = p.shape[1]
    permuted = p[:, ::-1]
    for method, upper in (("margin", 1.0), ("entropy", math.log(n_labels)), ("least_confidence", 1.0)):
        scores = uncertainty_scores(p, method)
        assert scores.shape == (p.shape[0],)
        assert np.all(scores >= -1e-12) and np.all(scores <= upper + 1e-9)
        np.testing.assert_allclose(scores, uncertainty_scores(permuted, method), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(p=_rows(), k=st.integers(0, 40), method=st.sampled_from(["margin", "entropy", "least_confidence"]))
def test_selection_is_the_top_k_by_score(p, k, method):
    chosen = select_most_uncertain(p, k=k, method=method)
    scores = uncertainty_scores(p, method)
    assert len(chosen) == min(k, p.shape[0])
    assert len(set(chosen.tolist())) == len(chosen)
    rest = np.setdiff1d(np.arange(p.shape[0]), chosen)
    if len(chosen) and len(rest):
        assert scores[chosen].min() >= scores[rest].max()
    assert np.all(np.diff(scores[chosen]) <= 0)
    np.testing.assert_array_equal(chosen, select_most_uncertain(p.copy(), k=k, method=method))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 200), k=st.integers(0, 250), seed=st.integers(0, 2**32 - 1))
def test_random_selection_is_seeded_distinct_and_in_range(n, k, seed):
    chosen = select_random(n, k, seed)
    assert len(chosen) == min(n, k)
    assert len(set(chosen.tolist())) == len(chosen)
    assert all(0 <= i < n for i in chosen)
    np.testing.assert_array_equal(chosen, select_random(n, k, seed))
