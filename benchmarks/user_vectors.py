"""Benchmark: the `user_vectors` computation on an ml-25m-shaped input, against a per-user loop.

Run: `python -m benchmarks.user_vectors [--baseline-users 3000]`. Targets (2 cores / 24 GiB): at
most 60 s and 8 GiB peak RSS for 25M ratings x 62,423 movies (384-d), as the asset runs it: scan
ratings.parquet, read the content vectors, one sparse product, write user_vectors.parquet.

The content vectors are seeded random unit vectors (the cost depends only on the shapes; encoding
62,423 texts on this CPU would take minutes and is measured by benchmarks.encoder_throughput).
Baseline, measured in the same run in its own process: a per-user Python loop (pandas groupby, a
numpy weighted mean per user) over the first `--baseline-users` users, timed without loading them,
extrapolated linearly by their share of the ratings; its vectors are compared with the sparse product's for those users.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import polars as pl

from benchmarks.common import BENCH_DIR, measure, ml25m_tables, report
from tv5_assets.core.storage import write_parquet_atomic
from tv5_assets.embeddings.cache import vector_column
from tv5_assets.embeddings.user_vectors import user_vectors

TABLES = BENCH_DIR / "tables"
OUT = BENCH_DIR / "embeddings"
DIM = 384


def prepare() -> tuple[int, int]:
    """The ml-25m-shaped tables (generated once) and random content vectors for its movies."""
    if not (TABLES / "ratings.parquet").exists():
        ml25m_tables()
    movie_ids = pl.read_parquet(TABLES / "movies.parquet", columns=["movie_id"])["movie_id"].sort()
    noise = np.random.default_rng(0).standard_normal((movie_ids.len(), DIM)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    write_parquet_atomic(pl.DataFrame({"movie_id": movie_ids}).with_columns(vector_column(noise)),
                         OUT / "content_vectors.parquet")
    return movie_ids.len(), pl.scan_parquet(TABLES / "ratings.parquet").select(pl.len()).collect().item()


def asset_phase() -> tuple[int, int, int]:
    """What the asset does, IO included: (users, ratings used, zero-weight users)."""
    content = pl.read_parquet(OUT / "content_vectors.parquet")
    result = user_vectors(pl.scan_parquet(TABLES / "ratings.parquet"), content)
    write_parquet_atomic(result.frame, OUT / "user_vectors.parquet")
    return result.frame.height, result.ratings_used, result.zero_weight_users


def baseline_phase(n_users: int) -> tuple[int, int, float, float]:
    """Per-user Python loop on the first n_users users: (users, ratings, loop seconds, max |difference|)."""
    content = pl.read_parquet(OUT / "content_vectors.parquet")
    index = dict(zip(content["movie_id"].to_list(), range(content.height)))
    matrix = content["vector"].to_numpy()
    users = pl.scan_parquet(TABLES / "ratings.parquet").select(pl.col("user_id").unique().sort()).head(n_users)
    ratings = (pl.scan_parquet(TABLES / "ratings.parquet").select("user_id", "movie_id", "rating")
               .join(users, on="user_id", how="semi").collect().to_pandas())
    out = {}
    started = time.perf_counter()
    for user, group in ratings.groupby("user_id"):
        rows = [index[m] for m in group["movie_id"]]
        weights = np.clip((group["rating"].to_numpy(dtype=np.float32) - 1) / 4, 0, None)
        if weights.sum() == 0:
            weights = np.ones_like(weights)
        mean = (weights[:, None] * matrix[rows]).sum(axis=0) / weights.sum()
        out[user] = mean / np.linalg.norm(mean)
    loop_seconds = time.perf_counter() - started
    fast = pl.read_parquet(OUT / "user_vectors.parquet").filter(pl.col("user_id").is_in(list(out)))
    reference = np.vstack([out[u] for u in fast["user_id"].to_list()])
    return len(out), len(ratings), loop_seconds, float(np.abs(fast["vector"].to_numpy() - reference).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-users", type=int, default=3_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    n_movies, n_ratings = prepare()
    print(f"input: {n_ratings:,} ratings x {n_movies:,} movies, {DIM}-d vectors; cores: {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f} (a shared machine: timings scale with it)")
    (users, used, zero), seconds, peak_mib = measure(asset_phase)
    (b_users, b_ratings, b_seconds, max_diff), _, b_peak = measure(baseline_phase, args.baseline_users)
    b_full = b_seconds * used / b_ratings  # the loop only: loading the slice is not counted against it
    report([
        ("user_vectors (sparse product)", f"{users:,} users from {used:,} ratings in {seconds:.1f} s, "
                                          f"peak RSS {peak_mib / 1024:.2f} GiB; {zero} zero-weight users"),
        ("baseline per-user loop", f"{b_users:,} users ({b_ratings:,} ratings) in {b_seconds:.1f} s -> "
                                   f"{b_full:.0f} s for all ratings (extrapolated linearly), "
                                   f"peak RSS {b_peak / 1024:.2f} GiB"),
        ("agreement on the baseline's users", f"max |difference| {max_diff:.2e}"),
        ("ratio vs per-user loop", f"{b_full / seconds:.1f}x faster"),
        ("target <= 60 s", "met" if seconds <= 60 else "MISSED"),
        ("target <= 8 GiB peak RSS", "met" if peak_mib <= 8 * 1024 else "MISSED"),
        ("load average at the end", f"{os.getloadavg()[0]:.1f}"),
    ])


if __name__ == "__main__":
    main()
