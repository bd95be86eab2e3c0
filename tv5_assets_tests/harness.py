"""Running slices of the real Definitions in-process, on an ephemeral or given DagsterInstance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from tv5_assets.core.io_manager import PolarsParquetIOManager
from tv5_assets.core.lake import DataLake
from tv5_assets.definitions import defs, whole_graph_job
from tv5_assets.embeddings.preloading import PreloadingEncoderResource
from tv5_assets.graph_store.resources import Neo4jResource
from tv5_assets.release.freshness import CHECK as FRESHNESS
from tv5_assets.release.warmup import day_warmup
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets_tests.services import neo4j_settings

# A small sample that keeps in-process runs to seconds.
SMALL_SAMPLE = {
    "source": "sample", "sample_seed": 7, "sample_movies": 300, "sample_users": 40,
    "sample_ratings": 2_000, "sample_tags": 150, "sample_genome_movies": 60,
}


def lake_resources(base: Path, **extra: Any) -> dict[str, Any]:
    """Every resource key the graph requires (Dagster validates all assets, selected or not); the encoder is set
    up (and starts loading its model, in a thread) only for steps that use it."""
    return {"io_manager": PolarsParquetIOManager(base_dir=str(base)), "lake": DataLake(base_dir=str(base)),
            "encoder": PreloadingEncoderResource(), "milvus": MilvusResource(uri=str(base / "milvus.db")),
            "neo4j": local_neo4j(), "day_warmup": day_warmup, **extra}


def local_neo4j(**overrides: Any) -> Neo4jResource:
    """The local Neo4j of scripts/services (connects only in steps that use it)."""
    settings = neo4j_settings()
    return Neo4jResource(**{"uri": settings.uri, "user": settings.user, "password": settings.password, **overrides})


def release_config(**release: Any) -> dict[str, Any]:
    return {"ops": {"movielens_release": {"config": release}}}


def materialize(
    selection: str | dg.AssetSelection,
    base: Path,
    run_config: dict[str, Any] | None = None,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
    **resources: Any,
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` (a Dagster selection string or object) with the project's own assets and checks;
    "*" is the `whole_graph` job's selection (every asset but the daily deliveries, which are partitioned)."""
    all_assets = list(defs.assets or [])
    checks = list(defs.asset_checks or [])
    if selection == "*":
        selection = whole_graph_job.selection
    elif isinstance(selection, str):
        selection = dg.AssetSelection.from_string(selection)
    return dg.materialize(
        [*all_assets, *checks],
        selection=selection,
        resources=lake_resources(base, **resources),
        run_config=run_config or {},
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def check_results(result: dg.ExecuteInProcessResult,
                  release: bool = False) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """The run's check evaluations by (asset, check). Without `release`, the stores' own audits only: the
    release-level WARN check every serving store carries (`built_from_newest_source`, which reads the
    instance, not the store) is tested on its own in test_served_freshness."""
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
        if release or e.check_name != FRESHNESS
    }
