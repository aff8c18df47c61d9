"""Tests of nodes/select_for_labeling/diversity.py and select.py: batch choice, diversity, quotas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.select_for_labeling.diversity import (
    cluster_round_robin,
    kcenter_coreset,
    kcenter_greedy,
    kmeans_labels,
    nearest_distances,
)
from nodes.select_for_labeling.scores import tie_break_keys
from nodes.select_for_labeling.select import choose_items, route_item, selection_record


def blobs(n_clusters=5, per_cluster=40, seed=0):
    """Well separated clusters; in cluster 0 every item is more uncertain than anywhere else."""
    rng = np.random.default_rng(seed)
    centers = np.arange(n_clusters)[:, None] * 100.0 * np.ones((1, 3))
    x = np.concatenate([c + rng.normal(size=(per_cluster, 3)) for c in centers])
    cluster = np.repeat(np.arange(n_clusters), per_cluster)
    scores = np.where(cluster == 0, 0.9, 0.1) + rng.uniform(0, 0.05, len(x))
    return x, cluster, scores, [f"item{i:04d}" for i in range(len(x))]


# --------------------------------------------------------------------------- choose_items


def test_ranked_by_score_with_ranks_and_scores():
    s = choose_items([0.1, 0.9, 0.5], ["a", "b", "c"], budget=2)
    assert (s.item_ids, s.ranks, s.scores) == (("b", "c"), (1, 2), (0.9, 0.5))
    assert (s.pool_size, s.budget_exceeds_pool, s.method) == (3, False, "score")


def test_budget_larger_than_pool_takes_the_whole_pool_and_says_so():
    s = choose_items([0.1, 0.9], ["a", "b"], budget=10)
    assert s.item_ids == ("b", "a") and s.budget_exceeds_pool
    assert "took the whole pool" in s.summary()


def test_ties_follow_the_seeded_hash():
    ids = [f"i{k}" for k in range(20)]
    s = choose_items([0.5] * 20, ids, budget=20, seed=11)
    keys = dict(zip(ids, tie_break_keys(ids, 11).tolist(), strict=True))
    assert list(s.item_ids) == sorted(ids, key=keys.__getitem__)


def test_excluded_items_are_never_chosen():
    s = choose_items([0.9, 0.8, 0.1], ["test1", "a", "b"], budget=3, excluded=[True, False, False])
    assert s.item_ids == ("a", "b") and s.n_excluded == 1 and s.pool_size == 2


def test_uncertainty_alone_stays_in_one_cluster_cluster_diversity_covers_all():
    x, cluster, scores, ids = blobs()
    plain = choose_items(scores, ids, budget=5)
    assert {cluster[ids.index(i)] for i in plain.item_ids} == {0}
    spread = choose_items(scores, ids, budget=5, diversity="cluster", features=x, candidate_factor=40)
    assert {cluster[ids.index(i)] for i in spread.item_ids} == {0, 1, 2, 3, 4}
    assert spread.item_ids[0] == plain.item_ids[0]  # the most uncertain item still comes first
    assert spread.method == "score + cluster"


def test_kcenter_diversity_covers_every_cluster():
    x, cluster, scores, ids = blobs()
    s = choose_items(scores, ids, budget=5, diversity="kcenter", features=x, kcenter_factor=40)
    assert {cluster[ids.index(i)] for i in s.item_ids} == {0, 1, 2, 3, 4}
    assert s.item_ids[0] == choose_items(scores, ids, budget=1).item_ids[0]


def test_cold_start_typiclust_on_features_or_seeded_random():
    x, cluster, _, ids = blobs()
    s = choose_items(None, ids, budget=5, features=x, seed=2)
    assert s.method == "cold start: typiclust" and s.scores == (None,) * 5
    assert {cluster[ids.index(i)] for i in s.item_ids} == {0, 1, 2, 3, 4}
    r1 = choose_items(None, ids, budget=5, seed=2)
    assert r1.method == "cold start: random"
    assert r1.item_ids == choose_items(None, ids[::-1], budget=5, seed=2).item_ids
    assert r1.item_ids != choose_items(None, ids, budget=5, seed=3).item_ids


def test_per_label_quota():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    labels = ["cat", "cat", "cat", "dog", None]
    s = choose_items(scores, list("abcde"), budget=4, per_label_quota=1, labels_of_item=labels)
    assert s.item_ids == ("a", "d", "e") and s.quota_limited
    k = choose_items(
        scores, list("abcde"), budget=3, per_label_quota=1, labels_of_item=labels,
        diversity="kcenter", features=np.arange(5.0)[:, None],
    )  # fmt: skip
    assert k.item_ids[0] == "a" and sum(labels["abcde".index(i)] == "cat" for i in k.item_ids) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": 0}, "budget: 0 is not a positive integer"),
        ({"budget": 2.0}, "budget: 2.0"),
        ({"budget": True}, "budget: True"),
        ({"diversity": "coreset"}, "diversity: 'coreset'"),
        ({"diversity": "cluster"}, "features: required by diversity 'cluster'"),
        ({"per_label_quota": 1}, "labels_of_item: required by per_label_quota"),
        ({"per_label_quota": 0, "labels_of_item": ["x", "y"]}, "per_label_quota: 0"),
        ({"features": [[1.0]]}, r"features: shape \(1, 1\)"),
        ({"scores": [0.1]}, "scores: shape"),
        ({"scores": [0.1, np.nan]}, "scores: contains NaN"),
        ({"item_ids": ["a", "a"]}, "item_ids: contains duplicates"),
        (
            {"diversity": "kcenter", "features": [[1.0], [2.0]], "labelled_features": [[1.0, 2.0]]},
            "labelled_features: 2 dimensions",
        ),
        (
            {"diversity": "kcenter", "features": [[1.0], [2.0]], "labelled_features": [[np.inf]]},
            "labelled_features: contains NaN",
        ),
        ({"max_candidates": 0}, "max_candidates: 0"),
        ({"kcenter_factor": 0}, "kcenter_factor: 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"scores": [0.1, 0.2], "item_ids": ["a", "b"], "budget": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        choose_items(**args)


@settings(max_examples=40, deadline=None)
@given(
    scores=st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=1, max_size=40),
    budget=st.integers(1, 50),
    seed=st.integers(0, 1000),
    diversity=st.sampled_from(["none", "cluster", "kcenter"]),
    data=st.data(),
)
def test_chosen_set_is_invariant_to_pool_order_and_deterministic(scores, budget, seed, diversity, data):
    n = len(scores)
    ids = [f"id{i}" for i in range(n)]
    features = np.stack([np.arange(n) % 7, np.arange(n) % 3], axis=1).astype(float)
    permutation = data.draw(st.permutations(range(n)))
    base = choose_items(scores, ids, budget, diversity, features=features, seed=seed)
    again = choose_items(scores, ids, budget, diversity, features=features, seed=seed)
    assert base == again
    assert len(base.item_ids) == min(budget, n) and len(set(base.item_ids)) == len(base.item_ids)
    permuted = choose_items([scores[i] for i in permutation], [ids[i] for i in permutation], budget, "none", seed=seed)
    plain = choose_items(scores, ids, budget, "none", seed=seed)
    assert permuted.item_ids == plain.item_ids
    if diversity == "kcenter":  # no k-means randomness: the whole choice is order-free
        permuted_k = choose_items(
            [scores[i] for i in permutation], [ids[i] for i in permutation], budget, diversity,
            features=features[list(permutation)], seed=seed,
        )  # fmt: skip
        assert set(permuted_k.item_ids) == set(base.item_ids)


# --------------------------------------------------------------------------- diversity primitives


def test_kmeans_labels_is_seeded_and_separates_blobs():
    x, cluster, _, _ = blobs(n_clusters=4)
    labels = kmeans_labels(x, 4, seed=0)
    assert np.array_equal(labels, kmeans_labels(x, 4, seed=0))
    assert all(len(set(labels[cluster == c])) == 1 for c in range(4))
    assert len(set(labels)) == 4


def test_kmeans_fits_on_a_sample_and_assigns_every_row():
    x, cluster, _, _ = blobs(n_clusters=3, per_cluster=500)
    labels = kmeans_labels(x, 3, seed=1, sample_size=200)
    assert labels.shape == (1500,) and all(len(set(labels[cluster == c])) == 1 for c in range(3))


def test_round_robin_interleaves_by_best_item():
    assert cluster_round_robin(np.array([5, 6, 7, 8, 9]), np.array([2, 2, 0, 1, 0])).tolist() == [5, 7, 8, 6, 9]


def test_kcenter_starts_at_first_and_takes_the_farthest():
    x = np.array([[0.0, 0], [1, 0], [10, 0], [0, 10], [5, 5]])
    assert kcenter_greedy(x, 3, first=1).tolist() == [1, 3, 2]
    assert kcenter_greedy(x, 10).shape == (5,)


def test_route_and_record():
    assert route_item(0.8, 0.8) == "label" and route_item(0.1, 0.8) == "skip"
    assert selection_record(0.5, "margin", "m", None, "e", "t", fallback=True) == {
        "score": 0.5,
        "strategy": "margin",
        "requested": "margin",
        "modelId": "m",
        "rank": None,
        "executionId": "e",
        "selectedAt": "t",
        "fallback": True,
    }


# --------------------------------------------------------------------------- core-set (Sener & Savarese)


def _brute_nearest(x, centers):
    if len(centers) == 0:
        return np.full(len(x), np.inf)
    return np.sqrt(((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1)).min(axis=1)


def test_nearest_distances_in_blocks_equal_the_brute_force(monkeypatch):
    rng = np.random.default_rng(0)
    x, centers = rng.normal(size=(57, 4)), rng.normal(size=(13, 4))
    expected = _brute_nearest(x, centers)
    assert np.allclose(nearest_distances(x, centers), expected)
    monkeypatch.setattr("nodes.select_for_labeling.diversity._BLOCK_FLOATS", 20)  # blocks of one row
    assert np.allclose(nearest_distances(x, centers), expected)
    assert np.isinf(nearest_distances(x, centers[:0])).all()


def test_coreset_measures_distances_from_the_labelled_items():
    # pool: a blob at 0 and a blob at 10; the labelled items sit in the first blob
    rng = np.random.default_rng(1)
    pool = np.vstack([rng.normal(0, 0.5, (20, 2)), rng.normal(10, 0.5, (20, 2))])
    labelled = rng.normal(0, 0.5, (15, 2))
    picked = kcenter_coreset(pool, labelled, 1)
    assert picked[0] >= 20  # the first pick covers the unlabelled blob
    expected = int(np.argmax(_brute_nearest(pool, labelled)))
    assert picked[0] == expected
    # without the labelled set, the first pick is ``first`` and the second the row farthest from it
    plain = kcenter_coreset(pool, None, 2, first=3)
    assert plain[0] == 3 and plain[1] == int(np.argmax(_brute_nearest(pool, pool[[3]])))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 25),
    n_labelled=st.integers(0, 6),
    budget=st.integers(1, 30),
    seed=st.integers(0, 10_000),
)
def test_coreset_is_farthest_first_from_labelled_and_taken(n, n_labelled, budget, seed):
    rng = np.random.default_rng(seed)
    pool = rng.integers(-5, 6, size=(n, 2)).astype(float)  # small integer grid: ties are common
    labelled = rng.integers(-5, 6, size=(n_labelled, 2)).astype(float)
    picked = kcenter_coreset(pool, labelled, budget)
    assert len(picked) == min(budget, n) and len(set(picked.tolist())) == len(picked)
    for t, row in enumerate(picked):
        covered = np.vstack([labelled, pool[picked[:t]]])
        if len(covered) == 0:
            assert row == 0
            continue
        distance = _brute_nearest(pool, covered)
        distance[picked[:t]] = -np.inf
        assert np.isclose(distance[row], distance.max())  # the farthest remaining row
        assert row == int(np.flatnonzero(np.isclose(distance, distance.max()))[0])  # ties: lowest row


def test_coreset_per_group_quota_is_exact():
    # group "far" holds the farthest rows: without a quota all three are taken
    pool = np.array([[100.0], [200.0], [300.0], [1.0], [2.0], [3.0]])
    groups = ["far", "far", "far", "near", "near", None]
    labelled = np.array([[0.0]])
    assert sorted(kcenter_coreset(pool, labelled, 3).tolist()) == [0, 1, 2]
    for quota in (1, 2, 3):
        picked = kcenter_coreset(pool, labelled, 6, groups=groups, quota=quota)
        taken = [groups[p] for p in picked]
        assert taken.count("far") == min(quota, 3)  # exactly the quota, not one more or one less
        assert taken.count("near") == min(quota, 2)
    picked = kcenter_coreset(pool, labelled, 6, groups=groups, quota=1)
    assert [groups[p] for p in picked] == ["far", None, "near"]  # the quota ran out before the budget


def test_coreset_weights_trade_distance_for_uncertainty():
    pool = np.array([[10.0], [6.0], [0.5]])
    labelled = np.array([[0.0]])
    assert kcenter_coreset(pool, labelled, 1).tolist() == [0]
    assert kcenter_coreset(pool, labelled, 1, weights=np.array([0.1, 1.0, 1.0])).tolist() == [1]


def test_coreset_samples_a_large_labelled_set_deterministically():
    rng = np.random.default_rng(3)
    pool, labelled = rng.normal(size=(30, 3)), rng.normal(size=(400, 3))
    a = kcenter_coreset(pool, labelled, 5, seed=1, max_labelled=50)
    assert np.array_equal(a, kcenter_coreset(pool, labelled, 5, seed=1, max_labelled=50))
    assert np.array_equal(kcenter_coreset(pool, labelled, 5), kcenter_coreset(pool, labelled, 5, max_labelled=400))


def test_kcenter_covers_what_is_not_labelled_among_its_candidates():
    # the 50 most uncertain items are all in cluster 0, which is already labelled; the others are not
    x, cluster, scores, ids = blobs()
    labelled = x[cluster == 0][:10] + 0.01
    s = choose_items(
        scores, ids, budget=4, diversity="kcenter", features=x, labelled_features=labelled, kcenter_factor=50
    )
    assert {cluster[ids.index(i)] for i in s.item_ids} == {1, 2, 3, 4}
    assert s.method == "score + kcenter" and s.n_candidates == 200
    assert "core-set among the 200 most uncertain pool items" in s.summary()


def test_kcenter_candidates_are_the_factor_times_budget_most_uncertain_capped():
    x, cluster, scores, ids = blobs()
    top = set(choose_items(scores, ids, budget=15).item_ids)
    s = choose_items(scores, ids, budget=5, diversity="kcenter", features=x, seed=4)
    assert s.n_candidates == 15 and set(s.item_ids) <= top  # kcenter_factor 3
    again = choose_items(scores, ids, budget=5, diversity="kcenter", features=x, seed=4)
    assert s == again
    capped = choose_items(scores, ids, budget=5, diversity="kcenter", features=x, kcenter_factor=10, max_candidates=7)
    assert capped.n_candidates == 7 and set(capped.item_ids) <= set(choose_items(scores, ids, budget=7).item_ids)
    # among the candidates: the largest score × distance from the labelled items first
    labelled = x[:15]
    far = choose_items(scores, ids, budget=1, diversity="kcenter", features=x, labelled_features=labelled)
    candidates = [ids.index(i) for i in choose_items(scores, ids, budget=3).item_ids]
    gain = scores[candidates] * nearest_distances(x[candidates], labelled)
    assert ids.index(far.item_ids[0]) == candidates[int(np.argmax(gain))]


def test_kcenter_weights_distance_by_uncertainty():
    # two uncovered items at the same distance from the labelled one: the more uncertain goes first;
    # a far but confident item loses to a nearer uncertain one
    x = np.array([[10.0], [-10.0], [30.0], [0.5]])
    s = choose_items(
        [0.2, 0.9, 0.05, 0.95], list("abcd"), budget=1, diversity="kcenter", features=x,
        labelled_features=[[0.0]], kcenter_factor=4,
    )  # fmt: skip
    assert s.item_ids == ("b",)  # 0.9 × 10 beats 0.2 × 10, 0.05 × 30 and 0.95 × 0.5


def test_kcenter_quota_through_choose_items_is_exact():
    x = np.array([[100.0], [200.0], [300.0], [1.0], [2.0], [3.0]])
    labels = ["far", "far", "far", "near", "near", "near"]
    s = choose_items(
        [0.5] * 6, list("abcdef"), budget=4, diversity="kcenter", features=x,
        per_label_quota=2, labels_of_item=labels, labelled_features=[[0.0]],
    )  # fmt: skip
    chosen = [labels["abcdef".index(i)] for i in s.item_ids]
    assert chosen.count("far") == 2 and chosen.count("near") == 2
