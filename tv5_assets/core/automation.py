"""Declarative automation: the serving stores follow their inputs on their own.

The database loads (Milvus collections, the Neo4j graph) are the expensive, user-facing end of
the graph. They rebuild on their own when an input they read gets new *data* (a new data version,
not merely a new materialization: re-running `movies` on an unchanged release triggers nothing),
when they are missing, or when their own code version changes; and only once every blocking check
of their inputs has passed, so a bad release never reaches the serving stores. Everything upstream
stays manual: people choose when to ingest a release or re-encode.

Dagster's `eager()` would also fire on any upstream materialization, even one with identical data;
`FOLLOW_INPUTS` is `eager()` with `any_deps_updated` replaced by "a dependency's data version
changed". The serving-store assets declare it on their decorators; `serving_stores_sensor` (in the
definitions, running by default) evaluates it whenever the daemon runs (`dagster dev`), so nobody
turns anything on by hand; stopping it in the UI pauses the stores' automation.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

SERVING_GROUPS = ("vector_store", "graph_store", "release")
# the stores (Milvus collections, the graph, the AgentDB file) and `release`, which publishes them together
SERVING_STORES = dg.AssetSelection.groups(*SERVING_GROUPS) | dg.AssetSelection.assets("agentdb")

AC = dg.AutomationCondition
NEW_INPUT_DATA = AC.any_deps_match(AC.data_version_changed()).with_label("any_deps_have_new_data")

FOLLOW_INPUTS = (
    (AC.newly_missing() | NEW_INPUT_DATA | AC.code_version_changed()).since_last_handled()
    & ~AC.any_deps_missing()
    & ~AC.any_deps_in_progress()
    & ~AC.in_progress()
    & AC.all_deps_blocking_checks_passed()
).with_label("follow_inputs")


# The serving stores (what readers query) should be rebuilt within a week of each other's inputs changing; the
# source sensor notices a new release and the follow-inputs automation rebuilds them, so an old store means the
# chain stopped somewhere. Dagster's freshness daemon evaluates it (a WARN after 8 days, FAIL after 15).
SERVED_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(days=15), warn_window=dt.timedelta(days=8))


def serving_stores_sensor() -> dg.AutomationConditionSensorDefinition:
    """The sensor that evaluates the serving stores' automation conditions, on by default."""
    return dg.AutomationConditionSensorDefinition(
        "serving_stores_follow_inputs",
        target=SERVING_STORES,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Stages the Milvus collections, the Neo4j graph and the AgentDB file when their inputs get new "
        "data, when they are missing or when their code changes, once their inputs' blocking checks pass; then "
        "`release` publishes them together once every store's checks passed.",
    )
