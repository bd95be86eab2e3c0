"""Shared pieces of the AgentDB tests: selections, run config, failed checks."""

from __future__ import annotations

from typing import Any

import dagster as dg

from tv5_assets_tests.harness import check_results

# everything agentdb reads, from the release on (movielens, synthetic, embeddings, rl)
UPSTREAM = dg.AssetSelection.assets("policies", "user_vectors").upstream()
AGENTDB = dg.AssetSelection.assets("agentdb")


def agentdb_config(**config: Any) -> dict[str, Any]:
    return {"ops": {"agentdb": {"config": config}}}


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], str]:
    return {key: e.description for key, e in check_results(result).items() if not e.passed}


def staged_file(lake, instance: dg.DagsterInstance):
    """The AgentDB file the latest materialization on `instance` staged, under `lake` (what the checks audit)."""
    from tv5_assets.agentdb.assets import VERSIONS_DIR
    event = instance.get_latest_materialization_event(dg.AssetKey("agentdb"))
    return lake / VERSIONS_DIR / event.asset_materialization.metadata["staged_version"].value
