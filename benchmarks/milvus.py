"""Benchmark: loading the two collections on the real Milvus server, against the seed's 1,000-row batches.

Run: `scripts/services start milvus && flock /tmp/tv5-bench.lock python -m benchmarks.milvus`
(`--media N --users N` to shrink it; `--uri` for another server).

What is measured, on the ml-25m sizes (62,423 media, 162,541 user vectors, 384-d) in one run:
- the project's build (`vector_store.rebuild`): column-wise insert requests of at most 16 MiB, flush,
  HNSW index (M=16, efConstruction=200, COSINE), load, exact count, alias swap: time per phase, total,
  vectors/s;
- the seed's approach on the same rows (`benchmarks.milvus_baselines`): `MilvusClient.insert` of 1,000 row
  dicts per request, then the same flush / index / load; the ratio of the two totals and of the insert phases;
- the insert phase alone for all four combinations (the project's, the seed's, row dicts in 16 MiB
  batches, columns in 1,000-row batches), interleaved and repeated (best of 2), after an untimed
  warm-up insert: the full builds run one after the other, so the first pays the server's warm-up;
- on the project's collections: single-query search latency p50/p99 and recall@10 at ef=100 against
  exact numpy search.

The vectors are synthetic: unit-normalised points scattered around 2,000 random centres (structured like
text embeddings; throughput does not depend on the values). Recall is also reported on pure noise
(uniform on the sphere), the worst case for any graph index, for the media size.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import numpy as np
import polars as pl

from benchmarks.common import BENCH_DIR, drop_prefixed
from benchmarks.milvus_baselines import SEED_BATCH_ROWS, RowDictStore, insert_row_dicts, row_batches
from tv5_assets.vector_store import quality
from tv5_assets.vector_store.batching import byte_batches, row_bytes
from tv5_assets.vector_store.rebuild import rebuild, versioned_name
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets.vector_store.rows import Rows, media_rows, user_rows
from tv5_assets.vector_store.schema import MEDIA, USERS, CollectionSpec

DIM = 384
INSERT_ROUNDS = 2
GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
PLATFORMS = ("TV5MONDE", "Netflix", "Amazon Prime", "Disney+", "HBO Max", "Apple TV+", "MUBI", "Criterion Channel")


def vectors(rng: np.random.Generator, n: int, centres: int | None) -> np.ndarray:
    """Unit vectors around `centres` random centres, or uniform on the sphere when `centres` is None."""
    if centres is None:
        points = rng.standard_normal((n, DIM), dtype=np.float32)
    else:
        middle = rng.standard_normal((centres, DIM), dtype=np.float32)
        points = middle[rng.integers(0, centres, n)] + 0.6 * rng.standard_normal((n, DIM), dtype=np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def _vector_frame(column: str, ids: np.ndarray, matrix: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({column: ids.astype(np.int32), "vector": matrix}).with_columns(
        pl.col("vector").cast(pl.Array(pl.Float32, DIM)))


def media(n: int, rng: np.random.Generator, centres: int | None = 2_000) -> Rows:
    ids = np.arange(1, n + 1)
    genres = [list(rng.choice(GENRES, size=k, replace=False)) for k in rng.integers(1, 4, n)]
    movies = pl.DataFrame({"movie_id": ids.astype(np.int32), "title": [f"Movie {i}" for i in ids],
                           "display_title": [f"Movie number {i}" for i in ids],
                           "year": rng.integers(1920, 2024, n).astype(np.int32), "genres": genres})
    on = rng.random((n, len(PLATFORMS))) < 0.2
    pairs = np.argwhere(on)
    availability = pl.DataFrame({"movie_id": ids[pairs[:, 0]].astype(np.int32),
                                 "platform": np.array(PLATFORMS)[pairs[:, 1]]})
    return media_rows(_vector_frame("movie_id", ids, vectors(rng, n, centres)), movies, availability, MEDIA)


def users(n: int, rng: np.random.Generator) -> Rows:
    ids = np.arange(1, n + 1)
    demographics = pl.DataFrame({"user_id": ids.astype(np.int32),
                                 "archetype": rng.choice(["Cinephile", "Casual", "Family", "Senior"], n),
                                 "country": rng.choice(["FR", "BE", "CH", "CA", "SN", "US", "DE"], n)})
    return user_rows(_vector_frame("user_id", ids, vectors(rng, n, 2_000)), demographics, USERS)


def build(milvus: MilvusResource, store: Any, spec: CollectionSpec, rows: Rows, batches: list, label: str,
          keep: bool) -> dict[str, Any]:
    alias = milvus.alias_name(f"{spec.alias}_{label}")
    report = rebuild(store, spec, alias, rows, batches)
    result = {"rows": rows.frame.height, "batches": len(batches), **report.seconds,
              "vectors_per_s": round(rows.frame.height / report.seconds["total"], 1), "alias": alias}
    if not keep:
        milvus.drop_alias(alias)
        milvus.drop_collection(report.collection)
    return result


def insert_only(milvus: MilvusResource, spec: CollectionSpec, rows: Rows, batches: list, row_dicts: bool) -> float:
    """Seconds to insert `rows` in `batches` into a scratch collection (dropped afterwards)."""
    name = versioned_name(milvus.alias_name(f"{spec.alias}_scratch"))
    milvus.create_collection(name, spec, rows.dimension)
    try:
        started = time.perf_counter()
        for number, (start, stop) in enumerate(batches, start=1):
            part = rows.frame.slice(start, stop - start)
            insert_row_dicts(milvus, name, part) if row_dicts else milvus.insert(name, part, spec, number)
        return round(time.perf_counter() - started, 3)
    finally:
        milvus.drop_collection(name)


def search_quality(milvus: MilvusResource, alias: str, rows: Rows, rng: np.random.Generator,
                   latency_queries: int = 500, recall_queries: int = 1_000) -> dict[str, Any]:
    ids = rows.frame["id"].to_numpy()
    matrix = np.asarray(rows.frame["vector"].to_numpy(), dtype=np.float32)
    seconds = []
    for query in matrix[rng.choice(len(ids), latency_queries + 10, replace=False)]:
        started = time.perf_counter()
        milvus.search(alias, query[None, :], limit=10)
        seconds.append(time.perf_counter() - started)
    queries = matrix[rng.choice(len(ids), recall_queries, replace=False)]
    found = []
    for start in range(0, len(queries), 100):
        found.extend([int(h["id"]) for h in hits] for hits in milvus.search(alias, queries[start:start + 100], 10))
    recall = quality.recall_at_k(quality.pad_ids(found, 10), queries, ids, matrix, 10, milvus.metric_type)
    return {**quality.latency_summary(seconds[10:]), "recall_at_10": round(recall, 4), "ef": milvus.search_ef,
            "recall_queries": recall_queries}


def collection(milvus: MilvusResource, spec: CollectionSpec, rows: Rows, rng: np.random.Generator) -> dict[str, Any]:
    n = rows.frame.height
    by_bytes = byte_batches(row_bytes(rows.frame), milvus.batch_bytes)
    by_rows = row_batches(n, SEED_BATCH_ROWS)
    print(f"\n{spec.alias}: {n:,} vectors, {len(by_bytes)} byte batches of <= {milvus.batch_bytes >> 20} MiB, "
          f"{len(by_rows)} seed batches of {SEED_BATCH_ROWS} rows", flush=True)
    ours = build(milvus, milvus, spec, rows, by_bytes, "ours", keep=True)
    print(f"  project  : {_phases(ours)}", flush=True)
    searched = search_quality(milvus, ours["alias"], rows, rng)
    print(f"  search   : p50 {searched['p50_ms']:.2f} ms, p99 {searched['p99_ms']:.2f} ms (single query, top 10, "
          f"ef={searched['ef']}); recall@10 {searched['recall_at_10']:.4f} over {searched['recall_queries']} "
          "queries vs exact numpy", flush=True)
    milvus.drop_alias(ours["alias"])
    for name in milvus.list_collections():
        if name.startswith(ours["alias"] + "__v"):
            milvus.drop_collection(name)
    seed = build(milvus, RowDictStore(milvus), spec, rows, by_rows, "seed", keep=False)
    print(f"  seed     : {_phases(seed)}", flush=True)
    # The insert phase alone, each way, in interleaved rounds (best of INSERT_ROUNDS): the builds above
    # run one after the other, so the first pays the server's warm-up (segment allocation, caches).
    combos = {"project (columns, 16 MiB batches)": (by_bytes, False), "seed (row dicts, 1,000-row batches)": (by_rows, True),
              "row dicts, 16 MiB batches": (by_bytes, True), "columns, 1,000-row batches": (by_rows, False)}
    rounds: dict[str, list[float]] = {label: [] for label in combos}
    for _ in range(INSERT_ROUNDS):
        for label, (batches, row_dicts) in combos.items():
            rounds[label].append(insert_only(milvus, spec, rows, batches, row_dicts=row_dicts))
    variants = {label: min(times) for label, times in rounds.items()}
    for label, seconds in variants.items():
        print(f"  insert only, {label}: best {seconds:.2f} s of {rounds[label]} ({n / seconds:,.0f} vectors/s)",
              flush=True)
    insert_ratio = variants["seed (row dicts, 1,000-row batches)"] / variants["project (columns, 16 MiB batches)"]
    ratios = {"total": round(seed["total"] / ours["total"], 2), "insert": round(seed["insert"] / ours["insert"], 2),
              "insert_interleaved_best": round(insert_ratio, 2)}
    print(f"  ratio seed / project: total {ratios['total']}x, insert phase {ratios['insert']}x in the builds, "
          f"{ratios['insert_interleaved_best']}x interleaved best-of-{INSERT_ROUNDS}", flush=True)
    return {"project": ours, "seed": seed, "insert_only_s": variants, "ratio": ratios, "search": searched}


def _phases(result: dict[str, Any]) -> str:
    return (f"insert {result['insert']:.2f} s, flush {result['flush']:.2f} s, index {result['index']:.2f} s, "
            f"load {result['load']:.2f} s -> total {result['total']:.2f} s = {result['vectors_per_s']:,.0f} vectors/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="http://127.0.0.1:19530")
    parser.add_argument("--media", type=int, default=62_423)
    parser.add_argument("--users", type=int, default=162_541)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    milvus = MilvusResource(uri=args.uri, collection_prefix=f"bench_{uuid.uuid4().hex[:8]}_", timeout_s=300)
    results: dict[str, Any] = {}
    with milvus.connected():
        server = milvus.client.get_server_version()
        print(f"Milvus {server} at {args.uri}; HNSW M={milvus.hnsw_m} efConstruction={milvus.hnsw_ef_construction} "
              f"{milvus.metric_type}, search ef={milvus.search_ef}; synthetic unit vectors (clustered), {DIM}-d")
        try:
            warm = media(5_000, np.random.default_rng(args.seed + 1))  # untimed: wakes the server's data path
            insert_only(milvus, MEDIA, warm, byte_batches(row_bytes(warm.frame), milvus.batch_bytes), row_dicts=False)
            insert_only(milvus, MEDIA, warm, row_batches(5_000, SEED_BATCH_ROWS), row_dicts=True)
            results["media"] = collection(milvus, MEDIA, media(args.media, rng), rng)
            results["users"] = collection(milvus, USERS, users(args.users, rng), rng)
            noise = media(args.media, rng, centres=None)
            alias = build(milvus, milvus, MEDIA, noise, byte_batches(row_bytes(noise.frame), milvus.batch_bytes),
                          "noise", keep=True)["alias"]
            results["media_uniform_noise_search"] = search_quality(milvus, alias, noise, rng, latency_queries=100)
            print(f"\nmedia on uniform noise (worst case): recall@10 "
                  f"{results['media_uniform_noise_search']['recall_at_10']:.4f} at ef={milvus.search_ef}")
        finally:  # the server is shared: leave nothing behind
            drop_prefixed(milvus)
    project = sum(results[k]["project"]["total"] for k in ("media", "users"))
    seed = sum(results[k]["seed"]["total"] for k in ("media", "users"))
    print(f"\nboth collections: project {project:.1f} s, seed {seed:.1f} s, ratio {seed / project:.2f}x")
    out = BENCH_DIR / "milvus.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"server": server, **results}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
