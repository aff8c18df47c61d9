"""Uncertainty sampling: which unlabelled items are worth sending to a labeller.

Active learning spends a label budget on the items the current model is least sure
about. This module scores class-probability rows (one row per item, one column per
label, as ``predict_proba`` returns them) and picks the ``k`` most informative ones.
It is pure numpy: no dtlpy, no I/O, deterministic (ties broken by input order), so the
demo and any pipeline code can call it with plain arrays.

Scores are oriented so that **higher means more informative** for every method:

- ``"margin"``: ``1 - (p_top1 - p_top2)`` (Scheffer et al., 2001). Items whose two
  best labels are nearly tied score close to 1.
- ``"entropy"``: Shannon entropy ``-sum(p * log p)`` in nats (Settles, 2009), ``0`` for
  a one-hot row and ``log(n_labels)`` for a uniform row.
- ``"least_confidence"``: ``1 - p_top1``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

UNCERTAINTY_METHODS = ("margin", "entropy", "least_confidence")


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
    """Margin uncertainty, ``1 - (p_top1 - p_top2)`` per item.

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
    """Shannon entropy of each row, in nats (``0 * log 0`` is taken as 0).

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
    """Least-confidence uncertainty, ``1 - p_top1`` per item.

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
    """Score each item with the named uncertainty ``method`` (higher = more informative).

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
