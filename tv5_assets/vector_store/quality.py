"""Measuring a vector index against exact search: self-retrieval, recall@k, latency percentiles.

Scores are "higher is closer" for every metric (COSINE and IP: the dot product of the vectors, which
are unit-normalised for COSINE; L2: minus the squared distance), so one comparison rule serves all.
Ties count as found: an ANN hit whose exact score equals the k-th exact score (within `tol`) is as
good as the one numpy happened to rank k-th, and a rank-1 hit with an identical vector (two movies
with the same text) is as good as the query's own id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tv5_assets.core.topk import top_k_columns

TOLERANCE = 1e-5


def sample_positions(n: int, size: int, seed: int) -> np.ndarray:
    """`min(n, size)` distinct row positions, sorted, deterministic for `seed`."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def _prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if metric == "COSINE":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)
    return vectors


def scores(queries: np.ndarray, corpus: np.ndarray, metric: str) -> np.ndarray:
    """(queries, corpus) matrix of closeness, higher is closer."""
    q, c = _prepare(queries, metric), _prepare(corpus, metric)
    dots = q @ c.T
    if metric == "L2":
        return 2 * dots - (q * q).sum(axis=1, keepdims=True) - (c * c).sum(axis=1)[None, :]
    return dots


def exact_top_k(corpus: np.ndarray, queries: np.ndarray, k: int, metric: str,
                chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Positions and scores of the k closest corpus rows of each query, closest first (chunked)."""
    k = min(k, len(corpus))
    positions = np.empty((len(queries), k), dtype=np.int64)
    best = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), chunk):
        block = scores(queries[start:start + chunk], corpus, metric)
        positions[start:start + chunk], best[start:start + chunk] = top_k_columns(block, k)
    return positions, best


def _score_of_ids(queries: np.ndarray, found: np.ndarray, corpus_ids: np.ndarray, corpus: np.ndarray,
                  metric: str) -> np.ndarray:
    """Exact score of each found id (q, k) for its query; -inf for ids absent from the corpus (or -1)."""
    position = np.clip(np.searchsorted(corpus_ids, found), 0, len(corpus_ids) - 1)
    known = corpus_ids[position] == found
    q, c = _prepare(queries, metric), _prepare(corpus, metric)
    vectors = c[position]  # (q, k, dim)
    dots = np.einsum("qd,qkd->qk", q, vectors)
    if metric == "L2":
        dots = 2 * dots - (q * q).sum(axis=1)[:, None] - (vectors * vectors).sum(axis=2)
    return np.where(known, dots, -np.inf)


def pad_ids(found: Sequence[Sequence[int]], k: int) -> np.ndarray:
    """Search hits as a (queries, k) id matrix, -1 where a query returned fewer than k."""
    out = np.full((len(found), k), -1, dtype=np.int64)
    for row, ids in enumerate(found):
        ids = list(ids)[:k]
        out[row, :len(ids)] = ids
    return out


@dataclass(frozen=True)
class SelfRetrieval:
    rate: float  # own id (or an identical vector) at rank 1
    own_id_rate: float  # strictly the own id at rank 1
    queries: int
    misses: list[int]  # query ids that missed (first few)


def self_retrieval(query_ids: np.ndarray, query_vectors: np.ndarray, top1: np.ndarray, corpus_ids: np.ndarray,
                   corpus: np.ndarray, metric: str, tol: float = TOLERANCE) -> SelfRetrieval:
    """Share of queries whose rank-1 hit is themselves, or a row scoring as high as themselves."""
    own = _score_of_ids(query_vectors, query_ids[:, None], corpus_ids, corpus, metric)[:, 0]
    got = _score_of_ids(query_vectors, top1[:, None], corpus_ids, corpus, metric)[:, 0]
    hit = (top1 == query_ids) | (got >= own - tol)
    n = max(len(query_ids), 1)
    return SelfRetrieval(float(hit.sum() / n), float((top1 == query_ids).sum() / n), len(query_ids),
                         query_ids[~hit][:10].tolist())


def recall_at_k(found: np.ndarray, queries: np.ndarray, corpus_ids: np.ndarray, corpus: np.ndarray, k: int,
                metric: str, tol: float = TOLERANCE) -> float:
    """Mean share of each query's exact top-k that the index returned (`found`: (queries, k) ids)."""
    if len(queries) == 0:
        return 0.0
    _, exact = exact_top_k(corpus, queries, k, metric)
    kth = exact[:, -1]
    found_scores = _score_of_ids(queries, found[:, :k], corpus_ids, corpus, metric)
    distinct = np.array([len(set(row[row >= 0].tolist())) == (row >= 0).sum() for row in found])
    hits = np.minimum((found_scores >= kth[:, None] - tol).sum(axis=1), exact.shape[1])
    return float(np.mean(np.where(distinct, hits, 0) / exact.shape[1]))


def over_budget_to_decide_p99(queries: int) -> int:
    """How many of `queries` timings over a budget make their p99 (numpy's linear interpolation) exceed it
    whatever the others are: the top values from position floor(0.99 * (queries - 1)) on."""
    return queries - int(np.floor(0.99 * (queries - 1)))


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / mean / max in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    if ms.size == 0:
        return {"queries": 0, "p50_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0, "max_ms": 0.0}
    return {"queries": int(ms.size), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "mean_ms": round(float(ms.mean()), 3),
            "max_ms": round(float(ms.max()), 3)}
