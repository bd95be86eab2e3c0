"""Top-K metrics on ranked lists: recall@K, NDCG@K (binary relevance) and catalogue coverage.

recall@K = hits in the top K / min(K, positives) (so a perfect list scores 1 even with many positives,
the convention of Liang et al. 2018 and Steck 2019); NDCG@K = DCG of the hits / the DCG of an ideal
list of min(K, positives) hits. Users without positives are not scored. Coverage = distinct movies in
anyone's top K / movies in the catalogue.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def hit_matrix(top: np.ndarray, positives: sp.csr_matrix) -> np.ndarray:
    """(users, K) booleans: is the movie (column index) at each rank a held-out positive of that user?

    A column of -1 (a search that returned fewer than K movies) is a miss.
    """
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
    found = np.asarray(positives[rows, np.maximum(top.ravel(), 0)]).ravel() > 0
    return (found & (top.ravel() >= 0)).reshape(top.shape)


def recall_at_k(hits: np.ndarray, positive_counts: np.ndarray, k: int) -> np.ndarray:
    """Per-user recall@k from a (users, >=k) hit matrix and each user's number of positives (> 0)."""
    return hits[:, :k].sum(axis=1) / np.minimum(k, positive_counts)


def ndcg_at_k(hits: np.ndarray, positive_counts: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k (binary relevance, log2 discount)."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(k, positive_counts) - 1]
    return dcg / ideal


def coverage(top: np.ndarray, k: int, catalogue: int) -> float:
    """Share of the catalogue that appears in at least one user's top k."""
    if catalogue == 0 or top.size == 0:
        return 0.0
    shown = np.unique(top[:, :k])
    return float((shown >= 0).sum() / catalogue)
