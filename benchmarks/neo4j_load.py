"""Benchmark: loading the `graph` into Neo4j on an ml-25m-shaped input, against the seed's row-wise MERGE.

Run: `flock /tmp/tv5-bench.lock python -m benchmarks.neo4j_load [--slice 1000000] [--seed-rows 20000] [--heap 8g]`.
Target (2 cores / 24 GiB): RATED created at >= 50,000 relationships/s (25M in under 9 minutes).

Everything runs on private Neo4j 5.26 servers (the project's launcher, their own port and data
directory under data/bench/, memory from the flags), never on the shared server of `scripts/services`.

Phases, in one run:
1. on a server with G1 (the JVM collector of `scripts/services`): `seed`, the seed's approach: one
   `MERGE (u) MERGE (m) MERGE (u)-[:RATED]->(m) SET ...` statement per rating, 1,000 per transaction,
   on the first `--seed-rows` ratings of the slice (with the same uniqueness constraints, so every
   MERGE is an index lookup); its time is extrapolated linearly to the slice (optimistic for the seed:
   MERGE of a relationship gets slower as degrees grow); then `graph` on the `--slice` first ratings
   (whole users) with 2 writers, after an untimed warm-up load (JIT);
2. on a server with the bulk-load profile (`--gc Parallel` with the heap committed up front, and
   checkpoints every 4 GiB of transaction log instead of 250 MiB: 25M relationships write ~5 GiB of
   log, i.e. ~20 checkpoints at the default): `graph` on the slice once untimed, then once per writer
   count in `--concurrency` (default 1, 2 and 3);
3. on that server, `graph` on all 25M ratings with the writer count that was fastest on the slice,
   then the explanation query.
User and Platform attributes come from simple stand-ins for `demographics` and `availability`
(the load does not depend on their values): every rater gets a profile; each film is on one to
three of three platforms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import polars as pl

from benchmarks.common import BENCH_DIR, ml25m_tables, report
from tv5_assets.graph_store import cypher, slots
from tv5_assets.graph_store.loader import create_schema, live_counts, load_graph, time_explanation
from tv5_assets.graph_store.resources import Neo4jClient
from tv5_assets.graph_store.rows import graph_rows, rated_rows
from tv5_assets.local_services import PrivateNeo4j, free_port

HOME = BENCH_DIR / "neo4j-home"
# fewer checkpoints during a long load (recovery after a crash replays more log; nothing else changes)
BULK_LOAD_SETTINGS = {"db.checkpoint.interval.volume": "4g", "db.checkpoint.interval.time": "30m"}
SEED_MERGE = """
MERGE (u:User {id: $user_id})
MERGE (m:Media {id: $movie_id})
MERGE (u)-[r:RATED]->(m)
SET r.rating = $rating, r.timestamp = $timestamp, r.time_of_day = $time_of_day
"""


def stand_ins(ratings: pl.DataFrame, movies: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    users = ratings.select(pl.col("user_id").unique().sort())
    demographics = users.with_columns(
        pl.lit("casual").alias("archetype"), pl.lit("25-34").alias("age_band"), pl.lit("FR").alias("country"))
    platforms = pl.DataFrame({"platform": ["TV5MONDE", "Netflix", "MUBI"],
                              "business_model": ["free", "subscription", "subscription"], "k": [0, 1, 2]})
    availability = (movies.select("movie_id").join(platforms, how="cross")
                    .filter((pl.col("movie_id") + pl.col("k")) % 3 != 0)
                    .with_columns(pl.lit(["western_europe"]).alias("regions"), pl.lit(["HD"]).alias("quality"),
                                  pl.lit(["fr", "en"]).alias("subtitle_languages")).drop("k"))
    return demographics, availability


def user_slice(ratings: pl.DataFrame, rows: int) -> pl.DataFrame:
    """The first `rows` ratings, extended to the end of the last user (batches hold whole users)."""
    last_user = ratings["user_id"][min(rows, ratings.height) - 1]
    return ratings.filter(pl.col("user_id") <= last_user)


def seed_load(client: Neo4jClient, ratings: pl.DataFrame, per_tx: int = 1_000) -> float:
    """The seed's approach on `ratings`: row-wise MERGE, `per_tx` rows per transaction. Returns seconds."""
    rows = rated_rows(ratings).to_dicts()  # the same property values as the graph asset stores
    started = time.perf_counter()
    with client._driver.session(database=client.database) as session:
        for offset in range(0, len(rows), per_tx):
            with session.begin_transaction() as tx:
                for row in rows[offset:offset + per_tx]:
                    tx.run(SEED_MERGE, row).consume()
                tx.commit()
    return time.perf_counter() - started


