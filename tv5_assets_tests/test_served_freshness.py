"""`built_from_newest_source`: a store's lineage back to the release, against the newest release the sensor saw."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg

from tv5_assets.definitions import defs
from tv5_assets.ingestion.sensors import RELEASE_KEY, observation
from tv5_assets.ingestion.source_watch import SeenSource
from tv5_assets.release.freshness import CHECK, freshness_rule, served_freshness_check
from tv5_assets.release.lineage import versions_read
from tv5_assets_tests.harness import SMALL_SAMPLE, lake_resources, release_config

STORE = dg.AssetKey("ratings")  # any asset two hops below the release shows the lineage walk


def test_rule_passes_only_on_exactly_the_newest_version_and_reports_the_lag() -> None:
    assert freshness_rule(None, None, {"a"}, 100.0).passed
    fresh = freshness_rule("b", 40.0, {"b"}, 100.0)
    assert fresh.passed and fresh.metadata["lag_s"] == 0.0
    stale = freshness_rule("b", 40.0, {"a"}, 100.0)
    assert not stale.passed and stale.metadata["lag_s"] == 60.0 and "not the newest seen (b" in stale.description
    mixed = freshness_rule("b", 40.0, {"a", "b"}, 100.0)  # built partly from an older release: not fresh
    assert not mixed.passed


def _run(selection: dg.AssetSelection, lake: Path, instance: dg.DagsterInstance,
         config: dict | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize([*defs.assets, served_freshness_check(STORE)], selection=selection,
                          resources=lake_resources(lake), run_config=config or {}, instance=instance)


def _evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK]
    return evaluation


def test_check_follows_the_lineage_to_the_release_and_compares_with_the_newest_seen(lake_dir: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    built = dg.AssetSelection.assets("movielens_release", "movies", "ratings").without_checks() | \
        dg.AssetSelection.checks(dg.AssetCheckKey(STORE, CHECK))
    first = _run(built, lake_dir, instance, release_config(**SMALL_SAMPLE))
    release = instance.get_latest_materialization_event(RELEASE_KEY).asset_materialization.tags["dagster/data_version"]
    assert versions_read(instance, STORE, RELEASE_KEY) == {release}  # ratings <- movies <- release, and direct
    assert _evaluation(first).passed  # the sensor has seen nothing yet
    # an asset whose input was never materialized records a 'NULL' pointer: no lineage, no error
    unrecorded = dg.DagsterInstance.ephemeral()
    assert _evaluation(_run(dg.AssetSelection.assets("ratings").without_checks() |
                            dg.AssetSelection.checks(dg.AssetCheckKey(STORE, CHECK)), lake_dir, unrecorded)).passed
    assert versions_read(unrecorded, STORE, RELEASE_KEY) == set()

    # the sensor sees newer content: the store no longer serves the newest, and says by how long
    instance.report_runless_asset_event(observation(SeenSource("/landing/next", "next", "f" * 24, time.time() - 90)))
    only_check = dg.AssetSelection.checks(dg.AssetCheckKey(STORE, CHECK))
    lagging = _evaluation(_run(only_check, lake_dir, instance))
    assert not lagging.passed and lagging.severity == dg.AssetCheckSeverity.WARN
    assert lagging.metadata["lag_s"].value >= 90 and lagging.metadata["served_release_versions"].value == release

    # the newest seen is what the store was built from: fresh again
    instance.report_runless_asset_event(observation(SeenSource("/landing/this", "this", release, time.time())))
    fresh = _evaluation(_run(only_check, lake_dir, instance))
    assert fresh.passed and fresh.metadata["lag_s"].value == 0.0
