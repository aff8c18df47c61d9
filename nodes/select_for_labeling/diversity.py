"""Diversity: spread a batch over the pool instead of taking near-duplicates.

Pure numpy / scikit-learn over feature vectors (one row per item: the platform's feature set,
or the predicted class-score vectors). Two methods, both seeded and bounded on large pools:

- :func:`cluster_round_robin` after :func:`kmeans_labels` — cluster-margin (Citovsky et al.,
  2021): cluster the most uncertain candidates with mini-batch k-means fitted on a sample of
  at most ``sample_size`` rows (all rows are then assigned), and take the most uncertain item
  of each cluster, round-robin.
- :func:`kcenter_coreset` — the core-set of Sener & Savarese (2018): greedy farthest-first over
  the pool, distances measured from the already-labelled items, so the batch covers what is not
  yet labelled; O((b + L) · m · d) time for b picks among m candidates and L labelled vectors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Rows k-means is fitted on at most; the other rows are assigned to the fitted centers.
DEFAULT_SAMPLE_SIZE = 20_000
#: Labelled vectors the core-set measures distances from at most (a seeded sample beyond it).
MAX_LABELLED = 20_000
#: Floats one block of the candidate × labelled distance matrix may hold (32 MB of float64).
_BLOCK_FLOATS = 4_000_000


def check_features(features: Any, n_items: int | None, field: str = "features") -> np.ndarray:
    """Validate feature vectors: a finite 2-D float array with one row per item.

    ``n_items=None`` accepts any number of rows (e.g. the labelled items' vectors).

    Examples
    --------
    >>> check_features([[0, 1], [2, 3]], 2).shape
    (2, 2)
    """
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or (n_items is not None and x.shape[0] != n_items):
        rows = "n_items" if n_items is None else n_items
        raise ValueError(f"{field}: shape {x.shape} is not ({rows}, n_features); give one vector per item")
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


def nearest_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of ``x`` to its nearest row of ``centers`` (``inf`` if none).

    Computed in blocks of at most ~4 million distances, so memory stays bounded whatever the sizes.

    Examples
    --------
    >>> nearest_distances(np.array([[0.0, 0], [3, 4]]), np.array([[0.0, 0]])).tolist()
    [0.0, 5.0]
    """
    x = np.asarray(x, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    out = np.full(x.shape[0], np.inf)
    if centers.shape[0] == 0 or x.shape[0] == 0:
        return out
    center_norms = np.einsum("ij,ij->i", centers, centers)
    step = max(1, _BLOCK_FLOATS // centers.shape[0])
    for start in range(0, x.shape[0], step):
        block = x[start : start + step]
        squared = np.einsum("ij,ij->i", block, block)[:, None] - 2.0 * (block @ centers.T) + center_norms[None, :]
        out[start : start + step] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
    return out


def kcenter_coreset(
    pool_features: np.ndarray,
    labelled_features: np.ndarray | None,
    budget: int,
    first: int | None = None,
    groups: Sequence[Any] | None = None,
    quota: int | None = None,
    weights: np.ndarray | None = None,
    seed: int = 0,
    max_labelled: int = MAX_LABELLED,
) -> np.ndarray:
    """Core-set (Sener & Savarese, 2018): greedy farthest-first over the pool, from the labelled items.

    Each step takes the pool row farthest from its nearest *covered* point — a labelled item or a
    row taken before — so the batch covers the part of the feature space that is not yet labelled
    (the greedy 2-approximation of the k-center problem the paper solves).

    Parameters
    ----------
    pool_features : numpy.ndarray of shape (m, d)
        The candidates (cost O(budget · m · d) time, O(m) memory).
    labelled_features : numpy.ndarray of shape (L, d) or None
        Vectors of the items already labelled. More than ``max_labelled`` rows: a seeded sample of
        ``max_labelled`` is used (distances to a sample are upper bounds of the true ones).
        ``None`` or empty: the first row taken is ``first``.
    budget : int
        Rows to take (capped at ``m``).
    first : int, optional
        Row taken first when nothing is labelled (default 0; callers pass their best-ranked row).
    groups, quota : optional
        With both, exactly at most ``quota`` rows per group value (``None`` groups are not limited).
    weights : numpy.ndarray of shape (m,), optional
        Non-negative weight per row: each step takes the row of largest ``weight × distance``
        (uncertainty-weighted core-set). ``None`` is the plain core-set.
    seed : int
        Seeds the labelled-sample draw.
    max_labelled : int

    Returns
    -------
    numpy.ndarray of int
        Rows in the order taken. Ties go to the lowest row.

    Examples
    --------
    >>> pool = np.array([[0.0], [1.0], [9.0], [5.0]])
    >>> kcenter_coreset(pool, np.array([[0.5]]), 2).tolist()   # 9 is farthest from 0.5, then 5
    [2, 3]
    """
    x = np.asarray(pool_features, dtype=np.float64)
    m = x.shape[0]
    k = min(int(budget), m)
    if k <= 0:
        return np.zeros(0, dtype=int)
    if labelled_features is not None and len(labelled_features) > max_labelled:
        rng = np.random.default_rng(seed)
        labelled_features = np.asarray(labelled_features)[rng.choice(len(labelled_features), max_labelled, False)]
    nearest = (
        np.full(m, np.inf)
        if labelled_features is None or len(labelled_features) == 0
        else nearest_distances(x, labelled_features)
    )
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    norms = np.einsum("ij,ij->i", x, x)
    available = np.ones(m, dtype=bool)
    taken: list[int] = []
    used: dict[Any, int] = {}
    group_values = None if groups is None or quota is None else np.asarray(groups, dtype=object)
    while len(taken) < k and available.any():
        if np.isinf(nearest).all():  # nothing covered yet
            current = int(first or 0) if available[int(first or 0)] else int(np.flatnonzero(available)[0])
        else:
            gain = nearest if w is None else w * nearest
            current = int(np.argmax(np.where(available, gain, -np.inf)))
        taken.append(current)
        available[current] = False
        if group_values is not None and group_values[current] is not None:
            g = group_values[current]
            used[g] = used.get(g, 0) + 1
            if used[g] == quota:  # the group is full: none of it again
                available &= group_values != g
        squared = norms - 2.0 * (x @ x[current]) + norms[current]
        np.minimum(nearest, np.sqrt(np.maximum(squared, 0.0)), out=nearest)
    return np.asarray(taken, dtype=int)


def kcenter_greedy(
    features: np.ndarray,
    k: int,
    first: int = 0,
    groups: Sequence[Any] | None = None,
    quota: int | None = None,
) -> np.ndarray:
    """Greedy k-center from row ``first`` with nothing labelled: :func:`kcenter_coreset` without a labelled set.

    Examples
    --------
    >>> x = np.array([[0.0], [0.1], [10.0], [5.0]])
    >>> kcenter_greedy(x, 3).tolist()
    [0, 2, 3]
    """
    return kcenter_coreset(features, None, k, first=first, groups=groups, quota=quota)
