"""Shared benchmark plumbing: the ml-25m-shaped input, and measuring a phase in a clean process.

Each phase runs in a freshly spawned interpreter so that its peak RSS is its own (not the
benchmark driver's, nor an earlier phase's).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from tv5_assets.core.storage import write_parquet_atomic
from tv5_assets.ingestion import movielens
from tv5_assets.ingestion.release import sample_release
from tv5_assets.sample.generator import SampleSpec

BENCH_DIR = Path(os.environ.get("TV5_BENCH_DIR", "data/bench"))


def ml25m_release() -> Path:
    """A generated release with ml-25m's shape (25,000,095 ratings; 162,541 users; 62,423 movies), cached."""
    return sample_release(BENCH_DIR / "raw", SampleSpec.ml25m())


def ml25m_tables() -> dict[str, pl.DataFrame]:
    """Parsed `movies`, `ratings`, `tags` and `genome` of the ml-25m-shaped release, cached as Parquet."""
    tables = BENCH_DIR / "tables"
    names = ("movies", "ratings", "tags", "genome")
    if not all((tables / f"{n}.parquet").exists() for n in names):
        release = ml25m_release()
        movies = movielens.parse_movies(release / "movies.csv", release / "links.csv").kept
        write_parquet_atomic(movies, tables / "movies.parquet")
        ratings = movielens.parse_ratings(release / "ratings.csv", movies["movie_id"]).kept
        write_parquet_atomic(ratings, tables / "ratings.parquet")
        del ratings
        tags = movielens.parse_tags(release / "tags.csv", movies["movie_id"]).kept
        write_parquet_atomic(tags, tables / "tags.parquet")
        genome = movielens.parse_genome(release / "genome-scores.csv", release / "genome-tags.csv", 0.5, 10).kept
        write_parquet_atomic(genome, tables / "genome.parquet")
    return {n: pl.read_parquet(tables / f"{n}.parquet") for n in names}


def _child(target: Callable[..., Any], args: tuple, queue: mp.Queue) -> None:
    start = time.perf_counter()
    try:
        result = target(*args)
        error = None
    except BaseException as exc:  # reported to the parent, which re-raises
        result, error = None, repr(exc)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((result, seconds, peak_mib, error))


def measure(target: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    """Run `target(*args)` in a spawned process: (its return value, wall seconds, peak RSS in MiB)."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(target, args, queue))
    process.start()
    result, seconds, peak_mib, error = queue.get()
    process.join()
    if error:
        raise RuntimeError(f"{target.__name__} failed: {error}")
    return result, seconds, peak_mib


def drop_prefixed(milvus: Any) -> None:
    """Drop the aliases and collections named with the resource's prefix: a shared server is left as found."""
    for alias in milvus.client.list_aliases().get("aliases", []):
        if alias.startswith(milvus.collection_prefix):
            milvus.drop_alias(alias)
    for name in milvus.list_collections():
        if name.startswith(milvus.collection_prefix):
            milvus.drop_collection(name)


def report(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
