"""Benchmark: the four served Milvus collections at ml-25m shape, with the vectors a whole-graph run made.

Run: `scripts/services start milvus && python -m benchmarks.milvus_served [--lake data/bench/lake25m]
[--uri http://127.0.0.1:19530]` (`--uri data/bench/served.db` for Milvus Lite). Targets (issue 14, server
path): each collection loaded in <= 1 min, single-query p99 <= 10 ms.

For each collection spec (`media_vectors`, `user_vectors`, `hybrid_media_vectors`, `hybrid_user_vectors`),
the asset's own path: rows from the lake's Parquet (`media_rows` / `user_rows`), `rebuild` (column-wise
16 MiB inserts, flush, the spec's index, load, count, alias swap), timed per phase; then a release and a
second load of the built collection alone; then 500 single-vector searches (top 10, the spec's index and
search parameters) timed one after the other, and recall@10 of 200 queries against exact numpy search.
The lake must hold content_vectors, user_vectors, hybrid_movie_vectors, hybrid_user_vectors, movies,
availability and demographics (`benchmarks.whole_graph` leaves them in data/bench/whole_graph/lake).
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.common import drop_prefixed, report
from tv5_assets.vector_store import quality
from tv5_assets.vector_store.batching import byte_batches, row_bytes
from tv5_assets.vector_store.rebuild import rebuild
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets.vector_store.rows import Rows, media_rows, user_rows
from tv5_assets.vector_store.schema import HYBRID_MEDIA, HYBRID_USERS, MEDIA, USERS, CollectionSpec

SPECS = (MEDIA, USERS, HYBRID_MEDIA, HYBRID_USERS)


def rows_for(spec: CollectionSpec, lake: Path) -> Rows:
    vectors = pl.read_parquet(lake / f"{spec.source}.parquet")
    attributes = pl.read_parquet(lake / f"{spec.attributes}.parquet")
    if spec.id_column == "movie_id":
        return media_rows(vectors, pl.read_parquet(lake / "movies.parquet"), attributes, spec)
    return user_rows(vectors, attributes, spec)


def measure(milvus: MilvusResource, spec: CollectionSpec, rows: Rows, rng: np.random.Generator) -> dict[str, Any]:
    alias = milvus.alias_name(spec.alias)
    built = rebuild(milvus, spec, alias, rows, byte_batches(row_bytes(rows.frame), milvus.batch_bytes))
    milvus.client.release_collection(built.collection)
    started = time.perf_counter()
    milvus.load(built.collection)
    reload_s = time.perf_counter() - started
    ids = rows.frame["id"].to_numpy()
    matrix = np.asarray(rows.frame["vector"].to_numpy(), dtype=np.float32)
    seconds = []
    for query in matrix[rng.choice(len(ids), 510, replace=False)]:
        started = time.perf_counter()
        milvus.search(alias, query[None, :], limit=10, spec=spec)
        seconds.append(time.perf_counter() - started)
    queries = matrix[rng.choice(len(ids), 200, replace=False)]
    found = [[int(h["id"]) for h in hits] for hits in milvus.search(alias, queries, 10, spec=spec)]
    index = milvus.index_for(spec)
    recall = quality.recall_at_k(quality.pad_ids(found, 10), queries, ids, matrix, 10, index.metric_type)
    return {"rows": rows.frame.height, "dimension": rows.dimension, "index_params": index.describe(), **built.seconds,
            "reload_s": reload_s, **quality.latency_summary(seconds[10:]), "recall_at_10": recall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="http://127.0.0.1:19530")
    parser.add_argument("--lake", type=Path, default=Path("data/bench/lake25m"))
    parser.add_argument("--collections", default=",".join(spec.alias for spec in SPECS),
                        help="aliases to build and measure, comma-separated (default: all four)")
    args = parser.parse_args()
    wanted = args.collections.split(",")
    rng = np.random.default_rng(0)
    milvus = MilvusResource(uri=args.uri, collection_prefix=f"bench_{uuid.uuid4().hex[:8]}_", timeout_s=600)
    figures: list[tuple[str, str]] = []
    with milvus.connected():
        try:
            for spec in (spec for spec in SPECS if spec.alias in wanted):
                result = measure(milvus, spec, rows_for(spec, args.lake), rng)
                figures.append((f"{spec.alias} ({result['rows']:,} x {result['dimension']}, {result['index_params']})", ""))
                figures.append(("  build (insert / flush / index / load = total)",
                                f"{result['insert']:.1f} / {result['flush']:.1f} / {result['index']:.1f} / "
                                f"{result['load']:.1f} = {result['total']:.1f} s"))
                figures.append(("  load of the built collection alone", f"{result['reload_s']:.1f} s"))
                figures.append(("  single-query search, 500 queries", f"p50 {result['p50_ms']:.2f} ms, "
                                f"p99 {result['p99_ms']:.2f} ms"))
                figures.append(("  recall@10, 200 queries vs exact", f"{result['recall_at_10']:.4f}"))
                print("\n".join(f"{k}  {v}" for k, v in figures[-5:]), flush=True)
        finally:  # a shared server: leave nothing behind
            drop_prefixed(milvus)
    print(f"\nMilvus at {milvus.describe()}")
    report(figures)


if __name__ == "__main__":
    main()