def load(client: Neo4jClient, tables: dict[str, pl.DataFrame], concurrency: int, batch_rows: int,
         label: str) -> tuple[dict, dict[str, int]]:
    rows = graph_rows(**tables)
    report_ = load_graph(client, rows, f"bench-{label}", batch_rows=batch_rows, force=True, concurrency=concurrency)
    slots.publish(client, report_.slot, report_.version)  # what readers (and `explain`) query
    return {"rated_per_s": report_.rows_per_s["RATED"], "rated_s": report_.seconds["RATED"],
            "total_s": report_.seconds["total"], "clear_s": report_.seconds["clear"],
            "retries": report_.retries}, report_.counts


def private_server(args: argparse.Namespace, gc: str, settings: dict[str, str] | None = None) -> PrivateNeo4j:
    shutil.rmtree(HOME, ignore_errors=True)
    server = PrivateNeo4j(HOME, port=free_port(), heap=args.heap, pagecache=args.pagecache,
                          tx_memory=args.tx_memory, gc=gc, settings=settings)
    server.start()
    return server


def client_of(server: PrivateNeo4j) -> Neo4jClient:
    settings = server.settings
    return Neo4jClient(settings.uri, settings.user, settings.password, log=lambda m: print(m, flush=True))


def explain(client: Neo4jClient) -> tuple[dict, list[dict], list[float]]:
    """The explanation query from the most-rated title, three times: (seed title, result, milliseconds)."""
    seed = client.read(cypher.EXPLANATION_SEED)[0]
    found, timings = time_explanation(client, {"media_id": seed["media_id"], "platform": "Netflix",
                                               "min_rating": 4.0, "max_users": 1000, "limit": 10})
    return seed, found, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice", type=int, default=1_000_000, help="ratings in the seed-vs-graph comparison")
    parser.add_argument("--seed-rows", type=int, default=20_000, help="ratings timed with the seed's MERGE")
    parser.add_argument("--concurrency", default="1,2,3", help="writer counts tried on the slice")
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--heap", default="8g", help="server heap; full-load RATED/s in three runs: 3g (default checkpoints) 46,779, 6g 49,223, 8g 55,736")
    parser.add_argument("--pagecache", default="4g")
    parser.add_argument("--tx-memory", default="2g")
    parser.add_argument("--gc", default="Parallel", choices=("G1", "Parallel"),
                        help="JVM collector of the server of phases 2 and 3 (the bulk-load profile)")
    parser.add_argument("--skip-full", action="store_true", help="only the slice comparison")
    parser.add_argument("--keep", action="store_true", help=f"keep the last server's data in {HOME}")
    args = parser.parse_args()

    tables = ml25m_tables()
    movies, ratings, genome = tables["movies"], tables["ratings"], tables["genome"]
    demographics, availability = stand_ins(ratings, movies)
    sliced = user_slice(ratings, args.slice)
    print(f"input: {ratings.height:,} ratings, {movies.height:,} movies, {genome.height:,} genome rows; "
          f"slice {sliced.height:,} ratings of {sliced['user_id'].n_unique():,} users; load {os.getloadavg()}",
          flush=True)
    slice_tables = {"movies": movies, "ratings": sliced, "genome": genome,
                    "demographics": demographics.join(sliced.select("user_id").unique(), on="user_id", how="semi"),
                    "availability": availability}
    writers = [int(n) for n in args.concurrency.split(",")]
    figures: list[tuple[str, str]] = [
        ("servers", f"Neo4j 5.26 Community (private), heap {args.heap}, page cache {args.pagecache}, "
                    f"tx memory {args.tx_memory}; phase 1 G1, phases 2-3 {args.gc} and "
                    + ", ".join(f"{k}={v}" for k, v in BULK_LOAD_SETTINGS.items())),
        ("batches", f"{args.batch_rows:,} rows per transaction"),
        ("slice", f"{sliced.height:,} ratings"),
    ]

    # 1. the seed's approach, and the graph asset's load on the same server (G1, as scripts/services)
    server = private_server(args, "G1")
    try:
        with client_of(server) as client:
            create_schema(client)
            seed_part = sliced.head(args.seed_rows)
            seed_s = seed_load(client, seed_part)
            seed_rate = seed_part.height / seed_s
            print(f"seed: {seed_part.height:,} ratings in {seed_s:.1f} s ({seed_rate:,.0f}/s)", flush=True)
            figures.append(("seed MERGE (row-wise, 1,000/tx), G1",
                            f"{seed_rate:,.0f} RATED/s, measured on {seed_part.height:,} rows, extrapolated "
                            f"{seed_s * sliced.height / seed_part.height / 60:,.1f} min for the slice"))
            load(client, slice_tables, 2, args.batch_rows, "warm-up-g1")
            measured, counts = load(client, slice_tables, 2, args.batch_rows, "slice-g1")
            assert counts["RATED"] == sliced.height, counts
            figures.append(("graph on the slice, 2 writers, G1",
                            f"{measured['rated_per_s']:,.0f} RATED/s ({measured['rated_s']:.1f} s); "
                            f"{measured['rated_per_s'] / seed_rate:,.0f}x the seed"))
    finally:
        server.stop()

    # 2. the bulk-load profile on the slice, 1..N writers; 3. everything
    server = private_server(args, args.gc, BULK_LOAD_SETTINGS)
    try:
        with client_of(server) as client:
            load(client, slice_tables, max(writers), args.batch_rows, "warm-up")
            rates = {}
            for n in writers:
                measured, counts = load(client, slice_tables, n, args.batch_rows, f"slice-{n}")
                assert counts["RATED"] == sliced.height, counts
                rates[n] = measured["rated_per_s"]
                figures.append((f"graph on the slice, {n} writer(s), {args.gc}",
                                f"{measured['rated_per_s']:,.0f} RATED/s ({measured['rated_s']:.1f} s, "
                                f"{measured['retries']} retries); {measured['rated_per_s'] / seed_rate:,.0f}x the seed"))
            concurrency = max(rates, key=rates.get)
            figures.append(("ratio graph / seed (slice, best)", f"{rates[concurrency] / seed_rate:,.0f}x "
                                                                 f"({concurrency} writers, {args.gc})"))
            if not args.skip_full:
                full_tables = {"movies": movies, "ratings": ratings, "genome": genome,
                               "demographics": demographics, "availability": availability}
                full, counts = load(client, full_tables, concurrency, args.batch_rows, "full")
                assert counts == live_counts(client) and counts["RATED"] == ratings.height, counts
                seed, found, timings = explain(client)
                figures += [
                    ("full graph", ", ".join(f"{k} {v:,}" for k, v in counts.items())),
                    (f"full RATED, {concurrency} writers, {args.gc}",
                     f"{full['rated_per_s']:,.0f} RATED/s ({full['rated_s'] / 60:.1f} min, {full['retries']} "
                     f"retries); target >= 50,000/s: {'met' if full['rated_per_s'] >= 50_000 else 'NOT met'}"),
                    ("full load, all phases", f"{full['total_s'] / 60:.1f} min (clear of its new slot "
                                              f"{full['clear_s']:.0f} s)"),
                    ("full vs seed (extrapolated)", f"{ratings.height / seed_rate / 3600:,.1f} h for the seed"),
                    ("explanation query", f"{len(found)} titles; {', '.join(f'{t:.0f}' for t in timings)} ms "
                                          f"(X = media {seed['media_id']} with {seed['ratings']:,} ratings)"),
                ]
            figures.append(("load average at the end", " ".join(f"{x:.1f}" for x in os.getloadavg())))
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(HOME, ignore_errors=True)
    report(figures)


if __name__ == "__main__":
    main()
