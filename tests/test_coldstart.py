"""Tests of nodes/select_for_labeling/coldstart.py: TypiClust picks typical items, never outliers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nodes.select_for_labeling.coldstart import typicality, typiclust
from nodes.select_for_labeling.config import SelectionConfig
from nodes.select_for_labeling.diversity import kcenter_coreset
from nodes.select_for_labeling.select import select_pool

OUTLIERS = np.array([[-12.0, 8], [30, 14], [74, -9], [15, -13], [45, 13], [62, 14]])


def blobs_with_outliers(sizes=(40, 30, 20), outliers=6, seed=0):
    """Gaussian blobs 30 apart (sizes in order), then ``outliers`` isolated points among and beyond them."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(0, 1, (n, 2)) + np.array([30.0 * k, 0.0]) for k, n in enumerate(sizes)]
    parts.append(OUTLIERS[:outliers])
    x = np.vstack(parts)
    blob = np.concatenate([np.full(n, k) for k, n in enumerate(sizes)] + [np.full(outliers, -1)])
    return x, blob


def test_typicality_is_inverse_mean_distance_to_the_k_nearest():
    x = np.array([[0.0], [1.0], [3.0], [10.0]])
    t = typicality(x, k=2)
    expected = 1 / (np.array([(1 + 3) / 2, (1 + 2) / 2, (2 + 3) / 2, (7 + 9) / 2]) + 1e-5)
    assert np.allclose(t, expected)
    assert typicality(x[:1]).tolist() == [1.0]  # one row: nothing to compare with
    assert np.allclose(typicality(x, k=50), 1 / (np.array([14, 12, 12, 26]) / 3 + 1e-5))  # k capped at n - 1


def test_typiclust_picks_the_dense_middle_of_each_blob_never_an_outlier():
    x, blob = blobs_with_outliers()
    picked = typiclust(x, 3, seed=0)
    assert sorted(blob[picked].tolist()) == [0, 1, 2]
    for p in picked:  # among the most typical tenth of its blob (k-means adds the nearby outliers to it)
        members = np.flatnonzero(blob == blob[p])
        t = typicality(x[members], 20)
        assert t[members == p][0] >= np.quantile(t, 0.9)
    assert -1 in blob[kcenter_coreset(x, None, 3)]  # farthest-first would spend a label on an outlier


def test_largest_clusters_first_and_small_clusters_left_out():
    x, blob = blobs_with_outliers(sizes=(20, 40, 30), outliers=0)
    tiny = np.array([[500.0, 500.0], [500.5, 500.0], [500.0, 500.5]])  # a cluster of 3 < 5 items
    x = np.vstack([x, tiny])
    blob = np.concatenate([blob, [9, 9, 9]])
    picked = typiclust(x, 4, seed=1)
    assert blob[picked].tolist()[:3] == [1, 2, 0]  # largest first
    assert 9 not in blob[picked]  # the 4th pick revisits the largest cluster instead
    assert blob[picked[3]] == 1


def test_uncovered_clusters_come_first():
    x, blob = blobs_with_outliers(sizes=(40, 30, 20), outliers=0)
    labelled = x[blob == 0][:5] + 0.01  # the largest blob is covered already
    picked = typiclust(x, 2, labelled_features=labelled, seed=0, max_clusters=3)
    assert blob[picked].tolist() == [1, 2]


def test_cluster_cap_revisits_clusters_in_order():
    x, blob = blobs_with_outliers(sizes=(40, 30, 20), outliers=0)
    picked = typiclust(x, 7, seed=0, max_clusters=3)
    assert blob[picked].tolist() == [0, 1, 2, 0, 1, 2, 0] and len(set(picked.tolist())) == 7


def test_typicality_sample_cap(monkeypatch):
    monkeypatch.setattr("nodes.select_for_labeling.coldstart.MAX_TYPICALITY_ROWS", 10)
    x, blob = blobs_with_outliers(outliers=0)
    picked = typiclust(x, 3, seed=0)
    assert sorted(blob[picked].tolist()) == [0, 1, 2]
    assert np.array_equal(picked, typiclust(x, 3, seed=0))


def test_deterministic_by_seed_and_bounded_by_the_pool():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 4))
    a = typiclust(x, 12, seed=3)
    assert np.array_equal(a, typiclust(x, 12, seed=3))
    assert len(a) == 12 and len(set(a.tolist())) == 12
    assert sorted(typiclust(x[:7], 50, seed=0).tolist()) == list(range(7))  # budget beyond the pool
    assert typiclust(x, 0).size == 0


def test_every_cluster_small_still_picks():
    x = np.array([[0.0], [10.0], [20.0]])
    assert sorted(typiclust(x, 3).tolist()) == [0, 1, 2]


def test_select_pool_cold_start_is_typiclust_and_random_stays_random():
    x, blob = blobs_with_outliers()
    ids = [f"i{k:03d}" for k in range(len(x))]
    empty = pd.DataFrame({"item_id": [], "label": [], "confidence": [], "type": []})
    cold, scored = select_pool(empty, ids, SelectionConfig(budget=3, strategy="margin"), features=x)
    assert scored is None and cold.method == "cold start: typiclust"
    assert sorted(blob[[ids.index(i) for i in cold.item_ids]].tolist()) == [0, 1, 2]
    covered, _ = select_pool(
        empty, ids, SelectionConfig(budget=2, strategy="margin"), features=x, labelled_features=x[blob == 0][:5]
    )
    assert 0 not in blob[[ids.index(i) for i in covered.item_ids]]
    r, _ = select_pool(empty, ids, SelectionConfig(budget=3, strategy="random", seed=4), features=x)
    assert r.method == "score" and r == select_pool(empty, ids, SelectionConfig(budget=3, strategy="random", seed=4))[0]
    with pytest.raises(ValueError, match="a cold start needs feature vectors"):
        select_pool(empty, ids, SelectionConfig(budget=3, strategy="margin"))
