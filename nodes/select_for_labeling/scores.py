"""Uncertainty scores: how much an item is worth labelling, from its model predictions.

Pure numpy / pandas, no dtlpy. :func:`score_items` turns per-item prediction records (built from
annotation JSON by :func:`predictions_from_annotations`, for the model :func:`resolve_model_id`
names) into one score in [0, 1] per item, higher = more worth labelling, ties broken by
:func:`tie_break_keys`. The probability-matrix functions (:func:`margin_uncertainty`,
:func:`entropy_uncertainty`, :func:`least_confidence_uncertainty`, :func:`select_most_uncertain`,
:func:`select_random`) score rows of ``predict_proba`` directly. The formulas, fallbacks and
aggregations: docs/nodes.md (Uncertainty Gate / Select for Labeling).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nodes.select_for_labeling.config import AGGREGATIONS, STRATEGIES

logger = logging.getLogger(__name__)

#: Annotation type of an item-level class prediction; every other type is an instance.
CLASS_TYPE = "class"
PREDICTION_COLUMNS = ("item_id", "label", "confidence", "type", "scores")
UNCERTAINTY_METHODS = ("margin", "entropy", "least_confidence")


# ---------------------------------------------------------------------------------------------
# From annotation JSON to prediction records
# ---------------------------------------------------------------------------------------------


def _model_info(annotation: Mapping[str, Any]) -> Mapping[str, Any] | None:
    metadata = annotation.get("metadata")
    user = metadata.get("user") if isinstance(metadata, Mapping) else None
    model = user.get("model") if isinstance(user, Mapping) else None
    return model if isinstance(model, Mapping) else None


def prediction_model_ids(annotations: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The ids of the models that predicted the given annotations, sorted.

    A prediction is an annotation with ``metadata.user.model.model_id``; ground truth has none.

    Examples
    --------
    >>> prediction_model_ids([{"metadata": {"user": {"model": {"model_id": "m2"}}}},
    ...                       {"metadata": {"user": {"model": {"model_id": "m1"}}}}, {"metadata": {}}])
    ('m1', 'm2')
    """
    found = set()
    for annotation in annotations:
        model = _model_info(annotation)
        if model is not None and model.get("model_id") is not None:
            found.add(str(model["model_id"]))
    return tuple(sorted(found))


def resolve_model_id(
    annotations: Iterable[Mapping[str, Any]],
    configured: str | None,
    item_id: str = "?",
    field: str = "customNodeConfig.modelId",
) -> str | None:
    """Whose predictions to score: ``configured``, else the only model that predicted on the item.

    Parameters
    ----------
    annotations : iterable of dict
        The item's annotations as the platform returns them.
    configured : str or None
        The node's ``modelId``.
    item_id : str
        For the error message.
    field : str
        The config field named in the error message.

    Returns
    -------
    str or None
        ``None`` when no model predicted on the item (it scores ``emptyScore``).

    Raises
    ------
    ValueError
        When ``configured`` is ``None`` and several models predicted on the item.

    Examples
    --------
    >>> ann = [{"metadata": {"user": {"model": {"model_id": "m1"}}}}]
    >>> resolve_model_id(ann, None), resolve_model_id([], None), resolve_model_id(ann, "m9")
    ('m1', None, 'm9')
    """
    if configured is not None:
        return configured
    ids = prediction_model_ids(annotations)
    if len(ids) > 1:
        raise ValueError(
            f"{field}: not set, and item {item_id} carries predictions of {len(ids)} models "
            f'({", ".join(ids)}); set modelId to the model to score; example: "modelId": "{ids[0]}"'
        )
    return ids[0] if ids else None


