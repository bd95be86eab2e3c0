"""The served hybrid searched through Milvus, as the recommender searches it: one ANN query per user.

The evaluation's movie vectors (fitted on train) go into a throw-away collection built by the vector
store's own rebuild path (the same index and metric as `hybrid_media_vectors`), each evaluated user's
vector is searched in it, and the collection is dropped after. Movies a user rated in train are
removed from the hits, so each search asks for k + that many (at most Milvus' top-k cap), at a
breadth ef of at least the limit. Users go in order of how much they rated, in requests of at most
50 users and 20,000 hits, so one heavy rater never makes a reply too large.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from tv5_assets.evaluation.evaluate import AnnTop, exclude_rated
from tv5_assets.vector_store.batching import byte_batches, row_bytes
from tv5_assets.vector_store.rebuild import rebuild
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets.vector_store.rows import fit_to_spec
from tv5_assets.vector_store.schema import HYBRID_MEDIA, ID_FIELD, VECTOR_FIELD, CollectionSpec

SPEC = CollectionSpec(alias="evaluation_hybrid_media", source="recommendation_quality", attributes="",
                      id_column="movie_id", scalars=(), metric_type=HYBRID_MEDIA.metric_type,
                      hnsw_m=HYBRID_MEDIA.hnsw_m, search_ef=HYBRID_MEDIA.search_ef,
                      description="throw-away: the evaluation's hybrid movie vectors, dropped after the search")
MILVUS_TOP_K_CAP = 16_384
BATCH = 50  # queries a request at most
HITS_PER_REQUEST = 20_000  # and at most this many hits a reply (Milvus caps a reply at 256 MiB; a hit is ~500 bytes)


def request_plan(wanted: np.ndarray, cap: int, max_queries: int = BATCH,
                 max_hits: int = HITS_PER_REQUEST) -> list[tuple[int, int, int]]:
    """[start, stop) slices of queries sorted by `wanted` hits (ascending), each with its limit (the slice's
    largest want, at most `cap`): at most `max_queries` queries and `max_hits` hits a request (one query at least)."""
    plan, start = [], 0
    while start < len(wanted):
        stop = start + 1
        while (stop - start < max_queries and stop < len(wanted)
               and (stop - start + 1) * min(int(wanted[stop]), cap) <= max_hits):
            stop += 1
        plan.append((start, stop, min(int(wanted[stop - 1]), cap)))
        start = stop
    return plan


def milvus_top(milvus: MilvusResource, log: Callable[[str], None]) -> tuple[AnnTop, dict[str, int]]:
    """An `AnnTop` searching Milvus, and counters it fills (lists cut short by the top-k cap)."""
    counters = {"users_searched": 0, "lists_cut_by_topk_cap": 0}

    def top(movies: np.ndarray, users: np.ndarray, rated: list[np.ndarray], k: int) -> np.ndarray:
        frame = pl.DataFrame({ID_FIELD: pl.Series(np.arange(len(movies)), dtype=pl.Int64),
                              VECTOR_FIELD: pl.Series(movies, dtype=pl.Array(pl.Float32, movies.shape[1]))})
        rows = fit_to_spec(frame, SPEC)
        alias = milvus.alias_name(SPEC.alias)
        report = rebuild(milvus, SPEC, alias, rows, byte_batches(row_bytes(rows.frame), milvus.batch_bytes), log=log)
        try:
            out = np.full((len(users), k), -1, np.int64)
            order = np.argsort([len(r) for r in rated], kind="stable")
            wanted = np.array([k + len(rated[i]) for i in order])
            for start, stop, limit in request_plan(wanted, min(MILVUS_TOP_K_CAP, len(movies))):
                part = order[start:stop]
                counters["lists_cut_by_topk_cap"] += int((wanted[start:stop] > limit).sum())
                ef = max(limit, milvus.index_for(SPEC).search_ef)
                hits = milvus.search(alias, users[part], limit=limit, ef=ef, spec=SPEC)
                out[part] = exclude_rated([[int(h["id"]) for h in q] for q in hits], [rated[i] for i in part], k)
            counters["users_searched"] += len(users)
            return out
        finally:
            milvus.drop_alias(alias)
            milvus.drop_collection(report.collection)

    return top, counters
