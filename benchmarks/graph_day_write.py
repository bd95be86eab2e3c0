"""A day's new RATED pairs written with MERGE (the earlier statement) and with CREATE (the day's statement since
session 24), on the served graph of `benchmarks.whole_graph`, each in one transaction that is rolled back.

100,000 pairs of 20,000 users and movies they have not rated, alternating MERGE and CREATE; after the writes the
audit's two queries run in the same transaction (every pair's values read back; every user's RATED count).

    set -a; source .env; set +a; python -m benchmarks.graph_day_write [SEED] [merge|create ...]
"""

import os
import statistics
import sys
import time

import numpy as np
import polars as pl
from neo4j import GraphDatabase

from benchmarks.common import BENCH_DIR

LAKE = BENCH_DIR / "whole_graph" / "lake"
HEAD = "UNWIND range(0, size($user_id) - 1) AS i MATCH (u:User {id: $user_id[i]}), (m:Media {id: $movie_id[i]}) "
TAIL = " SET r.rating = $rating[i], r.timestamp = $timestamp[i], r.time_of_day = $time_of_day[i]"
VARIANTS = {"merge": HEAD + "MERGE (u)-[r:RATED]->(m)" + TAIL, "create": HEAD + "CREATE (u)-[r:RATED]->(m)" + TAIL}
AUDIT = ("UNWIND range(0, size($user_id) - 1) AS i "
         "MATCH (:User {id: $user_id[i]})-[r:RATED]->(:Media {id: $movie_id[i]}) "
         "WHERE r.rating = $rating[i] AND r.timestamp = $timestamp[i] AND r.time_of_day = $time_of_day[i] "
         "RETURN count(r) AS n")
COUNTS = ("UNWIND $ids AS id OPTIONAL MATCH (u:User {id: id}) "
          "RETURN id, CASE WHEN u IS NULL THEN 0 ELSE COUNT { (u)-[:RATED]->() } END AS rated")
CHUNK = 50_000


def new_pairs(seed: int) -> pl.DataFrame:
    """100,000 (user, movie) pairs the bench's ratings do not hold, 5 a user."""
    ratings = pl.scan_parquet(LAKE / "ratings.parquet").select("user_id", "movie_id")
    rng = np.random.default_rng(seed)
    users = rng.choice(np.arange(1, 162_542), 20_000, replace=False)
    movies = pl.read_parquet(LAKE / "movies.parquet", columns=["movie_id"])["movie_id"].to_numpy()
    pairs = pl.DataFrame({"user_id": np.repeat(users, 8), "movie_id": rng.choice(movies, 160_000)}).unique()
    pairs = pairs.join(ratings.filter(pl.col("user_id").is_in(users.tolist())).collect(),
                       on=["user_id", "movie_id"], how="anti").group_by("user_id").head(5)
    return pairs.sort("user_id", "movie_id").head(100_000).with_columns(
        rating=pl.lit(4.0), timestamp=pl.lit(1_578_000_000, pl.Int64), time_of_day=pl.lit("evening"))


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    pairs = new_pairs(seed)
    cols = {c: pairs[c].cast(pl.Int64).to_list() if c in ("user_id", "movie_id") else pairs[c].to_list()
            for c in pairs.columns}
    print(pairs.height, "pairs", flush=True)
    driver = GraphDatabase.driver(os.environ["NEO4J_URI"],
                                  auth=(os.environ["NEO4J_USER"], os.environ["NEO4J_PASSWORD"]))
    writes: dict[str, list[float]] = {}
    for name in sys.argv[2:] or ["merge", "create", "merge", "create"]:
        with driver.session() as session:
            tx = session.begin_transaction()
            started = time.perf_counter()
            for s in range(0, pairs.height, CHUNK):
                tx.run(VARIANTS[name], {c: v[s:s + CHUNK] for c, v in cols.items()}).consume()
            wrote = time.perf_counter() - started
            held = sum(tx.run(AUDIT, {c: v[s:s + CHUNK] for c, v in cols.items()}).single()["n"]
                       for s in range(0, pairs.height, CHUNK))
            audited = time.perf_counter() - started - wrote
            tx.run(COUNTS, {"ids": sorted(set(cols["user_id"]))}).data()
            counted = time.perf_counter() - started - wrote - audited
            tx.rollback()
        writes.setdefault(name, []).append(wrote)
        print(f"{name}: write {wrote:.2f} s, values audit {audited:.2f} s ({held}), counts {counted:.2f} s",
              flush=True)
    driver.close()
    if {"merge", "create"} <= writes.keys():
        ratio = statistics.median(writes["merge"]) / statistics.median(writes["create"])
        print(f"median write: MERGE {statistics.median(writes['merge']):.2f} s, CREATE "
              f"{statistics.median(writes['create']):.2f} s: CREATE {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
