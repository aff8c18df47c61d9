"""Cold start: the first batch, chosen from feature vectors alone, before any model has predicted.

TypiClust (Hacohen, Dekel & Weinshall, 2022, "Active Learning on a Budget"): at tiny budgets the
best labels are *typical* items — from dense regions, one per region — not the outliers that
farthest-first picks. :func:`typiclust` clusters the vectors with k-means and takes, from each
cluster (clusters without a labelled item first, then the largest), its most typical item;
:func:`typicality` is the inverse mean distance to the k nearest neighbours. Pure numpy /
scikit-learn, seeded, bounded on large pools (see the constants).
"""

from __future__ import annotations

import logging

import numpy as np

from nodes.select_for_labeling.diversity import DEFAULT_SAMPLE_SIZE, MAX_LABELLED, kmeans_labels

logger = logging.getLogger(__name__)

#: Neighbours the typicality averages over (the paper's k; fewer in small clusters).
K_NEIGHBOURS = 20
#: Clusters with fewer items (labelled and pool) are too small to be typical and are left out.
MIN_CLUSTER_SIZE = 5
#: At most this many k-means clusters, however large ``labelled + budget`` (the paper's cap).
MAX_CLUSTERS = 500
#: Clusters up to this count are fitted with full k-means (3 initialisations); more use mini-batch k-means.
FULL_KMEANS_CLUSTERS = 50
#: A cluster's typicality is measured on at most this many of its items (a seeded sample).
MAX_TYPICALITY_ROWS = 5_000


def typicality(features: np.ndarray, k: int = K_NEIGHBOURS) -> np.ndarray:
    """Typicality of each row: ``1 / (mean distance to its k nearest other rows + 1e-5)``.

    ``k`` is capped at ``n - 1``; a single row has typicality 1.

    Examples
    --------
    >>> t = typicality(np.array([[0.0], [0.1], [0.2], [5.0]]), k=2)
    >>> int(np.argmax(t)), int(np.argmin(t))   # the middle of the dense group; the outlier
    (1, 3)
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    k = min(int(k), n - 1)
    if k < 1:
        return np.ones(n)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return 1.0 / (distances[:, 1:].mean(axis=1) + 1e-5)  # column 0 is the row itself


def _cluster(x: np.ndarray, n_clusters: int, seed: int, sample_size: int) -> np.ndarray:
    """k-means labels: full k-means up to :data:`FULL_KMEANS_CLUSTERS` clusters, mini-batch beyond."""
    if n_clusters > FULL_KMEANS_CLUSTERS or len(x) > sample_size:
        return kmeans_labels(x, n_clusters, seed, sample_size)
    from sklearn.cluster import KMeans

    k = max(1, min(n_clusters, len(np.unique(x, axis=0))))
    if k == 1:
        return np.zeros(len(x), dtype=int)
    return KMeans(n_clusters=k, n_init=3, random_state=seed % (2**32)).fit_predict(x).astype(int)


def typiclust(
    pool_features: np.ndarray,
    budget: int,
    labelled_features: np.ndarray | None = None,
    seed: int = 0,
    k_neighbours: int = K_NEIGHBOURS,
    min_cluster_size: int = MIN_CLUSTER_SIZE,
    max_clusters: int = MAX_CLUSTERS,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> np.ndarray:
    """TypiClust: the most typical pool row of each k-means cluster, uncovered and large clusters first.

    Parameters
    ----------
    pool_features : numpy.ndarray of shape (m, d)
    budget : int
        Rows to take (capped at ``m``).
    labelled_features : numpy.ndarray of shape (L, d), optional
        Vectors of items already labelled: they join the clustering (at most :data:`MAX_LABELLED`,
        a seeded sample), and clusters holding none of them are visited first.
    seed : int
        Seeds k-means and the samples.
    k_neighbours : int
        The typicality's k, capped at half the cluster's unlabelled rows (as the paper's code).
    min_cluster_size : int
        Clusters with fewer rows (pool and labelled) are left out — unless no cluster is that large.
    max_clusters : int
        k-means makes ``min(L + budget, max_clusters)`` clusters (capped at the distinct rows);
        with a budget beyond the cap, clusters are visited again in the same order, each time
        for its most typical row not yet taken.
    sample_size : int
        k-means is fitted on at most this many rows (a seeded sample); every row is assigned.

    Returns
    -------
    numpy.ndarray of int
        Pool rows in the order taken.

    Notes
    -----
    Clusters are ordered once: fewest labelled items first, then largest, then by cluster id;
    the i-th pick comes from cluster ``order[i mod len(order)]`` (clusters with no row left drop
    out). Typicality is computed among the cluster's pool rows not yet taken, on at most
    :data:`MAX_TYPICALITY_ROWS` of them (a seeded sample) — O(s² · d) per cluster for s rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pool = np.vstack([rng.normal(0, 1, (30, 2)), rng.normal(20, 1, (30, 2)), [[60.0, 60.0]]])
    >>> picked = typiclust(pool, 2, seed=0)
    >>> sorted(int(p) // 30 for p in picked)   # one typical item of each blob, never the outlier (row 60)
    [0, 1]
    """
    x = np.asarray(pool_features, dtype=np.float64)
    m = x.shape[0]
    budget = min(int(budget), m)
    if budget <= 0:
        return np.zeros(0, dtype=int)
    rng = np.random.default_rng(seed)
    labelled = np.zeros((0, x.shape[1])) if labelled_features is None else np.asarray(labelled_features, float)
    if len(labelled) > MAX_LABELLED:
        labelled = labelled[rng.choice(len(labelled), MAX_LABELLED, replace=False)]
    everything = np.vstack([x, labelled]) if len(labelled) else x
    n_clusters = min(len(labelled) + budget, max_clusters)
    clusters = _cluster(everything, n_clusters, seed, sample_size)
    pool_clusters = clusters[:m]
    sizes = np.bincount(clusters)
    labelled_counts = np.bincount(clusters[m:], minlength=len(sizes))
    ids = np.flatnonzero(np.bincount(pool_clusters, minlength=len(sizes)) > 0)  # clusters with pool rows
    eligible = ids[sizes[ids] >= min_cluster_size]
    if len(eligible) == 0:
        eligible = ids  # every cluster is small: take what there is
    order = list(eligible[np.lexsort((eligible, -sizes[eligible], labelled_counts[eligible]))])
    logger.debug(
        "typiclust: %d clusters over %d pool + %d labelled rows; %d of them large enough (>= %d)",
        len(sizes),
        m,
        len(labelled),
        len(eligible),
        min_cluster_size,
    )
    taken = np.zeros(m, dtype=bool)
    picked: list[int] = []
    i = 0
    while len(picked) < budget and order:
        cluster = order[i % len(order)]
        rows = np.flatnonzero((pool_clusters == cluster) & ~taken)
        if len(rows) == 0:
            order.remove(cluster)
            continue
        if len(rows) > MAX_TYPICALITY_ROWS:
            rows = np.sort(rng.choice(rows, MAX_TYPICALITY_ROWS, replace=False))
        best = int(rows[np.argmax(typicality(x[rows], min(k_neighbours, len(rows) // 2)))])
        picked.append(best)
        taken[best] = True
        i += 1
    if len(picked) < budget:  # the clusters left out hold the rest
        rest = np.flatnonzero(~taken)
        picked.extend(rest[: budget - len(picked)].tolist())
    return np.asarray(picked, dtype=int)
