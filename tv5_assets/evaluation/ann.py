"""The served hybrid searched through Milvus, as the recommender searches it: one ANN query per user.

The evaluation's movie vectors (fitted on train) go into a throw-away collection built by the vector
store's own rebuild path (the same index and metric as `hybrid_media_vectors`), each evaluated user's
vector is searched in it, and the collection is dropped after. Movies a user rated in train are
removed from the hits, so each search needs up to k + that many (at most Milvus' top-k cap), at a
breadth ef of at least that limit. Users go in order of how much they rated, in requests of at most
50 users and 20,000 hits, so one heavy rater never makes a reply too large.

Each request is searched in two rounds: first at most 2k hits a user, then, for the few users whose
first list held fewer than k unrated movies, the full limit. Both rounds use the ef the full limit
needs, and at the same ef HNSW keeps the same candidates, so a shorter list is the prefix of the longer
one: the lists are the same as one full search, with far fewer hits (Lite builds every hit as a row).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

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


def search_in_two_rounds(search: Callable[[np.ndarray, int], list[list[int]]], rated: Sequence[np.ndarray],
                         k: int, limit: int) -> tuple[np.ndarray, int]:
    """Top k unrated of each query (see the module docstring), and how many queries needed the second round.
    `search(rows, limit)` returns the ranked ids of those query rows; it must keep its ef whatever the limit."""
    first = min(limit, 2 * k)
    found = search(np.arange(len(rated)), first)
    out = exclude_rated(found, rated, k)
    short = np.flatnonzero((out[:, -1] < 0) & np.array([len(f) >= first for f in found]) & (first < limit))
    if len(short):
        out[short] = exclude_rated(search(short, limit), [rated[i] for i in short], k)
    return out, len(short)


def milvus_top(milvus: MilvusResource, log: Callable[[str], None]) -> tuple[AnnTop, dict[str, int]]:
    """An `AnnTop` searching Milvus, and counters it fills (lists cut short by the top-k cap)."""
    counters = {"users_searched": 0, "lists_cut_by_topk_cap": 0, "users_searched_twice": 0}

    def top(movies: np.ndarray, users: np.ndarray, rated: list[np.ndarray], k: int) -> np.ndarray:
        frame = pl.DataFrame({ID_FIELD: pl.Series(np.arange(len(movies)), dtype=pl.Int64),
                              VECTOR_FIELD: pl.Series(movies, dtype=pl.Array(pl.Float32, movies.shape[1]))})
        rows = fit_to_spec(frame, SPEC)
        alias = milvus.alias_name(SPEC.alias)
        report = rebuild(milvus, SPEC, alias, rows, byte_batches(row_bytes(rows.frame), milvus.batch_bytes), log=log)

        def ranked(part: np.ndarray, ef: int, positions: np.ndarray, at_most: int) -> list[list[int]]:
            """Ranked movie ids for the users `part[positions]`, at breadth `ef`."""
            hits = milvus.search(alias, users[part[positions]], limit=at_most, ef=ef, spec=SPEC)
            return [[int(h["id"]) for h in q] for q in hits]

        try:
            out = np.full((len(users), k), -1, np.int64)
            order = np.argsort([len(r) for r in rated], kind="stable")
            wanted = np.array([k + len(rated[i]) for i in order])
            for start, stop, limit in request_plan(wanted, min(MILVUS_TOP_K_CAP, len(movies))):
                part = order[start:stop]
                counters["lists_cut_by_topk_cap"] += int((wanted[start:stop] > limit).sum())
                ef = max(limit, milvus.index_for(SPEC).search_ef)
                out[part], twice = search_in_two_rounds(functools.partial(ranked, part, ef), [rated[i] for i in part],
                                                        k, limit)
                counters["users_searched_twice"] += twice
            counters["users_searched"] += len(users)
            return out
        finally:
            milvus.drop_alias(alias)
            milvus.drop_collection(report.collection)

    return top, counters
