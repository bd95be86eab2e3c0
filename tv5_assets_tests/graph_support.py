"""Shared pieces of the graph tests: hand-made upstream tables, and exclusive use of the local Neo4j.

Every graph test clears and reloads the whole `neo4j` database of the shared local server, so the
`neo4j_server` fixture holds an exclusive file lock for the test session: two pytest runs on the
same machine take turns instead of clearing each other's graph.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tv5_assets.graph_store import slots
from tv5_assets.graph_store.loader import LoadReport
from tv5_assets.graph_store.resources import Neo4jClient
from tv5_assets_tests import services as svc

LOCK = svc.STATE_DIR / "graph-tests.lock"
TIMES_OF_DAY = ("night", "morning", "afternoon", "evening")
GENRES = ("Action", "Comedy", "Drama", "Animation", "Children", "Documentary")
PLATFORMS = (("TV5MONDE", "free"), ("Netflix", "subscription"), ("MUBI", "subscription"))


@pytest.fixture(scope="session")
def neo4j_server() -> Iterator[svc.Neo4jSettings]:
    """The shared local Neo4j (started if needed), held exclusively for this test session."""
    settings = svc.ensure_neo4j()
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield settings
        fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture
def graph_client(neo4j_server: svc.Neo4jSettings) -> Iterator[Neo4jClient]:
    with Neo4jClient(neo4j_server.uri, neo4j_server.user, neo4j_server.password, retry_delay_s=0.1) as client:
        yield client


def empty_graph(client: Neo4jClient) -> None:
    """Nothing served, no slot: every node deleted and the slots' constraints dropped."""
    client.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS")
    for row in client.read("SHOW CONSTRAINTS YIELD name RETURN name"):
        if re.fullmatch(rf"[a-z]+_{slots.SLOT.pattern}_[a-z]+_unique", row["name"]):
            client.run(f"DROP CONSTRAINT {row['name']} IF EXISTS")


def serve(client: Neo4jClient, report: LoadReport) -> LoadReport:
    """Publish a load's slot, as `release` does: readers (the public labels) see it."""
    slots.publish(client, report.slot, report.version, f"test-{report.version}")
    return report


def sources(users: int = 30, movies: int = 40, ratings_per_user: int = 8, seed: int = 0) -> dict[str, pl.DataFrame]:
    """Upstream tables in the asset contracts' shapes (only the columns the graph reads, plus keys)."""
    rng = np.random.default_rng(seed)
    movie_ids = np.arange(1, movies + 1, dtype=np.int32)
    movies_frame = pl.DataFrame({
        "movie_id": movie_ids,
        "title": [f"Film {i} ({1950 + i % 70})" for i in movie_ids],
        "display_title": [f"Film {i}" for i in movie_ids],
        "year": pl.Series([None if i % 13 == 0 else 1950 + int(i) % 70 for i in movie_ids], dtype=pl.Int32),
        "genres": [[GENRES[i % 6], GENRES[(i // 2) % 6]] if i % 11 else [] for i in movie_ids],
        "imdb_id": [f"tt{i:07d}" if i % 5 else None for i in movie_ids],
        "tmdb_id": pl.Series([int(i) * 10 if i % 4 else None for i in movie_ids], dtype=pl.Int32),
    }).with_columns(pl.col("genres").list.unique(maintain_order=True))
    user_ids = np.repeat(np.arange(1, users + 1, dtype=np.int32), ratings_per_user)
    rated = np.concatenate([rng.choice(movie_ids, ratings_per_user, replace=False) for _ in range(users)])
    stamps = rng.integers(900_000_000, 1_600_000_000, user_ids.size)
    ratings = pl.DataFrame({
        "user_id": user_ids,
        "movie_id": rated.astype(np.int32),
        "rating": (rng.integers(1, 11, user_ids.size) / 2).astype(np.float32),
        "timestamp": pl.Series((stamps * 1_000_000).astype("datetime64[us]")).dt.replace_time_zone("UTC"),
    }).with_columns(
        pl.col("timestamp").dt.hour().floordiv(6).replace_strict(list(range(4)), list(TIMES_OF_DAY))
        .cast(pl.Enum(list(TIMES_OF_DAY))).alias("time_of_day"),
    ).sort("user_id", "timestamp")
    tagged = movie_ids[: max(1, movies // 2)]
    genome = pl.DataFrame({
        "movie_id": np.repeat(tagged, 3),
        "tag_id": np.tile(np.array([101, 102, 103], dtype=np.int32), tagged.size) + (np.repeat(tagged, 3) % 4),
        "relevance": np.tile(np.array([0.9, 0.8, 0.6], dtype=np.float32), tagged.size),
        "rank": np.tile(np.array([1, 2, 3], dtype=np.int32), tagged.size),
    }).with_columns(pl.format("tag {}", "tag_id").alias("tag"))
    demographics = pl.DataFrame({
        "user_id": np.arange(1, users + 1, dtype=np.int32),
        "archetype": [("cinephile", "casual", "family")[i % 3] for i in range(users)],
        "age": pl.Series([20 + i % 50 for i in range(users)], dtype=pl.Int32),
        "age_band": [("18-24", "25-34", "35-44", "45-54", "55+")[i % 5] for i in range(users)],
        "country": [("FR", "CA", "BE", "SN")[i % 4] for i in range(users)],
    })
    rows = [(int(m), name, model) for m in movie_ids for k, (name, model) in enumerate(PLATFORMS) if (m + k) % 3]
    availability = pl.DataFrame({
        "movie_id": pl.Series([r[0] for r in rows], dtype=pl.Int32),
        "platform": [r[1] for r in rows],
        "business_model": [r[2] for r in rows],
        "regions": [["western_europe", "north_america"] if r[0] % 2 else ["western_europe"] for r in rows],
        "quality": [["HD", "4K"] if r[0] % 3 == 0 else ["HD"] for r in rows],
        "subtitle_languages": [["fr", "en"] if r[1] == "TV5MONDE" else [] for r in rows],
        "available_from": [dt.date(2020, 1, 1)] * len(rows),
    })
    return {"movies": movies_frame, "ratings": ratings, "genome": genome, "demographics": demographics,
            "availability": availability}


def write_sources(lake: Path, tables: dict[str, pl.DataFrame]) -> None:
    """Store the tables where the Parquet IO manager reads the upstream assets from."""
    for name, frame in tables.items():
        frame.write_parquet(lake / f"{name}.parquet")
