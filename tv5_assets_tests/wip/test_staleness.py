"""The users' daily loop: change something, see exactly which assets are unsynced, rebuild only those.

Runs the whole graph on the small sample against the real engines (packaged encoder, Milvus Lite,
the local Neo4j), then asserts Dagster's own stale statuses, as the UI shows them.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from tv5_assets.definitions import defs
from tv5_assets_tests.harness import SMALL_SAMPLE, materialize, release_config

pytestmark = pytest.mark.neo4j


def statuses(instance: dg.DagsterInstance) -> dict[str, StaleStatus]:
    graph = defs.resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return {key.to_user_string(): resolver.get_status(key) for key in graph.materializable_asset_keys}


def children_of(asset: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {key.to_user_string() for key in graph.get(dg.AssetKey.from_user_string(asset)).child_keys}


def test_only_the_readers_of_a_changed_asset_become_unsynced(lake_dir: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    config = release_config(**SMALL_SAMPLE)
    assert materialize("*", lake_dir, config, instance=instance).success
    after_full_run = statuses(instance)
    assert set(after_full_run.values()) == {StaleStatus.FRESH}, after_full_run

    # Rebuilding `movies` from an unchanged release yields the same data version: nothing goes stale.
    assert materialize("movies", lake_dir, config, instance=instance).success
    assert set(statuses(instance).values()) == {StaleStatus.FRESH}

    # A new availability rule (a different seed) changes availability's data: its readers are unsynced.
    changed = {"ops": {"availability": {"config": {"seed": 4242}}}}
    assert materialize("availability", lake_dir, changed, instance=instance).success
    after_change = statuses(instance)
    unsynced = {key for key, status in after_change.items() if status == StaleStatus.STALE}
    readers = children_of("availability")
    assert readers >= {"milvus/media_vectors", "graph"}
    assert unsynced == readers
    for untouched in ("movies", "ratings", "content_vectors", "user_vectors", "episodes", "policies",
                      "demographics", "milvus/user_vectors", "availability"):
        assert after_change[untouched] == StaleStatus.FRESH, untouched

    # "Materialize unsynced": rebuilding just those brings everything back to fresh.
    selection = dg.AssetSelection.keys(*[dg.AssetKey.from_user_string(k) for k in sorted(unsynced)])
    assert materialize(selection, lake_dir, instance=instance).success
    assert set(statuses(instance).values()) == {StaleStatus.FRESH}
