"""Diversity: spread a batch over the pool instead of taking near-duplicates.

Pure numpy / scikit-learn over feature vectors (one row per item: the platform's feature set,
or the predicted class-score vectors). Two methods, both seeded and bounded on large pools:

- :func:`cluster_round_robin` after :func:`kmeans_labels` — cluster-margin (Citovsky et al.,
  2021): cluster the most uncertain candidates with mini-batch k-means fitted on a sample of
  at most ``sample_size`` rows (all rows are then assigned), and take the most uncertain item
  of each cluster, round-robin.
- :func:`kcenter_greedy` — k-center greedy (Sener & Savarese, 2018): repeatedly take the
  candidate farthest from everything taken so far; O(k · m · d) for m candidates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Rows k-means is fitted on at most; the other rows are assigned to the fitted centers.
DEFAULT_SAMPLE_SIZE = 20_000


def check_features(features: Any, n_items: int, field: str = "features") -> np.ndarray:
    """Validate feature vectors: a finite 2-D float array with one row per item.

    Examples
    --------
    >>> check_features([[0, 1], [2, 3]], 2).shape
    (2, 2)
    """
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or x.shape[0] != n_items:
        raise ValueError(f"{field}: shape {x.shape} is not ({n_items}, n_features); give one vector per pool item")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{field}: contains NaN or infinite values; give finite feature vectors")
    return x


def kmeans_labels(
    features: np.ndarray, n_clusters: int, seed: int, sample_size: int = DEFAULT_SAMPLE_SIZE
) -> np.ndarray:
    """Cluster rows with seeded mini-batch k-means fitted on at most ``sample_size`` rows.

    Parameters
    ----------
    features : numpy.ndarray of shape (n, d)
    n_clusters : int
        Capped at the number of distinct rows.
    seed : int
    sample_size : int
        Rows used to fit the centers (a seeded sample); every row is then assigned.

    Returns
    -------
    numpy.ndarray of int, shape (n,)

    Examples
    --------
    >>> x = np.array([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5]])
    >>> labels = kmeans_labels(x, 2, seed=0)
    >>> bool(labels[0] == labels[1] != labels[2] == labels[3])
    True
    """
    from sklearn.cluster import MiniBatchKMeans

    n = features.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    distinct = len(np.unique(features, axis=0)) if n <= sample_size else n
    k = max(1, min(int(n_clusters), n, distinct))
    if k == 1:
        return np.zeros(n, dtype=int)
    rng = np.random.default_rng(seed)
    fit_rows = features if n <= sample_size else features[rng.choice(n, sample_size, replace=False)]
    model = MiniBatchKMeans(
        n_clusters=k,
        random_state=seed % (2**32),
        n_init=1,
        batch_size=2048,
        max_iter=50,
        init_size=min(len(fit_rows), max(3 * k, 3 * 2048)),
    )
    model.fit(fit_rows)
    labels = model.predict(features)
    logger.debug("k-means: %d clusters fitted on %d of %d rows", k, len(fit_rows), n)
    return labels.astype(int)


def cluster_round_robin(ranked: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Interleave clusters: each cluster's best, then each cluster's second best, …

    Parameters
    ----------
    ranked : numpy.ndarray of int
        Item positions, best (most uncertain) first.
    clusters : numpy.ndarray of int
        Cluster of each position in ``ranked`` (aligned with ``ranked``).

    Returns
    -------
    numpy.ndarray of int
        ``ranked`` reordered. Within a round, clusters come in the order of their best item.

    Examples
    --------
    >>> cluster_round_robin(np.array([7, 8, 9, 4]), np.array([0, 0, 1, 1])).tolist()
    [7, 9, 8, 4]
    """
    ranked = np.asarray(ranked)
    clusters = np.asarray(clusters)
    if ranked.size == 0:
        return ranked
    _, first_seen, inverse = np.unique(clusters, return_index=True, return_inverse=True)
    cluster_order = np.argsort(np.argsort(first_seen))[inverse]  # rank of each cluster by its best item
    within = np.zeros(len(ranked), dtype=int)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    within[order] = np.arange(len(ranked)) - np.repeat(starts, counts)
    return ranked[np.lexsort((cluster_order, within))]


def kcenter_greedy(
    features: np.ndarray,
    k: int,
    first: int = 0,
    groups: Sequence[Any] | None = None,
    quota: int | None = None,
) -> np.ndarray:
    """Greedy k-center: start at row ``first``, then repeatedly take the row farthest from those taken.

    Parameters
    ----------
    features : numpy.ndarray of shape (m, d)
        The candidates (bound ``m`` for large pools: cost is O(k · m · d)).
    k : int
        Rows to take (capped at ``m``).
    first : int
        The starting row (callers pass the most uncertain candidate, so the result is seeded by
        the ranking).
    groups, quota : optional
        With both, at most ``quota`` rows per group value (``None`` groups are not limited).

    Returns
    -------
    numpy.ndarray of int
        Rows in the order taken. Distance ties go to the lowest row.

    Examples
    --------
    >>> x = np.array([[0.0], [0.1], [10.0], [5.0]])
    >>> kcenter_greedy(x, 3).tolist()
    [0, 2, 3]
    """
    m = features.shape[0]
    k = min(int(k), m)
    if k <= 0:
        return np.zeros(0, dtype=int)
    x = features.astype(np.float64, copy=False)
    norms = np.einsum("ij,ij->i", x, x)
    nearest = np.full(m, np.inf)
    available = np.ones(m, dtype=bool)
    taken: list[int] = []
    used: dict[Any, int] = {}
    group_values = None if groups is None or quota is None else np.asarray(groups, dtype=object)
    current = int(first)
    while True:
        taken.append(current)
        available[current] = False
        if group_values is not None and group_values[current] is not None:
            g = group_values[current]
            used[g] = used.get(g, 0) + 1
            if used[g] >= quota:
                available &= group_values != g
        if len(taken) >= k or not available.any():
            break
        distance = norms - 2.0 * (x @ x[current]) + norms[current]
        np.minimum(nearest, np.maximum(distance, 0.0), out=nearest)
        current = int(np.argmax(np.where(available, nearest, -np.inf)))
    return np.asarray(taken, dtype=int)
