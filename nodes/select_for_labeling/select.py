"""Decisions: which pool items to label (a batch), and where the gate routes one item.

Pure: scores and feature vectors in, an ordered :class:`Selection` out. :func:`choose_items`
ranks by score (ties by the seeded hash of the item id), optionally spreads the batch with
:mod:`~nodes.select_for_labeling.diversity`, starts cold with
:mod:`~nodes.select_for_labeling.coldstart`, applies a per-label quota, and never returns an
excluded (test-subset) item. :func:`route_item` is the Uncertainty Gate's decision and
:func:`selection_record` the ``metadata.user.activeLearning.selection`` value written by the edge.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from nodes.select_for_labeling.coldstart import typiclust
from nodes.select_for_labeling.config import DIVERSITIES, SelectionConfig
from nodes.select_for_labeling.diversity import (
    DEFAULT_SAMPLE_SIZE,
    check_features,
    cluster_round_robin,
    kcenter_coreset,
    kmeans_labels,
)
from nodes.select_for_labeling.scores import ItemScores, class_score_matrix, score_items, tie_break_keys

logger = logging.getLogger(__name__)

#: Cluster diversity works on the ``candidate_factor × budget`` most uncertain items (Citovsky et al., 2021).
DEFAULT_CANDIDATE_FACTOR = 10
#: The core-set works on the ``kcenter_factor × budget`` most uncertain items, weighted by their scores:
#: over the whole pool, unweighted, it loses to random labelling (docs/nodes.md, "Diversity and cold start").
DEFAULT_KCENTER_FACTOR = 3
#: At most this many core-set candidates: O(budget × this × d) time, O(this) memory.
MAX_KCENTER_CANDIDATES = 50_000
LABEL = "label"
SKIP = "skip"
#: Where the selection record lives: ``metadata.user.<RECORD_KEY>.<RECORD_FIELD>`` of an item.
RECORD_KEY = "activeLearning"
RECORD_FIELD = "selection"


@dataclass(frozen=True)
class Selection:
    """The chosen items, in rank order (rank 1 first).

    Attributes
    ----------
    item_ids : tuple
    ranks : tuple of int
        1, 2, … in the order chosen.
    scores : tuple of float or None
        Score of each chosen item (``None`` on a cold start without scores).
    budget, pool_size : int
        The budget asked for and the pool it was taken from (after exclusions).
    method : str
        How the batch was ordered, e.g. ``"score"``, ``"score + cluster"``, ``"cold start: typiclust"``.
    budget_exceeds_pool : bool
        The budget was larger than the pool: the whole pool was taken.
    quota_limited : bool
        The per-label quota left fewer than ``budget`` items.
    n_excluded : int
        Items dropped because they are excluded (test-subset tags).
    n_candidates : int or None
        The core-set's candidates: the most uncertain ``n_candidates`` pool items (``None`` for
        other methods).
    """

    item_ids: tuple[Any, ...]
    ranks: tuple[int, ...]
    scores: tuple[float | None, ...]
    budget: int
    pool_size: int
    method: str
    budget_exceeds_pool: bool = False
    quota_limited: bool = False
    n_excluded: int = 0
    n_candidates: int | None = None

    def summary(self) -> str:
        """One log line: what was chosen from what, and why it may be fewer than the budget.

        Examples
        --------
        >>> choose_items([0.2, 0.9], ["a", "b"], budget=5).summary()
        'chose 2 of 2 pool items (budget 5) by score; budget larger than the pool: took the whole pool'
        """
        text = f"chose {len(self.item_ids)} of {self.pool_size} pool items (budget {self.budget}) by {self.method}"
        if self.budget_exceeds_pool:
            text += "; budget larger than the pool: took the whole pool"
        if self.quota_limited:
            text += "; the per-label quota left fewer items than the budget"
        if self.n_excluded:
            text += f"; {self.n_excluded} excluded (test-subset) item(s) never considered"
        if self.n_candidates is not None:
            text += f"; core-set among the {self.n_candidates} most uncertain pool items"
        return text


def _positive_int(field: str, value: Any, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{field}: {value!r} is not a positive integer; example: {example}")
    return int(value)


def _apply_quota(order: np.ndarray, labels: np.ndarray | None, quota: int | None, budget: int) -> np.ndarray:
    """The first ``budget`` positions of ``order`` with at most ``quota`` per label (``None`` unlimited)."""
    if labels is None or quota is None:
        return order[:budget]
    used: dict[Any, int] = {}
    chosen = []
    for position in order:
        label = labels[position]
        if label is not None:
            if used.get(label, 0) >= quota:
                continue
            used[label] = used.get(label, 0) + 1
        chosen.append(position)
        if len(chosen) == budget:
            break
    return np.asarray(chosen, dtype=int)


def choose_items(
    scores: Sequence[float] | np.ndarray | None,
    item_ids: Sequence[Any],
    budget: int,
    diversity: str = "none",
    features: np.ndarray | None = None,
    per_label_quota: int | None = None,
    labels_of_item: Sequence[Any] | None = None,
    seed: int = 0,
    excluded: Sequence[bool] | np.ndarray | None = None,
    candidate_factor: int = DEFAULT_CANDIDATE_FACTOR,
    n_clusters: int | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    labelled_features: np.ndarray | None = None,
    kcenter_factor: int = DEFAULT_KCENTER_FACTOR,
    max_candidates: int = MAX_KCENTER_CANDIDATES,
) -> Selection:
    """Choose ``budget`` items to label, most worth labelling first.

    Parameters
    ----------
    scores : array-like of float or None
        One score per item (higher = more worth labelling), e.g. ``ItemScores.scores``.
        ``None`` is a cold start (no predictions): TypiClust on ``features`` when given
        (:func:`~nodes.select_for_labeling.coldstart.typiclust`), else a seeded random order.
    item_ids : sequence
        Pool item ids, aligned with ``scores``; unique.
    budget : int
        Items to choose (≥ 1); more than the pool takes the whole pool and says so.
    diversity : {"none", "cluster", "kcenter"}
        ``cluster``: k-means over the ``candidate_factor × budget`` best candidates into
        ``n_clusters`` (default ``budget``) clusters, then the best of each cluster round-robin.
        ``kcenter``: the uncertainty-weighted core-set
        (:func:`~nodes.select_for_labeling.diversity.kcenter_coreset`) over the
        ``kcenter_factor × budget`` best candidates: each pick has the largest score × distance to
        the nearest of ``labelled_features`` and the items taken; with nothing labelled it starts
        at the best candidate. Scores order the rest of the pool after the batch.
    features : array-like of shape (n_items, d), optional
        Required by ``cluster`` and ``kcenter``.
    per_label_quota : int, optional
        At most this many chosen items per label of ``labels_of_item`` (e.g. ``ItemScores.top_label``;
        ``None`` labels are not limited).
    labels_of_item : sequence, optional
    seed : int
        Seeds the tie-breaking hash (:func:`~nodes.select_for_labeling.scores.tie_break_keys`),
        k-means and the samples.
    excluded : array-like of bool, optional
        Items never chosen (test-subset tags). The edge filters them out of the pool already;
        this is the second guard.
    candidate_factor, n_clusters, sample_size : int
        Bounds of the cluster step (see :mod:`~nodes.select_for_labeling.diversity`).
    labelled_features : array-like of shape (L, d), optional
        Vectors of the items already labelled, in the space of ``features``: the core-set measures
        distances from them and TypiClust visits clusters without them first.
    kcenter_factor, max_candidates : int
        The core-set's candidates: the ``min(kcenter_factor × budget, max_candidates)`` best items
        (the selection's ``n_candidates``).

    Returns
    -------
    Selection

    Examples
    --------
    >>> s = choose_items([0.1, 0.8, 0.5, 0.8], ["a", "b", "c", "d"], budget=3)
    >>> s.item_ids, s.ranks
    (('d', 'b', 'c'), (1, 2, 3))
    >>> choose_items([0.1, 0.8], ["a", "b"], budget=1, excluded=[False, True]).item_ids
    ('a',)
    """
    budget = _positive_int("budget", budget, "budget=100")
    if diversity not in DIVERSITIES:
        raise ValueError(
            f"diversity: {diversity!r} is not one of {', '.join(map(repr, DIVERSITIES))}; example: 'cluster'"
        )
    if per_label_quota is not None:
        per_label_quota = _positive_int("per_label_quota", per_label_quota, "per_label_quota=20")
    kcenter_factor = _positive_int("kcenter_factor", kcenter_factor, "kcenter_factor=3")
    max_candidates = _positive_int("max_candidates", max_candidates, "max_candidates=50000")
    all_ids = np.asarray(list(item_ids), dtype=object)
    ids = all_ids
    n_all = len(ids)
    if len(set(ids.tolist())) != n_all:
        raise ValueError("item_ids: contains duplicates; give each pool item once")
    cold = scores is None
    values = np.zeros(n_all) if cold else np.asarray(scores, dtype=float)
    if values.shape != (n_all,):
        raise ValueError(f"scores: shape {values.shape} does not match {n_all} item_ids; give one score per item")
    if not np.all(np.isfinite(values)):
        raise ValueError("scores: contains NaN or infinite values; score every item with a finite number")
    x = None if features is None else check_features(features, n_all)
    labelled = None
    if labelled_features is not None and x is not None:
        labelled = check_features(labelled_features, None, "labelled_features")
        if len(labelled) and labelled.shape[1] != x.shape[1]:
            raise ValueError(
                f"labelled_features: {labelled.shape[1]} dimensions, the pool's features have {x.shape[1]}; "
                "give the labelled items' vectors from the same feature set"
            )
    labels = None if labels_of_item is None else np.asarray(list(labels_of_item), dtype=object)
    if labels is not None and labels.shape != (n_all,):
        raise ValueError(
            f"labels_of_item: {labels.shape[0]} labels for {n_all} items; give one label (or None) per item"
        )
    if diversity != "none" and x is None:
        raise ValueError(f"features: required by diversity {diversity!r}; give a feature vector per item or use 'none'")
    if per_label_quota is not None and labels is None:
        raise ValueError("labels_of_item: required by per_label_quota; give each item's predicted label")

    mask = np.zeros(n_all, dtype=bool) if excluded is None else np.asarray(excluded, dtype=bool)
    if mask.shape != (n_all,):
        raise ValueError(f"excluded: shape {mask.shape} does not match {n_all} item_ids")
    keep = np.flatnonzero(~mask)
    ids, values = ids[keep], values[keep]
    x = None if x is None else x[keep]
    labels = None if labels is None else labels[keep]
    n = len(ids)

    ranked = np.lexsort((tie_break_keys(ids, seed), -values))  # best first; ties by the seeded hash
    method = diversity
    if cold:
        method = "typiclust" if x is not None else "random"
    n_candidates = None
    if method == "typiclust" and n > 0:
        order = typiclust(x, min(budget, n), labelled, seed=seed, sample_size=sample_size)
    elif method == "cluster" and n > 0:
        candidates = ranked[: min(n, max(budget, candidate_factor * budget))]
        clusters = kmeans_labels(x[candidates], n_clusters or budget, seed, sample_size)
        order = cluster_round_robin(candidates, clusters)
    elif method == "kcenter" and n > 0:
        candidates = ranked[: min(n, max(budget, kcenter_factor * budget), max_candidates)]
        n_candidates = len(candidates)
        groups = None if labels is None else labels[candidates]
        weights = np.maximum(values[candidates], 0.0)  # uncertainty-weighted: score × distance
        picked = kcenter_coreset(
            x[candidates], labelled, min(budget, len(candidates)), 0, groups, per_label_quota, weights, seed
        )
        order = candidates[picked]
    else:
        order = ranked
    if method != "none" and n > 0:
        order = np.concatenate([order, ranked[~np.isin(ranked, order)]])  # then the rest, by score
    chosen = _apply_quota(order, labels, per_label_quota, budget)
    chosen_ids = ids[chosen]
    if mask.any() and set(chosen_ids.tolist()) & set(all_ids[mask].tolist()):  # the guard behind the filter
        raise RuntimeError("choose_items: an excluded (test-subset) item was chosen")  # pragma: no cover
    if cold:
        name = f"cold start: {method}"
    else:
        name = "score" if method == "none" else f"score + {method}"
    selection = Selection(
        item_ids=tuple(chosen_ids.tolist()),
        ranks=tuple(range(1, len(chosen) + 1)),
        scores=tuple(None if cold else float(v) for v in values[chosen]),
        budget=budget,
        pool_size=n,
        method=name,
        budget_exceeds_pool=budget > n,
        quota_limited=len(chosen) < min(budget, n),
        n_excluded=int(mask.sum()),
        n_candidates=n_candidates,
    )
    logger.info(selection.summary())
    return selection


def route_item(score: float, threshold: float) -> str:
    """The Uncertainty Gate's action: ``"label"`` when ``score >= threshold``, else ``"skip"``.

    Examples
    --------
    >>> route_item(0.5, 0.5), route_item(0.49, 0.5)
    ('label', 'skip')
    """
    return LABEL if score >= threshold else SKIP


def selection_record(
    score: float | None,
    strategy: str,
    model_id: str | None,
    rank: int | None,
    execution_id: str | None,
    selected_at: str,
    fallback: bool = False,
    requested: str | None = None,
) -> dict[str, Any]:
    """The value of ``metadata.user.activeLearning.selection`` on a scored or chosen item.

    ``strategy`` is the score actually computed (``ItemScores.strategy_used``) and ``requested``
    the configured one (default: ``strategy``); ``rank`` is the position in a batch (``None`` for
    the per-item gate); ``fallback`` says that margin / entropy fell back to least confidence;
    ``selected_at`` is an ISO timestamp.

    Examples
    --------
    >>> r = selection_record(0.7, "least_confidence", "m1", 1, "ex1", "2030-01-01T00:00:00Z", True, "margin")
    >>> r["rank"], r["strategy"], r["requested"]
    (1, 'least_confidence', 'margin')
    """
    return {
        "score": None if score is None else float(score),
        "strategy": strategy,
        "requested": strategy if requested is None else requested,
        "modelId": model_id,
        "rank": rank,
        "executionId": execution_id,
        "selectedAt": selected_at,
        "fallback": bool(fallback),
    }


def recorded_selection(metadata: Any) -> Any:
    """The ``metadata.user.activeLearning.selection`` of an entity's metadata dict, or ``None``.

    Examples
    --------
    >>> recorded_selection({"user": {"activeLearning": {"selection": {"score": 0.5}}}})
    {'score': 0.5}
    >>> recorded_selection({"user": "not an object"}) is None
    True
    """
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    active = user.get(RECORD_KEY) if isinstance(user, Mapping) else None
    return active.get(RECORD_FIELD) if isinstance(active, Mapping) else None


def utc_now() -> str:
    """The record's ``selectedAt``: now, UTC, to the second (``2030-01-01T00:00:00Z``)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def select_pool(
    predictions: pd.DataFrame,
    pool_ids: Sequence[Any],
    config: SelectionConfig,
    features: np.ndarray | None = None,
    labelled_features: np.ndarray | None = None,
    n_classes: int | None = None,
) -> tuple[Selection, ItemScores | None]:
    """Score a pool from the model's prediction records and choose ``config.budget`` items.

    The whole batch decision of Select for Labeling over plain data. Without predictions and
    with a strategy that needs them (a cold start), ``features`` are required and the batch is
    TypiClust over them (:func:`~nodes.select_for_labeling.coldstart.typiclust`). Diversity
    without ``features`` works on the predicted class-score vectors
    (:func:`~nodes.select_for_labeling.scores.class_score_matrix`); ``labelled_features`` (the
    labelled items' vectors from the same feature set as ``features``) are then not used.
    ``n_classes`` is ``K``, the number of the model's labels
    (:func:`~nodes.select_for_labeling.scores.model_class_count`; ``None`` = unknown), which
    margin and entropy complete top-k uploads to (``ItemScores.strategy_used`` names the score used).

    Returns
    -------
    selection : Selection
    scores : ItemScores or None
        ``None`` on a cold start.

    Examples
    --------
    >>> from nodes.select_for_labeling.scores import predictions_frame
    >>> p = predictions_frame({"a": [{"label": "cat", "confidence": 0.9, "type": "class"}],
    ...                        "b": [{"label": "cat", "confidence": 0.6, "type": "class"}]})
    >>> select_pool(p, ["a", "b"], SelectionConfig(budget=1, strategy="least_confidence"))[0].item_ids
    ('b',)
    """
    cold = len(predictions) == 0 and config.strategy != "random"
    if cold and features is None:
        raise ValueError("predictions: none on the pool; a cold start needs feature vectors (or strategy 'random')")
    scored = (
        None
        if cold
        else score_items(
            predictions, pool_ids, config.strategy, config.aggregation, config.empty_score, config.seed, n_classes
        )
    )
    if features is None and config.diversity != "none":
        labelled_features = None  # not in the space of the class-score vectors
        features, _ = class_score_matrix(predictions, pool_ids)
        if features.shape[1] == 0:
            features = np.zeros((len(pool_ids), 1))
    quota = config.per_label_quota if scored is not None else None
    selection = choose_items(
        None if scored is None else scored.scores,
        pool_ids,
        config.budget,
        diversity="none" if cold else config.diversity,
        features=features,
        per_label_quota=quota,
        labels_of_item=scored.top_label if quota is not None else None,
        seed=config.seed,
        labelled_features=labelled_features,
    )
    return selection, scored
