"""Every stage's assets and checks in one place: the definitions assemble them, and the release gate reads which
checks each asset has (and which block) from the same lists, whatever a run selected."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from tv5_assets.agentdb import assets as agentdb_assets
from tv5_assets.agentdb import checks as agentdb_checks
from tv5_assets.embeddings import assets as embeddings_assets
from tv5_assets.embeddings import checks as embeddings_checks
from tv5_assets.evaluation import assets as evaluation_assets
from tv5_assets.evaluation import checks as evaluation_checks
from tv5_assets.graph_store import assets as graph_store_assets
from tv5_assets.graph_store import checks as graph_store_checks
from tv5_assets.ingestion import assets as ingestion_assets
from tv5_assets.ingestion import checks as ingestion_checks
from tv5_assets.release.freshness import served_freshness_check
from tv5_assets.rl import assets as rl_assets
from tv5_assets.rl import checks as rl_checks
from tv5_assets.synthetic import assets as synthetic_assets
from tv5_assets.synthetic import checks as synthetic_checks
from tv5_assets.taste import assets as taste_assets
from tv5_assets.taste import checks as taste_checks
from tv5_assets.vector_store import assets as vector_store_assets
from tv5_assets.vector_store import checks as vector_store_checks

stage_assets = [*ingestion_assets.assets, *embeddings_assets.assets, *synthetic_assets.assets, *taste_assets.assets,
                *vector_store_assets.assets, *graph_store_assets.assets, *rl_assets.assets,
                *agentdb_assets.assets, *evaluation_assets.assets]
# what readers query: each serving store says whether it holds the newest release the source sensor has seen
serving_stores = [*vector_store_assets.assets, *graph_store_assets.assets, *agentdb_assets.assets]
stage_checks = [*ingestion_checks.asset_checks, *embeddings_checks.asset_checks, *synthetic_checks.asset_checks,
                *taste_checks.asset_checks, *vector_store_checks.asset_checks, *rl_checks.asset_checks,
                *graph_store_checks.asset_checks, *agentdb_checks.asset_checks, *evaluation_checks.asset_checks,
                *(served_freshness_check(store.key) for store in serving_stores)]


def check_specs() -> Mapping[dg.AssetKey, list[dg.AssetCheckSpec]]:
    """Each asset's check specs (name, blocking), from the definitions' own lists."""
    specs: dict[dg.AssetKey, list[dg.AssetCheckSpec]] = {}
    for checks in stage_checks:
        for spec in checks.check_specs:
            specs.setdefault(spec.asset_key, []).append(spec)
    return specs
