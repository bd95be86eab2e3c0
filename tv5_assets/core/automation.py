"""Declarative automation: the serving stores follow their inputs on their own.

The database loads (Milvus collections, the Neo4j graph) are the expensive, user-facing end of
the graph. They rebuild on their own when an input they read gets new *data* (a new data version,
not merely a new materialization: re-running `movies` on an unchanged release triggers nothing),
when they are missing, or when their own code version changes; and only once every blocking check
of their inputs has passed, so a bad release never reaches the serving stores. Everything upstream
stays manual: people choose when to ingest a release or re-encode.

Dagster's `eager()` would also fire on any upstream materialization, even one with identical data;
`FOLLOW_INPUTS` is `eager()` with `any_deps_updated` replaced by "a dependency's data version
changed". The conditions are evaluated by `default_automation_condition_sensor`, which a user turns
on under Automation in the UI (with `dagster dev` running, so the daemon ticks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

SERVING_GROUPS = ("vector_store", "graph_store")

AC = dg.AutomationCondition
NEW_INPUT_DATA = AC.any_deps_match(AC.data_version_changed()).with_label("any_deps_have_new_data")

FOLLOW_INPUTS = (
    (AC.newly_missing() | NEW_INPUT_DATA | AC.code_version_changed()).since_last_handled()
    & ~AC.any_deps_missing()
    & ~AC.any_deps_in_progress()
    & ~AC.in_progress()
    & AC.all_deps_blocking_checks_passed()
).with_label("follow_inputs")


def follow_inputs(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The serving-store assets with `FOLLOW_INPUTS`; other assets unchanged."""
    return list(dg.map_asset_specs(
        lambda spec: spec.replace_attributes(automation_condition=FOLLOW_INPUTS)
        if spec.group_name in SERVING_GROUPS else spec,
        assets,
    ))
