"""Uncertainty scores: how much an item is worth labelling, from its model predictions.

Pure numpy / pandas, no dtlpy. :func:`score_items` turns per-item prediction records
(:mod:`~nodes.select_for_labeling.predictions`) into one score in [0, 1] per item, higher = more
worth labelling, ties broken by :func:`tie_break_keys`: per item for classification and per
instance for detection / segmentation, each the
:func:`~nodes.select_for_labeling.probabilities.completed_uncertainty` of the model's class
distribution over its ``K`` labels. Formulas, fallbacks and aggregations: docs/nodes.md
("Scores"). The names of ``predictions`` and ``probabilities`` are importable from here too.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nodes.select_for_labeling.config import AGGREGATIONS, STRATEGIES
from nodes.select_for_labeling.predictions import (
    CLASS_TYPE,
    PREDICTION_COLUMNS,
    VECTOR_FIELD,
    prediction_model_ids,
    predictions_frame,
    predictions_from_annotations,
    resolve_model_id,
    score_vector,
)
from nodes.select_for_labeling.probabilities import (
    COMPLETE_TOLERANCE,
    UNCERTAINTY_METHODS,
    check_class_count,
    completed_uncertainty,
    entropy_uncertainty,
    least_confidence_uncertainty,
    margin_uncertainty,
    model_class_count,
    select_most_uncertain,
    select_random,
    uncertainty_scores,
)

logger = logging.getLogger(__name__)

LEAST_CONFIDENCE = "least_confidence"

__all__ = [
    "CLASS_TYPE",
    "COMPLETE_TOLERANCE",
    "LEAST_CONFIDENCE",
    "PREDICTION_COLUMNS",
    "UNCERTAINTY_METHODS",
    "VECTOR_FIELD",
    "ItemScores",
    "check_class_count",
    "class_score_matrix",
    "completed_uncertainty",
    "entropy_uncertainty",
    "least_confidence_uncertainty",
    "margin_uncertainty",
    "model_class_count",
    "prediction_model_ids",
    "predictions_frame",
    "predictions_from_annotations",
    "random_scores",
    "resolve_model_id",
    "score_items",
    "score_vector",
    "select_most_uncertain",
    "select_random",
    "tie_break_keys",
    "uncertainty_scores",
]


# ---------------------------------------------------------------------------------------------
# Seeded hashes
# ---------------------------------------------------------------------------------------------


def tie_break_keys(item_ids: Sequence[Any], seed: int) -> np.ndarray:
    """A seeded 64-bit key per item: the first 8 bytes of ``sha256(f"{seed}:{item_id}")``.

    Sorting by it breaks score ties the same way on every run and in every input order.

    Examples
    --------
    >>> int(tie_break_keys(["a"], 0)[0]) == int(tie_break_keys(["b", "a"], 0)[1])
    True
    """
    return np.fromiter(
        (int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "big") for i in item_ids),
        dtype=np.uint64,
        count=len(item_ids),
    )


def random_scores(item_ids: Sequence[Any], seed: int) -> np.ndarray:
    """The ``random`` baseline: a uniform number in [0, 1) per item from its seeded hash.

    Examples
    --------
    >>> s = random_scores(["a", "b"], seed=1)
    >>> bool(((0 <= s) & (s < 1)).all()), s.tolist() == random_scores(["a", "b"], seed=1).tolist()
    (True, True)
    """
    keys = tie_break_keys(item_ids, seed)
    return (keys >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# ---------------------------------------------------------------------------------------------
# Item scores
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ItemScores:
    """Scores of a pool of items (arrays aligned with ``item_ids``); see :func:`score_items`.

    Attributes
    ----------
    item_ids : numpy.ndarray of object
    scores : numpy.ndarray of float
        In [0, 1], higher = more worth labelling.
    fallback : numpy.ndarray of bool
        The item's score is not the requested strategy's: margin / entropy fell back to least
        confidence because ``K`` is unknown (see ``strategy_used``).
    n_predictions : numpy.ndarray of int
        Prediction records used for the item (0: it scored ``empty_score``).
    top_label : numpy.ndarray of object
        Top class label, or the label of the most uncertain instance; ``None`` without prediction.
    tie_keys : numpy.ndarray of uint64
        Seeded hash of each id (:func:`tie_break_keys`).
    strategy : str
        The strategy requested.
    aggregation : str
    seed : int
    strategy_used : str
        The score actually computed: ``strategy``, or ``"least_confidence"`` when margin /
        entropy could not be computed on some item of the pool because ``K`` is unknown (the
        whole pool is then scored by least confidence, so its scores stay comparable).
    n_classes : int or None
        ``K`` the scores were completed to (``None``: unknown).
    """

    item_ids: np.ndarray
    scores: np.ndarray
    fallback: np.ndarray
    n_predictions: np.ndarray
    top_label: np.ndarray
    tie_keys: np.ndarray
    strategy: str
    aggregation: str
    seed: int
    strategy_used: str = ""
    n_classes: int | None = None

    def __post_init__(self) -> None:
        if not self.strategy_used:
            object.__setattr__(self, "strategy_used", self.strategy)

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def has_predictions(self) -> bool:
        """Whether any item of the pool has a prediction (``False``: a cold start)."""
        return bool((self.n_predictions > 0).any())

    @property
    def fell_back(self) -> bool:
        """Whether the pool was scored by another strategy than the one requested."""
        return self.strategy_used != self.strategy

    def ranking(self) -> np.ndarray:
        """Positions sorted by score (descending), ties by the seeded hash of the item id.

        Examples
        --------
        >>> s = score_items({"a": [], "b": [], "c": [{"label": "x", "confidence": 1.0, "type": "class"}]},
        ...                 ["a", "b", "c"], "least_confidence")
        >>> s.item_ids[s.ranking()].tolist()  # a and b tie at 1.0 (no prediction): the hash decides
        ['a', 'b', 'c']
        """
        return np.lexsort((self.tie_keys, -self.scores))

    def detail(self, position: int) -> dict[str, Any]:
        """The score record of one item (plain types, ready for JSON); ``strategy`` is the one used."""
        label = self.top_label[position]
        return {
            "itemId": self.item_ids[position],
            "score": float(self.scores[position]),
            "strategy": self.strategy_used,
            "requested": self.strategy,
            "fallback": bool(self.fallback[position]),
            "nClasses": self.n_classes,
            "nPredictions": int(self.n_predictions[position]),
            "label": None if label is None else str(label),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per item: ``item_id``, ``score``, ``fallback``, ``n_predictions``, ``top_label``."""
        return pd.DataFrame(
            {
                "item_id": self.item_ids,
                "score": self.scores,
                "fallback": self.fallback,
                "n_predictions": self.n_predictions,
                "top_label": self.top_label,
            }
        )


