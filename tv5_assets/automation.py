"""Declarative automation: the serving stores follow their inputs on their own.

The database loads (Milvus collections, the Neo4j graph) are the expensive, user-facing end of
the graph. They rebuild eagerly when an input they read gets new data, but only once every
blocking check of those inputs has passed, so a bad release never reaches the serving stores.
Everything upstream stays manual: people choose when to ingest a release or re-encode.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

SERVING_GROUPS = ("vector_store", "graph_store")

FOLLOW_INPUTS = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


def follow_inputs(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The serving-store assets with `FOLLOW_INPUTS`; other assets unchanged."""
    return list(dg.map_asset_specs(
        lambda spec: spec.replace_attributes(automation_condition=FOLLOW_INPUTS)
        if spec.group_name in SERVING_GROUPS else spec,
        assets,
    ))
