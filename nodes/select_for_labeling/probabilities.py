"""Probabilities to uncertainties: the score formulas, for rows of ``predict_proba`` and for top-k uploads.

Pure numpy. :func:`completed_uncertainty` is the one kernel :func:`~nodes.select_for_labeling.scores.score_items`
(batch selection and the Uncertainty Gate, classification and every instance of a detection or
segmentation) scores with: least confidence, margin and entropy of the model's whole class
distribution over its ``K`` labels (:func:`model_class_count`), completed when only the top ``k < K``
probabilities were uploaded by spreading the missing mass ``1 - sum(p)`` evenly over the ``K - k``
classes not uploaded (the maximum-entropy completion; never renormalised per item). The matrix
functions (:func:`margin_uncertainty`, :func:`entropy_uncertainty`,
:func:`least_confidence_uncertainty`, :func:`select_most_uncertain`, :func:`select_random`) score
full rows of ``predict_proba`` as scikit-activeml's ``uncertainty_scores`` does. The table of
definitions: docs/nodes.md (Uncertainty Gate / Select for Labeling, "Scores").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

UNCERTAINTY_METHODS = ("margin", "entropy", "least_confidence")
#: With ``K`` unknown, a top-k upload is the whole distribution when its mass is at least ``1 - COMPLETE_TOLERANCE``
#: (confidences rounded to 3 decimals still count as complete).
COMPLETE_TOLERANCE = 1e-3

__all__ = [
    "COMPLETE_TOLERANCE",
    "check_class_count",
    "UNCERTAINTY_METHODS",
    "completed_uncertainty",
    "entropy_uncertainty",
    "least_confidence_uncertainty",
    "margin_uncertainty",
    "model_class_count",
    "select_most_uncertain",
    "select_random",
    "uncertainty_scores",
]


# ---------------------------------------------------------------------------------------------
# K, the number of the model's classes
# ---------------------------------------------------------------------------------------------


def model_class_count(model_json: Mapping[str, Any]) -> int | None:
    """``K``: the number of the model's classes, from its JSON (``dl.Model.to_json()``); ``None`` if unknown.

    The distinct labels of ``configuration.id_to_label_map`` when it is a non-empty object (what
    the model's adapter outputs), else the distinct entries of ``labels``; ``None`` when neither
    is there (the scores then fall back as :func:`completed_uncertainty` says).

    Examples
    --------
    >>> model_class_count({"configuration": {"id_to_label_map": {"0": "cat", "1": "dog"}}, "labels": ["cat"]})
    2
    >>> model_class_count({"labels": ["cat", "dog", "fox"]}), model_class_count({"labels": []})
    (3, None)
    """
    if not isinstance(model_json, Mapping):
        return None
    configuration = model_json.get("configuration")
    mapping = configuration.get("id_to_label_map") if isinstance(configuration, Mapping) else None
    if isinstance(mapping, Mapping) and mapping:
        return len({str(label) for label in mapping.values()})
    labels = model_json.get("labels")
    if isinstance(labels, list | tuple):
        distinct = {str(label) for label in labels if label is not None}
        return len(distinct) or None
    return None


def check_class_count(n_classes: Any, field: str = "n_classes") -> int | None:
    """``n_classes`` as given (``None`` = unknown) after checking it is an integer >= 1.

    Examples
    --------
    >>> check_class_count(10), check_class_count(None)
    (10, None)
    """
    if n_classes is None:
        return None
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 1:
        raise ValueError(
            f"{field}: {n_classes!r} is not a positive integer; give the number of the model's labels "
            "(model_class_count(model.to_json())) or None when it is not known"
        )
    return int(n_classes)


# ---------------------------------------------------------------------------------------------
# Top-k uploads, completed to K classes
# ---------------------------------------------------------------------------------------------


def completed_uncertainty(
    top: np.ndarray,
    lengths: np.ndarray,
    strategy: str,
    n_classes: int | None,
    whole: np.ndarray | bool = False,
    unknown_k: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Uncertainty in [0, 1] of uploaded top-k probabilities, each row completed to the model's ``K`` classes.

    Parameters
    ----------
    top : numpy.ndarray of shape (n, w)
        Each row's uploaded probabilities sorted descending, zero-padded after ``lengths[i]`` entries.
    lengths : numpy.ndarray of int, shape (n,)
        Uploaded classes ``k`` per row (at least 1).
    strategy : {"least_confidence", "margin", "entropy"}
    n_classes : int or None
        ``K``. Each row uses ``K_row = max(K, k, 2)``: a model with one label is scored as that
        label against "not it".
    whole : bool or array of bool
        Rows that are the model's whole distribution (a class-score vector): with ``K`` unknown
        their length is ``K``.
    unknown_k : int, optional
        With ``K`` unknown, the stand-in entropy is divided by: ``log max(unknown_k, 2)``, e.g.
        the most classes uploaded on any item of the pool, so one pool shares one normaliser and
        the ranking is that of Shannon entropy (default: each row's own k).

    Returns
    -------
    values : numpy.ndarray of float
        ``least_confidence`` = 1 − p1 (the top uploaded probability). With ``K`` known, ``margin``
        = 1 − (q1 − q2) and ``entropy`` = H(q) / log K_row, with q the completed distribution:
        the uploaded p and, on each of the ``K_row − k`` classes not uploaded, an equal share of
        the missing mass m = max(0, 1 − Σp) (nothing to spread when k ≥ K). Entropy in nats, 0·log 0 = 0.
    exact : numpy.ndarray of bool
        Whether the row was scored by ``strategy``. Always with ``K`` known. With ``K`` unknown:
        margin needs k ≥ 2 (p1 and p2 are then exact); entropy needs k ≥ 2 and a whole
        distribution (``whole``, or Σp ≥ 1 − :data:`COMPLETE_TOLERANCE`), normalised by
        log ``unknown_k``.
        Where ``exact`` is ``False`` the value is least confidence.

    Examples
    --------
    >>> top, k = np.array([[0.5, 0.25, 0.25, 0.0], [0.6, 0.0, 0.0, 0.0]]), np.array([3, 1])
    >>> values, exact = completed_uncertainty(top, k, "margin", n_classes=5)
    >>> values.round(3).tolist(), exact.tolist()  # 0.6 alone: p2 = 0.4 / 4 = 0.1
    ([0.75, 0.5], [True, True])
    >>> completed_uncertainty(top, k, "margin", n_classes=None)[1].tolist()
    [True, False]
    >>> completed_uncertainty(np.array([[0.5, 0.5]]), np.array([2]), "entropy", n_classes=4)[0].round(3).tolist()
    [0.5]
    """
    top = np.asarray(top, dtype=float)
    lengths = np.asarray(lengths, dtype=int)
    n = top.shape[0]
    width = top.shape[1] if top.ndim == 2 else 0
    p1 = top[:, 0] if width else np.zeros(n)
    least = np.clip(1.0 - p1, 0.0, 1.0)
    if strategy == "least_confidence" or n == 0:
        return least, np.ones(n, dtype=bool)
    whole = np.broadcast_to(np.asarray(whole, dtype=bool), (n,))
    several = lengths >= 2
    missing = np.clip(1.0 - top.sum(axis=1), 0.0, None) if width else np.ones(n)
    p2 = top[:, 1] if width > 1 else np.zeros(n)
    if n_classes is None:
        complete = whole | (missing <= COMPLETE_TOLERANCE)
        exact = several if strategy == "margin" else several & complete
        if strategy == "margin":
            value = 1.0 - (p1 - p2)
        else:
            reference = np.maximum(lengths if unknown_k is None else np.maximum(lengths, int(unknown_k)), 2)
            value = _entropy(top, np.zeros(n), np.zeros(n, dtype=int)) / np.log(reference)
        return np.clip(np.where(exact, value, least), 0.0, 1.0), exact
    k_row = np.maximum(np.maximum(lengths, int(n_classes)), 2)
    n_missing = k_row - lengths
    share = np.divide(missing, n_missing, out=np.zeros(n), where=n_missing > 0)
    if strategy == "margin":
        candidates = np.column_stack(
            [p1, np.where(several, p2, 0.0), np.where(n_missing >= 1, share, 0.0), np.where(n_missing >= 2, share, 0.0)]
        )
        candidates = -np.sort(-candidates, axis=1)
        value = 1.0 - (candidates[:, 0] - candidates[:, 1])
    else:
        value = _entropy(top, missing, n_missing) / np.log(k_row)
    return np.clip(value, 0.0, 1.0), np.ones(n, dtype=bool)


def _entropy(top: np.ndarray, missing: np.ndarray, n_missing: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of the rows plus ``missing`` spread evenly over ``n_missing`` classes."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(top > 0, -top * np.log(np.where(top > 0, top, 1.0)), 0.0).sum(axis=1)
        spread = (missing > 0) & (n_missing > 0)
        share = np.where(spread, missing / np.where(n_missing > 0, n_missing, 1), 1.0)
        rest = np.where(spread, -missing * np.log(share), 0.0)
    return terms + rest


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