def _check_choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{field}: {value!r} is not one of {', '.join(map(repr, allowed))}; example: {allowed[0]!r}")


def _check_predictions(predictions: Any) -> pd.DataFrame:
    if isinstance(predictions, Mapping):
        predictions = predictions_frame(predictions)
    if not isinstance(predictions, pd.DataFrame):
        raise ValueError(
            f"predictions: {type(predictions).__name__} is not a DataFrame or a mapping item_id -> records; "
            "build one with predictions_from_annotations(...)"
        )
    missing = [c for c in ("item_id", "label", "confidence", "type") if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions: missing column(s) {', '.join(missing)}; need {', '.join(PREDICTION_COLUMNS)}")
    confidence = pd.to_numeric(predictions["confidence"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(confidence) | (confidence < 0) | (confidence > 1)
    if bad.any():
        row = predictions.iloc[int(np.flatnonzero(bad)[0])]
        value = row["confidence"].item() if isinstance(row["confidence"], np.generic) else row["confidence"]
        raise ValueError(
            f"predictions.confidence: {value!r} on item {row['item_id']!r} is not a number in [0, 1]; "
            "upload probabilities (e.g. softmax outputs), not percentages or logits"
        )
    return predictions


def _padded(codes: np.ndarray, values: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``values`` grouped by ``codes`` (0..n_rows-1), sorted descending, zero-padded."""
    order = np.lexsort((-values, codes))
    codes, values = codes[order], values[order]
    lengths = np.bincount(codes, minlength=n_rows)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    rank = np.arange(len(codes)) - starts[codes]
    matrix = np.zeros((n_rows, int(lengths.max()) if len(lengths) and len(codes) else 0))
    matrix[codes, rank] = values
    return matrix, lengths


def _vectors(raw: Sequence[Any], item_ids: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Class-score vectors → zero-padded rows sorted descending, and their lengths."""
    arrays = [-np.sort(-score_vector(v, f"item {i!r}")) for v, i in zip(raw, item_ids, strict=True)]
    lengths = np.array([a.size for a in arrays], dtype=int)
    matrix = np.zeros((len(arrays), int(lengths.max()) if len(arrays) else 0))
    for row, a in enumerate(arrays):
        matrix[row, : a.size] = a
    return matrix, lengths


def _has_vector(column: pd.Series) -> np.ndarray:
    return column.map(lambda v: v is not None and not (isinstance(v, float) and math.isnan(v))).to_numpy(dtype=bool)


@dataclass
class _Units:
    """Scored units (a classified item, or one instance), in groups: item codes, top-k rows sorted
    descending (zero-padded), uploaded lengths, whole-distribution flags and labels."""

    codes: list[np.ndarray] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    whole: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)

    def add(self, codes: Any, rows: np.ndarray, lengths: Any, whole: Any, labels: Any) -> None:
        self.codes.append(np.asarray(codes, dtype=int))
        self.rows.append(rows)
        self.lengths.append(np.asarray(lengths, dtype=int))
        self.whole.append(np.broadcast_to(np.asarray(whole, dtype=bool), (len(self.lengths[-1]),)))
        labels_array = np.empty(len(self.lengths[-1]), dtype=object)
        labels_array[:] = list(labels)
        self.labels.append(labels_array)

    def score(self, strategy: str, n_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Per unit (in the order added): the uncertainty and whether it is ``strategy``'s."""
        values, exact = [], []
        unknown_k = None if n_classes is not None else max(int(lengths.max()) for lengths in self.lengths)
        for rows, lengths, whole in zip(self.rows, self.lengths, self.whole, strict=True):
            v, e = completed_uncertainty(rows, lengths, strategy, n_classes, whole, unknown_k)
            values.append(v)
            exact.append(e)
        return np.concatenate(values), np.concatenate(exact)


def score_items(
    predictions: pd.DataFrame | Mapping[Any, Sequence[Mapping[str, Any]]],
    item_ids: Sequence[Any],
    strategy: str = "margin",
    aggregation: str = "max",
    empty_score: float = 1.0,
    seed: int = 0,
    n_classes: int | None = None,
) -> ItemScores:
    """Score every item of a pool from its prediction records (higher = more worth labelling).

    Parameters
    ----------
    predictions : pandas.DataFrame or mapping
        Columns ``item_id``, ``label``, ``confidence`` (in [0, 1]), ``type`` (``"class"`` or an
        instance type: ``"box"``, ``"segment"``, ``"polygon"``, …) and optionally ``scores`` (a
        class-score vector per record, or ``None``); or ``{item_id: [record, ...]}``. Records of
        items not in ``item_ids`` are ignored. Build it with :func:`predictions_from_annotations`.
    item_ids : sequence
        The pool, in any order (the result is aligned with it). Ids must be unique.
    strategy : {"least_confidence", "margin", "entropy", "random"}
    aggregation : {"max", "mean", "sum"}
        Roll-up of instance uncertainties; ``sum`` is min(1, Σ u).
    empty_score : float, default 1.0
        Score of an item without predictions (not used by ``random``).
    seed : int
        Seed of ``random`` and of the tie-breaking hash.
    n_classes : int, optional
        ``K``, the number of the model's labels (:func:`model_class_count`); ``None`` = unknown.

    Returns
    -------
    ItemScores
        ``strategy_used`` names the score computed; ``fallback`` marks the items it changed.

    Notes
    -----
    A unit is an item's class predictions (one confidence per label, the highest kept; or the
    class-score vector of its most confident class record) or one instance (its confidence, or
    its class-score vector). Each unit is scored by
    :func:`~nodes.select_for_labeling.probabilities.completed_uncertainty`: the uploaded top-k
    completed to ``K`` classes by spreading the missing mass evenly (Settles, 2009, for the
    formulas; entropy divided by log K). With ``K`` unknown, margin needs two uploaded classes and
    entropy a whole distribution (divided by the log of the most classes uploaded on any unit of
    the pool); if any unit of the pool lacks them, the pool is scored by least confidence and
    ``strategy_used`` says so. Cost: a few vectorised passes over the records (no
    per-item Python loop), plus one loop over the records that carry a ``scores`` vector.

    Examples
    --------
    >>> records = {"i1": [{"label": "cat", "confidence": 0.6, "type": "class"},
    ...                   {"label": "dog", "confidence": 0.3, "type": "class"},
    ...                   {"label": "fox", "confidence": 0.1, "type": "class"}],
    ...            "i2": [{"label": "cat", "confidence": 0.9, "type": "box"},
    ...                   {"label": "cat", "confidence": 0.4, "type": "box"}],
    ...            "i3": []}
    >>> s = score_items(records, ["i1", "i2", "i3"], "margin", n_classes=3)
    >>> s.scores.round(3).tolist(), s.strategy_used  # the 0.4 box: p2 = 0.6 / 2 = 0.3
    ([0.7, 0.9, 1.0], 'margin')
    >>> s = score_items(records, ["i1", "i2", "i3"], "margin")  # K unknown, a box has one class
    >>> s.scores.round(3).tolist(), s.strategy_used, s.fallback.tolist()
    ([0.4, 0.6, 1.0], 'least_confidence', [True, True, False])
    >>> score_items(records, ["i1"], "entropy", n_classes=3).scores.round(4).tolist()
    [0.8173]
    """
    _check_choice("strategy", strategy, STRATEGIES)
    _check_choice("aggregation", aggregation, AGGREGATIONS)
    if isinstance(empty_score, bool) or not isinstance(empty_score, int | float) or not 0 <= empty_score <= 1:
        raise ValueError(f"empty_score: {empty_score!r} is not a number in [0, 1]; example: 1.0")
    n_classes = check_class_count(n_classes)
    ids = np.asarray(list(item_ids), dtype=object)
    n = len(ids)
    pool_index = pd.Index(ids)
    if not pool_index.is_unique:
        duplicate = pool_index[pool_index.duplicated()][0]
        raise ValueError(f"item_ids: {duplicate!r} appears more than once; give each pool item once")
    frame = _check_predictions(predictions)
    codes = pool_index.get_indexer(frame["item_id"])
    keep = codes >= 0
    if not keep.all():
        logger.debug("ignored %d prediction(s) on items outside the pool", int((~keep).sum()))
    frame = frame.loc[keep]
    codes = codes[keep]
    confidence = pd.to_numeric(frame["confidence"]).to_numpy(dtype=float)
    labels = frame["label"].to_numpy(dtype=object)
    is_class = (frame["type"].to_numpy(dtype=object) == CLASS_TYPE) if len(frame) else np.zeros(0, bool)
    has_vector = (
        _has_vector(frame["scores"]) if "scores" in frame.columns and len(frame) else np.zeros(len(frame), bool)
    )
    raw_vectors = frame["scores"].to_numpy(dtype=object) if "scores" in frame.columns else None
    n_predictions = np.bincount(codes, minlength=n).astype(int)
    tie_keys = tie_break_keys(ids, seed)
    top_label = np.full(n, None, dtype=object)
    units = _Units()

    # Classification: one unit per item, its class confidences (or its top class record's vector).
    if is_class.any():
        c_codes, c_conf, c_labels = codes[is_class], confidence[is_class], labels[is_class]
        by_item = pd.DataFrame({"c": c_codes, "l": c_labels, "p": c_conf}).sort_values(
            ["c", "p"], ascending=[True, False], kind="stable"
        )
        top_of_item = by_item.drop_duplicates("c")
        class_top_label = dict(zip(top_of_item["c"].to_numpy(), top_of_item["l"].to_numpy(), strict=True))
        dedup = by_item.drop_duplicates(["c", "l"])  # one confidence per label: the highest
        items_with_class, local = np.unique(dedup["c"].to_numpy(), return_inverse=True)
        matrix, lengths = _padded(local, dedup["p"].to_numpy(dtype=float), len(items_with_class))
        whole = np.zeros(len(items_with_class), dtype=bool)
        vector_rows = np.flatnonzero(has_vector[is_class])
        if vector_rows.size:
            # The vector of each item's most confident class record that has one replaces the confidences.
            vec = pd.DataFrame({"c": c_codes[vector_rows], "p": c_conf[vector_rows], "r": vector_rows})
            vec = vec.sort_values(["c", "p"], ascending=[True, False], kind="stable").drop_duplicates("c")
            position = np.searchsorted(items_with_class, vec["c"].to_numpy())
            v_matrix, v_lengths = _vectors(raw_vectors[is_class][vec["r"].to_numpy()], ids[vec["c"].to_numpy()])
            width = max(matrix.shape[1], v_matrix.shape[1])
            matrix = np.pad(matrix, ((0, 0), (0, width - matrix.shape[1])))
            matrix[position] = np.pad(v_matrix, ((0, 0), (0, width - v_matrix.shape[1])))
            lengths[position] = v_lengths
            whole[position] = True
        units.add(items_with_class, matrix, lengths, whole, [class_top_label[c] for c in items_with_class])

    # Instances: one unit each, its confidence (top-1 of its class distribution) or its vector.
    instance = ~is_class
    if instance.any():
        i_codes, i_conf, i_labels = codes[instance], confidence[instance], labels[instance]
        vector = has_vector[instance]
        plain = np.flatnonzero(~vector)
        if plain.size:
            units.add(i_codes[plain], i_conf[plain, None], np.ones(plain.size, int), False, i_labels[plain])
        rows = np.flatnonzero(vector)
        if rows.size:
            v_matrix, v_lengths = _vectors(raw_vectors[instance][rows], ids[i_codes[rows]])
            units.add(i_codes[rows], v_matrix, v_lengths, True, i_labels[rows])

    scored = strategy if strategy != "random" else LEAST_CONFIDENCE  # labels / details still computed
    used = strategy
    scores = np.full(n, float(empty_score))
    fallback_any = np.zeros(n, dtype=bool)
    if units.codes:
        u_codes = np.concatenate(units.codes)
        u_labels = np.concatenate(units.labels)
        u_values, exact = units.score(scored, n_classes)
        if not exact.all():  # K unknown and some unit cannot be scored: the whole pool by least confidence
            u_values, _ = units.score(LEAST_CONFIDENCE, n_classes)
            used = LEAST_CONFIDENCE
        present = np.bincount(u_codes, minlength=n) > 0
        rolled = _roll_up(u_codes, u_values, n, aggregation)
        scores[present] = rolled[present]
        fallback_any = present & (used != strategy)
        # Label of each item's most uncertain unit (first in input order among equals).
        order = np.lexsort((-u_values, u_codes))
        first = np.r_[True, u_codes[order][1:] != u_codes[order][:-1]] if len(order) else np.zeros(0, bool)
        top_label[u_codes[order][first]] = u_labels[order][first]
    if strategy == "random":
        scores = random_scores(ids, seed)
        fallback_any = np.zeros(n, dtype=bool)
        used = strategy
    if used != strategy:
        logger.warning(
            "%s needs the number of the model's labels (K) for items with fewer than two uploaded classes "
            "(or an incomplete distribution); K is unknown: scored %d items by least confidence instead",
            strategy,
            int(fallback_any.sum()),
        )
    logger.debug(
        "scored %d items by %s (%s, K=%s): %d without prediction",
        n,
        used,
        aggregation,
        n_classes,
        int((n_predictions == 0).sum()),
    )
    return ItemScores(
        ids, scores, fallback_any, n_predictions, top_label, tie_keys, strategy, aggregation, seed, used, n_classes
    )


def _roll_up(codes: np.ndarray, values: np.ndarray, n: int, aggregation: str) -> np.ndarray:
    """Per-item ``max``, ``mean`` or ``sum`` (capped at 1) of unit uncertainties (0 where none)."""
    if aggregation == "max":
        out = np.zeros(n)
        np.maximum.at(out, codes, values)
        return out
    counts = np.bincount(codes, minlength=n)
    if aggregation == "mean":
        totals = np.bincount(codes, weights=values, minlength=n)
        return np.divide(totals, counts, out=np.zeros(n), where=counts > 0)
    return np.minimum(np.bincount(codes, weights=values, minlength=n), 1.0)


def class_score_matrix(
    predictions: pd.DataFrame | Mapping[Any, Sequence[Mapping[str, Any]]],
    item_ids: Sequence[Any],
    labels: Sequence[Any] | None = None,
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Per item, the highest confidence predicted for each label (0 when not predicted).

    The feature vectors diversity falls back to when no feature set is configured.

    Returns
    -------
    matrix : numpy.ndarray of shape (n_items, n_labels)
    labels : tuple
        Column labels (sorted, or ``labels`` when given; other labels are dropped).

    Examples
    --------
    >>> m, cols = class_score_matrix({"a": [{"label": "dog", "confidence": 0.7, "type": "class"}]}, ["a", "b"])
    >>> m.tolist(), cols
    ([[0.7], [0.0]], ('dog',))
    """
    frame = _check_predictions(predictions)
    rows = pd.Index(pd.unique(np.asarray(list(item_ids), dtype=object))).get_indexer(frame["item_id"])
    columns = tuple(sorted(pd.unique(frame["label"]).tolist(), key=str)) if labels is None else tuple(labels)
    cols = pd.Index(columns).get_indexer(frame["label"])
    keep = (rows >= 0) & (cols >= 0)
    matrix = np.zeros((len(item_ids), len(columns)))
    np.maximum.at(matrix, (rows[keep], cols[keep]), pd.to_numeric(frame["confidence"]).to_numpy(float)[keep])
    return matrix, columns