def predictions_from_annotations(
    annotations: Iterable[Mapping[str, Any]],
    model_id: str | None = None,
) -> pd.DataFrame:
    """Prediction records (one row per predicted annotation) from the platform's annotation JSON.

    Keeps annotations with ``metadata.user.model`` (of ``model_id`` when given) and a numeric
    ``confidence``; predictions without a confidence are dropped and counted in the log. An
    optional class-score vector is read from ``metadata.user.model.scores``.

    Parameters
    ----------
    annotations : iterable of dict
        ``{"id", "itemId", "type", "label", "metadata": {"user": {"model": {"model_id",
        "name", "confidence"}}}, ...}``.
    model_id : str, optional
        Keep only this model's predictions.

    Returns
    -------
    pandas.DataFrame
        Columns ``item_id``, ``label``, ``confidence``, ``type``, ``scores``, ``model_id``.

    Examples
    --------
    >>> ann = {"id": "a1", "itemId": "i1", "type": "class", "label": "cat",
    ...        "metadata": {"user": {"model": {"model_id": "m1", "name": "r", "confidence": 0.8}}}}
    >>> frame = predictions_from_annotations([ann, {"id": "a2", "itemId": "i1", "type": "class", "label": "dog"}])
    >>> frame[["item_id", "label", "confidence"]].to_dict("records")
    [{'item_id': 'i1', 'label': 'cat', 'confidence': 0.8}]
    """
    rows = []
    dropped = 0
    for annotation in annotations:
        model = _model_info(annotation)
        if model is None or model.get("model_id") is None:
            continue
        if model_id is not None and str(model["model_id"]) != model_id:
            continue
        confidence = model.get("confidence")
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            dropped += 1
            continue
        rows.append(
            (
                annotation.get("itemId"),
                annotation.get("label"),
                float(confidence),
                annotation.get("type") or CLASS_TYPE,
                model.get("scores"),
                str(model["model_id"]),
            )
        )
    if dropped:
        logger.warning("dropped %d prediction(s) without a numeric metadata.user.model.confidence", dropped)
    return pd.DataFrame(rows, columns=[*PREDICTION_COLUMNS, "model_id"])


