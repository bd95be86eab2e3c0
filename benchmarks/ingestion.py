"""Benchmark: the `movies` and `ratings` assets on an ml-25m-shaped release, against chunked pandas.

Run: `python -m benchmarks.ingestion [--rowwise-rows N]`. Targets (2 cores / 24 GiB): `ratings` in at
most 60 s and 6 GiB peak RSS, at least 10x the chunked-pandas baseline.

Baselines, measured in the same run on the same CSV, each in its own process:
- `pandas-rowwise`: pandas read_csv in 1M-row chunks with per-row Python for validation, datetime
  conversion and time of day (`DataFrame.apply(axis=1)`), the way the seed processed ratings;
  timed on the first `--rowwise-rows` rows and extrapolated linearly (a full run takes hours);
- `pandas-vectorised`: the same chunks with vectorised pandas operations, a stronger baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from benchmarks.common import BENCH_DIR, measure, ml25m_release, report
from tv5_assets.core.storage import write_parquet_atomic
from tv5_assets.ingestion import movielens

CHUNK = 1_000_000
OUT = BENCH_DIR / "ingestion"


def movies_asset(release: str) -> int:
    parsed = movielens.parse_movies(Path(release) / "movies.csv", Path(release) / "links.csv")
    write_parquet_atomic(parsed.kept, OUT / "movies.parquet")
    return parsed.kept.height


def ratings_asset(release: str) -> int:
    movie_ids = pl.read_parquet(OUT / "movies.parquet", columns=["movie_id"])["movie_id"]
    parsed = movielens.parse_ratings(Path(release) / "ratings.csv", movie_ids)
    write_parquet_atomic(parsed.kept, OUT / "ratings.parquet")
    write_parquet_atomic(parsed.rejected, OUT / "ratings.quarantine.parquet")
    return parsed.kept.height


def _band(hour: int) -> str:
    return "night" if hour < 6 else "morning" if hour < 12 else "afternoon" if hour < 18 else "evening"


def _rowwise(row: pd.Series) -> pd.Series:
    ts = dt.datetime.fromtimestamp(int(row["timestamp"]), tz=dt.timezone.utc)
    ok = 0.5 <= float(row["rating"]) <= 5.0 and float(row["rating"]) * 2 == int(float(row["rating"]) * 2)
    return pd.Series({"valid": ok, "ts": ts, "time_of_day": _band(ts.hour)})


def pandas_rowwise(release: str, rows: int) -> int:
    """Per-row Python over the first `rows` rows of the first 1M-row chunk; returns rows processed."""
    movie_ids = set(pd.read_parquet(OUT / "movies.parquet", columns=["movie_id"])["movie_id"])
    chunk = next(iter(pd.read_csv(Path(release) / "ratings.csv", chunksize=CHUNK))).head(rows)
    derived = chunk.apply(_rowwise, axis=1)
    chunk = pd.concat([chunk, derived], axis=1)
    chunk = chunk[chunk["valid"] & chunk["movieId"].isin(movie_ids)]
    return len(chunk.drop(columns=["valid", "timestamp"]).drop_duplicates(["userId", "movieId"], keep="last"))


def pandas_vectorised(release: str) -> int:
    frames = []
    movie_ids = pd.read_parquet(OUT / "movies.parquet", columns=["movie_id"])["movie_id"]
    for chunk in pd.read_csv(Path(release) / "ratings.csv", chunksize=CHUNK):
        for column in ("userId", "movieId", "timestamp"):
            chunk[column] = pd.to_numeric(chunk[column], errors="coerce")
        chunk["rating"] = pd.to_numeric(chunk["rating"], errors="coerce")
        valid = (
            chunk["userId"].notna() & chunk["movieId"].isin(movie_ids)
            & chunk["rating"].between(0.5, 5.0) & ((chunk["rating"] * 2) % 1 == 0)
        )
        chunk = chunk[valid].copy()
        chunk["timestamp"] = pd.to_datetime(chunk["timestamp"], unit="s", utc=True)
        chunk["time_of_day"] = np.select(
            [chunk["timestamp"].dt.hour < 6, chunk["timestamp"].dt.hour < 12, chunk["timestamp"].dt.hour < 18],
            ["night", "morning", "afternoon"], "evening",
        )
        frames.append(chunk)
    ratings = pd.concat(frames).drop_duplicates(["userId", "movieId"], keep="last")
    ratings = ratings.sort_values(["userId", "timestamp"])
    ratings.to_parquet(OUT / "ratings-pandas.parquet")
    return len(ratings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rowwise-rows", type=int, default=100_000,
                        help="rows the row-wise baseline processes before extrapolating linearly to the file")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    release = ml25m_release()
    size = (release / "ratings.csv").stat().st_size
    print(f"release: {release} (ratings.csv {size / 2**20:.0f} MiB), cores: {os.cpu_count()}")

    n_movies, t_movies, rss_movies = measure(movies_asset, str(release))
    n_ratings, t_ratings, rss_ratings = measure(ratings_asset, str(release))
    n_vec, t_vec, rss_vec = measure(pandas_vectorised, str(release))
    n_row, t_row, rss_row = measure(pandas_rowwise, str(release), args.rowwise_rows)
    t_row_full = t_row * n_ratings / args.rowwise_rows

    report([
        ("movies asset", f"{n_movies:,} rows in {t_movies:.1f} s, {n_movies / t_movies:,.0f} rows/s, "
                         f"peak RSS {rss_movies / 1024:.2f} GiB"),
        ("ratings asset", f"{n_ratings:,} rows in {t_ratings:.1f} s, {n_ratings / t_ratings:,.0f} rows/s, "
                          f"peak RSS {rss_ratings / 1024:.2f} GiB"),
        ("baseline pandas-vectorised", f"{n_vec:,} rows in {t_vec:.1f} s, {n_vec / t_vec:,.0f} rows/s, "
                                       f"peak RSS {rss_vec / 1024:.2f} GiB"),
        ("baseline pandas-rowwise", f"{args.rowwise_rows:,} rows of the first 1M-row chunk in {t_row:.1f} s "
                                    f"-> {t_row_full:.0f} s for {n_ratings:,} rows (extrapolated linearly), "
                                    f"peak RSS {rss_row / 1024:.2f} GiB"),
        ("ratio ratings vs pandas-rowwise", f"{t_row_full / t_ratings:.1f}x faster"),
        ("ratio ratings vs pandas-vectorised", f"{t_vec / t_ratings:.1f}x faster"),
        ("target ratings <= 60 s", "met" if t_ratings <= 60 else "MISSED"),
        ("target ratings <= 6 GiB", "met" if rss_ratings <= 6 * 1024 else "MISSED"),
        ("target >= 10x chunked pandas (row-wise, seed)", "met" if t_row_full / t_ratings >= 10 else "MISSED"),
    ])


if __name__ == "__main__":
    main()
