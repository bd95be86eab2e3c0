"""A day's new RATED pairs written with MERGE (the earlier statement) and with CREATE (the day's statement since
session 24), on the served graph of `benchmarks.whole_graph`, each in one transaction that is rolled back.

100,000 pairs of 20,000 users and movies they have not rated, alternating MERGE and CREATE: the day's own
`day_delta.statements` for the pairs marked new or not, then the day's own `day_delta.audit` in the same
transaction (the writes' own counts, every user's RATED count, a sample's values read back).

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
from tv5_assets.graph_store import day_delta

LAKE = BENCH_DIR / "whole_graph" / "lake"


def new_pairs(seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """100,000 (user, movie) pairs the bench's ratings do not hold, 5 a user, in `GraphDay.rated`'s columns; and
    each of their users' RATED count once they are written."""
    ratings = pl.scan_parquet(LAKE / "ratings.parquet").select("user_id", "movie_id")
    rng = np.random.default_rng(seed)
    users = rng.choice(np.arange(1, 162_542), 20_000, replace=False)
    movies = pl.read_parquet(LAKE / "movies.parquet", columns=["movie_id"])["movie_id"].to_numpy()
    theirs = ratings.filter(pl.col("user_id").is_in(users.tolist())).collect()
    pairs = pl.DataFrame({"user_id": np.repeat(users, 8), "movie_id": rng.choice(movies, 160_000)}).unique()
    pairs = pairs.join(theirs, on=["user_id", "movie_id"], how="anti").group_by("user_id").head(5)
    pairs = pairs.sort("user_id", "movie_id").head(100_000).select(
        pl.col("user_id").cast(pl.Int64), pl.col("movie_id").cast(pl.Int64), rating=pl.lit(4.0),
        timestamp=pl.lit(1_578_000_000, pl.Int64), time_of_day=pl.lit("18-23"))
    counts = pl.concat([theirs.select(pl.col("user_id").cast(pl.Int64)), pairs.select("user_id")]).filter(
        pl.col("user_id").is_in(pairs["user_id"].implode())).group_by(pl.col("user_id").alias("id")).agg(
        pl.len().cast(pl.Int64).alias("rated")).sort("id")
    return pairs, counts


def main() -> None:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    pairs, counts = new_pairs(seed)
    print(pairs.height, "pairs", flush=True)
    no_users = pl.DataFrame(schema={"id": pl.Int64, **{p: pl.String for p in day_delta.USER_PROPERTIES}})
    driver = GraphDatabase.driver(os.environ["NEO4J_URI"],
                                  auth=(os.environ["NEO4J_USER"], os.environ["NEO4J_PASSWORD"]))
    writes: dict[str, list[float]] = {}
    for name in sys.argv[2:] or ["merge", "create", "merge", "create"]:
        day = day_delta.GraphDay(rated=pairs.with_columns(pl.lit(name == "create").alias(day_delta.CREATED)),
                                 unrated=pairs.select("user_id", "movie_id").clear(), users=no_users,
                                 removed_users=pl.Series("id", [], pl.Int64), counts=counts)
        work = day_delta.statements(day, None)
        with driver.session() as session:
            tx = session.begin_transaction()
            started = time.perf_counter()
            problems, wrote_at, audited_at = day_delta.write_and_audit(tx, work, day)
            wrote, audited = wrote_at - started, audited_at - wrote_at
            tx.rollback()
        writes.setdefault(name, []).append(wrote)
        print(f"{name}: write {wrote:.2f} s, audit {audited:.2f} s ({problems or 'passed'})", flush=True)
    driver.close()
    if {"merge", "create"} <= writes.keys():
        ratio = statistics.median(writes["merge"]) / statistics.median(writes["create"])
        print(f"median write: MERGE {statistics.median(writes['merge']):.2f} s, CREATE "
              f"{statistics.median(writes['create']):.2f} s: CREATE {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