def predictions_frame(records_by_item: Mapping[Any, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Prediction records given as ``{item_id: [{"label", "confidence", "type", "scores"?}, ...]}``.

    Examples
    --------
    >>> predictions_frame({"i1": [{"label": "cat", "confidence": 0.9, "type": "class"}]}).shape
    (1, 5)
    """
    rows = [
        (item_id, r.get("label"), r.get("confidence"), r.get("type", CLASS_TYPE), r.get("scores"))
        for item_id, records in records_by_item.items()
        for r in records
    ]
    return pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))


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
        Margin / entropy fell back to least confidence (a single class, or an instance without
        a class-score vector).
    n_predictions : numpy.ndarray of int
        Prediction records used for the item (0: it scored ``empty_score``).
    top_label : numpy.ndarray of object
        Top class label, or the label of the most uncertain instance; ``None`` without prediction.
    tie_keys : numpy.ndarray of uint64
        Seeded hash of each id (:func:`tie_break_keys`).
    strategy, aggregation : str
    seed : int
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

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def has_predictions(self) -> bool:
        """Whether any item of the pool has a prediction (``False``: a cold start)."""
        return bool((self.n_predictions > 0).any())

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
        """The score record of one item (plain types, ready for JSON)."""
        label = self.top_label[position]
        return {
            "itemId": self.item_ids[position],
            "score": float(self.scores[position]),
            "strategy": self.strategy,
            "fallback": bool(self.fallback[position]),
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


def _vector_uncertainty(matrix: np.ndarray, lengths: np.ndarray, strategy: str) -> tuple[np.ndarray, np.ndarray]:
    """Uncertainty of zero-padded rows sorted descending, ``lengths`` real entries each.

    Returns the uncertainty in [0, 1] and the fallback flag (fewer than 2 classes for
    margin / entropy).
    """
    n = matrix.shape[0]
    p1 = matrix[:, 0] if matrix.shape[1] else np.zeros(n)
    least = 1.0 - p1
    several = lengths >= 2
    if strategy == "least_confidence":
        return np.clip(least, 0.0, 1.0), np.zeros(n, dtype=bool)
    if strategy == "margin":
        p2 = matrix[:, 1] if matrix.shape[1] > 1 else np.zeros(n)
        value = np.where(several, 1.0 - (p1 - p2), least)
    else:  # entropy over the renormalised top-k
        total = matrix.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.divide(matrix, total, out=np.zeros_like(matrix), where=total > 0)
            terms = np.where(q > 0, -q * np.log(np.where(q > 0, q, 1.0)), 0.0)
            log_k = np.log(np.maximum(lengths, 2))
        entropy = np.where(total[:, 0] > 0, terms.sum(axis=1) / log_k, 1.0)  # all-zero confidences: uniform
        value = np.where(several, entropy, least)
    return np.clip(value, 0.0, 1.0), ~several


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


def _vectors(raw: Sequence[Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    """Class-score vectors (lists) → zero-padded rows sorted descending, and their lengths."""
    arrays = []
    for vector in raw:
        a = np.asarray(vector, dtype=float).ravel()
        if a.size == 0 or not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
            raise ValueError(f"predictions.scores: {vector!r} on {where} is not a non-empty list of numbers in [0, 1]")
        arrays.append(-np.sort(-a))
    lengths = np.array([a.size for a in arrays], dtype=int)
    matrix = np.zeros((len(arrays), int(lengths.max()) if len(arrays) else 0))
    for row, a in enumerate(arrays):
        matrix[row, : a.size] = a
    return matrix, lengths


def _has_vector(column: pd.Series) -> np.ndarray:
    return column.map(lambda v: v is not None and not (isinstance(v, float) and math.isnan(v))).to_numpy(dtype=bool)


def score_items(
    predictions: pd.DataFrame | Mapping[Any, Sequence[Mapping[str, Any]]],
    item_ids: Sequence[Any],
    strategy: str = "margin",
    aggregation: str = "max",
    empty_score: float = 1.0,
    seed: int = 0,
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

    Returns
    -------
    ItemScores

    Notes
    -----
    Class confidences are deduplicated per label (highest kept) and sorted; entropy is
    H(q) / log K with q the top-k confidences renormalised to sum 1 (Settles, 2009, normalised so
    a uniform top-k scores 1). Cost: a few vectorised passes over the records (no per-item
    Python loop), plus one loop over the records that carry a ``scores`` vector.

    Examples
    --------
    >>> records = {"i1": [{"label": "cat", "confidence": 0.6, "type": "class"},
    ...                   {"label": "dog", "confidence": 0.3, "type": "class"},
    ...                   {"label": "fox", "confidence": 0.1, "type": "class"}],
    ...            "i2": [{"label": "cat", "confidence": 0.9, "type": "box"},
    ...                   {"label": "cat", "confidence": 0.4, "type": "box"}],
    ...            "i3": []}
    >>> s = score_items(records, ["i1", "i2", "i3"], "margin")
    >>> s.scores.round(3).tolist(), s.fallback.tolist()
    ([0.7, 0.6, 1.0], [False, True, False])
    >>> score_items(records, ["i1"], "entropy").scores.round(4).tolist()
    [0.8173]
    """
    _check_choice("strategy", strategy, STRATEGIES)
    _check_choice("aggregation", aggregation, AGGREGATIONS)
    if isinstance(empty_score, bool) or not isinstance(empty_score, int | float) or not 0 <= empty_score <= 1:
        raise ValueError(f"empty_score: {empty_score!r} is not a number in [0, 1]; example: 1.0")
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
    n_predictions = np.bincount(codes, minlength=n).astype(int)
    tie_keys = tie_break_keys(ids, seed)
    top_label = np.full(n, None, dtype=object)
    scored = strategy if strategy != "random" else "least_confidence"  # labels / details still computed

    # Classification: one uncertainty per item from its class confidences (or its top record's vector).
    unit_codes, unit_values, unit_fallback, unit_labels = [], [], [], []
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
        values, fallback = _vector_uncertainty(matrix, lengths, scored)
        vector_rows = np.flatnonzero(has_vector[is_class])
        if vector_rows.size:
            # The vector of each item's most confident class record that has one replaces the confidences.
            vec = pd.DataFrame({"c": c_codes[vector_rows], "p": c_conf[vector_rows], "r": vector_rows})
            vec = vec.sort_values(["c", "p"], ascending=[True, False], kind="stable").drop_duplicates("c")
            raw = frame["scores"].to_numpy(dtype=object)[is_class][vec["r"].to_numpy()]
            v_matrix, v_lengths = _vectors(raw, "a class prediction")
            v_values, v_fallback = _vector_uncertainty(v_matrix, v_lengths, scored)
            position = np.searchsorted(items_with_class, vec["c"].to_numpy())
            values[position], fallback[position] = v_values, v_fallback
        unit_codes.append(items_with_class)
        unit_values.append(values)
        unit_fallback.append(fallback)
        unit_labels.append(np.array([class_top_label[c] for c in items_with_class], dtype=object))

    # Instances: 1 - confidence, or the strategy on the instance's class-score vector.
    instance = ~is_class
    if instance.any():
        i_codes, i_conf = codes[instance], confidence[instance]
        values = np.clip(1.0 - i_conf, 0.0, 1.0)
        fallback = np.full(len(i_codes), scored != "least_confidence")
        rows = np.flatnonzero(has_vector[instance])
        if rows.size:
            raw = frame["scores"].to_numpy(dtype=object)[instance][rows]
            v_matrix, v_lengths = _vectors(raw, "an instance prediction")
            values[rows], fallback[rows] = _vector_uncertainty(v_matrix, v_lengths, scored)
        unit_codes.append(i_codes)
        unit_values.append(values)
        unit_fallback.append(fallback)
        unit_labels.append(labels[instance])

    scores = np.full(n, float(empty_score))
    fallback_any = np.zeros(n, dtype=bool)
    if unit_codes:
        u_codes = np.concatenate(unit_codes)
        u_values = np.concatenate(unit_values)
        u_labels = np.concatenate(unit_labels)
        present = np.bincount(u_codes, minlength=n) > 0
        rolled = _roll_up(u_codes, u_values, n, aggregation)
        scores[present] = rolled[present]
        fallback_any = np.bincount(u_codes, weights=np.concatenate(unit_fallback).astype(float), minlength=n) > 0
        # Label of each item's most uncertain unit (first in input order among equals).
        order = np.lexsort((-u_values, u_codes))
        first = np.r_[True, u_codes[order][1:] != u_codes[order][:-1]] if len(order) else np.zeros(0, bool)
        top_label[u_codes[order][first]] = u_labels[order][first]
    if strategy == "random":
        scores = random_scores(ids, seed)
        fallback_any = np.zeros(n, dtype=bool)
    logger.debug(
        "scored %d items by %s (%s): %d without prediction, %d fell back to least confidence",
        n,
        strategy,
        aggregation,
        int((n_predictions == 0).sum()),
        int(fallback_any.sum()),
    )
    return ItemScores(ids, scores, fallback_any, n_predictions, top_label, tie_keys, strategy, aggregation, seed)


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


# ---------------------------------------------------------------------------------------------
# Probability matrices (rows of predict_proba)
# ---------------------------------------------------------------------------------------------


def _as_probabilities(probabilities: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Validate and return ``probabilities`` as a float (n_items, n_labels) array."""
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2:
        raise ValueError(
            f"probabilities: expected a 2-D array (n_items, n_labels), got shape {p.shape}; "
            "pass one row of class probabilities per item"
        )
    if p.shape[1] < 2 and p.shape[0] > 0:
        raise ValueError(f"probabilities: need at least 2 label columns, got {p.shape[1]}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities: contains NaN or infinite values; pass finite class probabilities")
    if np.any(p < 0) or np.any(p > 1 + 1e-9):
        raise ValueError("probabilities: values must lie in [0, 1]; apply softmax to scores first")
    return p


def margin_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """Margin uncertainty, ``1 - (p_top1 - p_top2)`` per row (Scheffer et al., 2001).

    Parameters
    ----------
    probabilities : array-like of shape (n_items, n_labels)
        Class probabilities per item (rows need not sum exactly to 1).

    Returns
    -------
    numpy.ndarray of shape (n_items,)
        Values in [0, 1]; higher means the two best labels are closer (more informative).

    Examples
    --------
    >>> margin_uncertainty([[0.5, 0.5], [1.0, 0.0]]).tolist()
    [1.0, 0.0]
    """
    p = _as_probabilities(probabilities)
    if p.shape[0] == 0:
        return np.zeros(0)
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def entropy_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row, in nats (``0 * log 0`` is taken as 0; not normalised).

    Parameters
    ----------
    probabilities : array-like of shape (n_items, n_labels)

    Returns
    -------
    numpy.ndarray of shape (n_items,)
        ``0`` for a certain prediction, ``log(n_labels)`` for a uniform one.

    Examples
    --------
    >>> entropy_uncertainty([[0.5, 0.5], [1.0, 0.0]]).round(4).tolist()
    [0.6931, 0.0]
    """
    p = _as_probabilities(probabilities)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return 0.0 - terms.sum(axis=1) + 0.0  # + 0.0 turns -0.0 into 0.0


def least_confidence_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """Least-confidence uncertainty, ``1 - p_top1`` per row.

    Examples
    --------
    >>> least_confidence_uncertainty([[0.7, 0.3]]).round(6).tolist()
    [0.3]
    """
    p = _as_probabilities(probabilities)
    if p.shape[0] == 0:
        return np.zeros(0)
    return 1.0 - p.max(axis=1)


_SCORERS = {
    "margin": margin_uncertainty,
    "entropy": entropy_uncertainty,
    "least_confidence": least_confidence_uncertainty,
}


def uncertainty_scores(probabilities: np.ndarray, method: str = "margin") -> np.ndarray:
    """Score each row with the named uncertainty ``method`` (higher = more informative).

    Parameters
    ----------
    probabilities : array-like of shape (n_items, n_labels)
    method : {"margin", "entropy", "least_confidence"}

    Examples
    --------
    >>> uncertainty_scores([[0.9, 0.1], [0.6, 0.4]], "margin").round(6).tolist()
    [0.2, 0.8]
    """
    if method not in _SCORERS:
        raise ValueError(f"method: {method!r} is not one of {', '.join(UNCERTAINTY_METHODS)}; example: method='margin'")
    return _SCORERS[method](probabilities)


def select_most_uncertain(probabilities: np.ndarray, k: int, method: str = "margin") -> np.ndarray:
    """Indices of the ``k`` most informative rows, most informative first.

    Ties are broken by input order (a stable sort), so the result is a pure function of
    the inputs.

    Parameters
    ----------
    probabilities : array-like of shape (n_items, n_labels)
    k : int
        Label budget; ``k`` larger than the number of items selects them all.
    method : {"margin", "entropy", "least_confidence"}

    Returns
    -------
    numpy.ndarray of int, shape (min(k, n_items),)

    Examples
    --------
    >>> select_most_uncertain([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]], k=2).tolist()
    [1, 2]
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k: {k!r} is not a non-negative integer; example: k=100")
    scores = uncertainty_scores(probabilities, method)
    order = np.argsort(-scores, kind="stable")
    chosen = order[: min(int(k), scores.shape[0])]
    logger.debug("selected %d of %d items by %s uncertainty", chosen.size, scores.shape[0], method)
    return chosen


def select_random(n_items: int, k: int, seed: int) -> np.ndarray:
    """``k`` distinct indices in ``range(n_items)`` drawn uniformly with ``seed`` (the baseline).

    Examples
    --------
    >>> sorted(select_random(5, 5, seed=0).tolist())
    [0, 1, 2, 3, 4]
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k: {k!r} is not a non-negative integer; example: k=100")
    if n_items < 0:
        raise ValueError(f"n_items: {n_items!r} must be >= 0")
    rng = np.random.default_rng(seed)
    return rng.permutation(n_items)[: min(int(k), n_items)]
