"""Running the AgentDB stage with the project's graph: its asset and checks beside those of definitions.py
(which does not list them yet), on the same resources as tv5_assets_tests.harness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from tv5_assets.agentdb import assets as agentdb_assets
from tv5_assets.agentdb import checks as agentdb_checks
from tv5_assets.definitions import defs
from tv5_assets_tests.harness import check_results, lake_resources

# everything agentdb reads, from the release on (movielens, synthetic, embeddings, rl)
UPSTREAM = dg.AssetSelection.assets("policies", "user_vectors").upstream()
AGENTDB = dg.AssetSelection.assets("agentdb")


def _known(assets: list) -> list:
    keys = {key for a in assets for key in getattr(a, "keys", [])}
    return [a for a in agentdb_assets.assets if not keys & set(a.keys)]


def materialize(selection: str | dg.AssetSelection, base: Path, run_config: dict[str, Any] | None = None,
                instance: dg.DagsterInstance | None = None, raise_on_error: bool = True,
                **resources: Any) -> dg.ExecuteInProcessResult:
    """harness.materialize, with the AgentDB asset and checks added to the project's own."""
    graph_assets = list(defs.assets or [])
    checks = list(defs.asset_checks or [])
    added = _known(graph_assets)
    added_checks = agentdb_checks.asset_checks if added else []
    if isinstance(selection, str):
        selection = dg.AssetSelection.from_string(selection)
    return dg.materialize([*graph_assets, *added, *checks, *added_checks], selection=selection,
                          resources=lake_resources(base, **resources), run_config=run_config or {},
                          instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=raise_on_error)


def agentdb_config(**config: Any) -> dict[str, Any]:
    return {"ops": {"agentdb": {"config": config}}}


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], str]:
    return {key: e.description for key, e in check_results(result).items() if not e.passed}
