"""Shared pieces of the Milvus tests: both backends, unique names, hand-made source lakes, injected faults.

Every test gets its own `collection_prefix` (a uuid), so concurrent test runs sharing the one local
Milvus server never touch each other's aliases or collections, and drops what it created. The server
itself is never stopped here.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pytest
from pydantic import Field

from tv5_assets.evaluation.ann import SPEC as EVALUATION
from tv5_assets.vector_store.connection import MilvusError
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets.vector_store.schema import HYBRID_MEDIA, HYBRID_USERS, MEDIA, USERS
from tv5_assets_tests.services import ensure_milvus_server

BACKENDS = ("lite", "server")
DIM = 384
HANG_MARKER = "TV5_FAULT_HANG"


class InjectedFault(MilvusError):
    """Raised by `FaultyMilvusResource` at its `fault_at_batch`."""


class FaultyMilvusResource(MilvusResource):
    """The real resource on real Milvus, except that the N-th insert batch of every build fails.

    `fault_mode="raise"`: that batch raises `InjectedFault` before it is sent. `fault_mode="hang"`: it logs
    and prints (stderr) a `TV5_FAULT_HANG collection=<name> batch=<n>` line, then blocks until the process
    is killed (a test kills it there, mid-build). Its configuration travels like the resource's own, so a
    Dagster run or a child process (`FaultyMilvusResource.model_validate_json`) gets the same fault.
    """

    fault_at_batch: int = Field(default=0, description="the N-th insert batch fails (0: never)")
    fault_mode: Literal["raise", "hang"] = "raise"

    def before_insert(self, name: str, batch_number: int) -> None:
        if not self.fault_at_batch or batch_number != self.fault_at_batch:
            return
        if self.fault_mode == "hang":
            marker = f"{HANG_MARKER} collection={name} batch={batch_number}"
            self._log.warning(marker)
            print(marker, file=sys.stderr, flush=True)
            while True:
                time.sleep(3600)
        raise InjectedFault(f"fault injected at insert batch {batch_number} of {name} (fault_at_batch)")


def make_resource(backend: str, lake: Path, **config: object) -> MilvusResource:
    """A resource on Milvus Lite inside `lake`, or on the local server, with a fresh name prefix."""
    uri = str(lake / "milvus.db") if backend == "lite" else ensure_milvus_server().uri
    config = {"collection_prefix": f"t{uuid.uuid4().hex[:10]}_", "retry_attempts": 2, "retry_base_s": 0.1,
              **config}
    return MilvusResource(uri=uri, **config)


def variant(resource: MilvusResource, **changes: object) -> MilvusResource:
    """The same resource (same class) with some fields changed (Dagster rebuilds resources from their
    constructor arguments, so `model_copy(update=...)` would not reach a run)."""
    return type(resource)(**{**resource.model_dump(), **changes})


def faulty(resource: MilvusResource, fault_at_batch: int,
           fault_mode: Literal["raise", "hang"] = "raise") -> FaultyMilvusResource:
    """The same resource (same Milvus, prefix and settings) with a fault at insert batch `fault_at_batch`."""
    return FaultyMilvusResource(**{**resource.model_dump(), "fault_at_batch": fault_at_batch,
                                   "fault_mode": fault_mode})


def drop_everything(resource: MilvusResource) -> list[str]:
    """Drop the aliases and collections carrying the resource's prefix; returns what was left behind."""
    with resource.connected() as milvus:
        for alias in (milvus.alias_name(s.alias) for s in (MEDIA, USERS, HYBRID_MEDIA, HYBRID_USERS, EVALUATION)):
            milvus.drop_alias(alias)
        ours = [name for name in milvus.list_collections() if name.startswith(resource.collection_prefix)]
        for name in ours:
            milvus.drop_collection(name)
    return ours


@contextlib.contextmanager
def owned(resource: MilvusResource) -> Iterator[MilvusResource]:
    """The resource, then drop whatever it created on the way out."""
    try:
        yield resource
    finally:
        drop_everything(resource)


def unit_vectors(rng: np.random.Generator, n: int, centres: np.ndarray, noise: float = 0.5) -> np.ndarray:
    """Normalised vectors around random centres: structured like real embeddings (pure noise is not)."""
    vectors = centres[rng.integers(0, len(centres), n)] + noise * rng.normal(size=(n, centres.shape[1]))
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def vector_frame(column: str, ids: np.ndarray, vectors: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({column: ids.astype(np.int32), "vector": vectors}).with_columns(
        pl.col("vector").cast(pl.Array(pl.Float32, vectors.shape[1])))


def write_source_lake(lake: Path, movies: int = 600, users: int = 250, seed: int = 0) -> dict[str, pl.DataFrame]:
    """The five upstream assets of the vector store, hand-made, as the IO manager stores them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(25, DIM))
    movie_ids = np.arange(1, movies + 1) * 3  # sparse ids, like MovieLens
    frames = {
        "content_vectors": vector_frame("movie_id", movie_ids, unit_vectors(rng, movies, centres)).with_columns(
            pl.lit("hash").alias("text_hash")),
        "movies": pl.DataFrame({
            "movie_id": movie_ids.astype(np.int32),
            "title": [f"Film {i} ({1950 + i % 70})" for i in range(movies)],
            "display_title": [f"Film {i}" if i % 11 else f"Le Film « {i} » éditée" for i in range(movies)],
            "year": pl.Series([None if i % 13 == 0 else 1950 + i % 70 for i in range(movies)], dtype=pl.Int32),
            "genres": [["Drama", "Comedy", "Children"][: i % 4] for i in range(movies)],
        }),
        "availability": pl.DataFrame({
            "movie_id": np.repeat(movie_ids[::2], 2).astype(np.int32),
            "platform": [p for i in range(0, movies, 2) for p in ("TV5MONDE" if i % 3 == 0 else "MUBI", "Netflix")],
        }),
        "user_vectors": vector_frame("user_id", np.arange(1, users + 1), unit_vectors(rng, users, centres)),
        "demographics": pl.DataFrame({
            "user_id": np.arange(1, users + 1, dtype=np.int32),
            "archetype": [("Cinephile", "Casual", "Family")[i % 3] for i in range(users)],
            "country": [("FR", "CA", "BE", "FR")[i % 4] for i in range(users)],
        }),
    }
    lake.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.write_parquet(lake / f"{name}.parquet")
    return frames


def staged_on(instance, asset_key, collection: str):
    """Record on `instance` that `asset_key` staged `collection` (as its materialization would), so its checks
    audit that collection: for tests that build a collection by hand (cut values, a coarse index)."""
    import dagster as dg

    from tv5_assets.core.releases import STAGED
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key, metadata={STAGED: collection}))
    return instance


def staged_name(result, asset_key) -> str:
    """The collection a run's materialization of `asset_key` staged."""
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == asset_key]
    return event.materialization.metadata["staged_version"].value


# ml-latest-small on both backends: CI runs Lite (the server path runs on the sample in CI); `-m matrix` adds the
# server, to keep CI's time
REALDATA_BACKENDS = ("lite", pytest.param("server", marks=pytest.mark.matrix))
