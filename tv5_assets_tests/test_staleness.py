"""The users' daily loop: change something, see exactly which assets are unsynced, rebuild only those.

Runs the whole graph on the small sample against the real engines (packaged encoder, Milvus Lite,
the local Neo4j), then asserts Dagster's own stale statuses, as the UI shows them, and what the
serving stores' automation conditions request at each step (as the automation sensor would).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from tv5_assets.definitions import defs
from tv5_assets.ingestion.day_assets import DAY_GROUP
from tv5_assets_tests.harness import SMALL_SAMPLE, materialize, release_config

pytestmark = pytest.mark.neo4j


def statuses(instance: dg.DagsterInstance) -> dict[str, StaleStatus]:
    graph = defs.resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return {key.to_user_string(): resolver.get_status(key) for key in graph.materializable_asset_keys}


def children_of(asset: str) -> set[str]:
    """The unpartitioned readers of `asset` (the arrival days' partitions are never materialized here)."""
    graph = defs.resolve_asset_graph()
    return {key.to_user_string() for key in graph.get(dg.AssetKey.from_user_string(asset)).child_keys
            if graph.get(key).group_name != DAY_GROUP}


class Automation:
    """Ticks of the serving stores' automation conditions, as `default_automation_condition_sensor` runs them."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance, self.cursor = instance, None

    def tick(self) -> set[str]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        graph = defs.resolve_asset_graph()
        return {key.to_user_string() for key in graph.materializable_asset_keys if result.get_num_requested(key)}


TASTE = ("collaborative_movie_vectors", "collaborative_user_vectors", "hybrid_movie_vectors", "hybrid_user_vectors")


def test_only_the_readers_of_a_changed_asset_become_unsynced(neo4j_server, lake_dir: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    automation = Automation(instance)
    config = release_config(**SMALL_SAMPLE)
    assert materialize("*", lake_dir, config, instance=instance).success
    after_full_run = statuses(instance)
    assert set(after_full_run.values()) == {StaleStatus.FRESH}, after_full_run
    assert automation.tick() == set()  # everything is there and up to date

    # Rebuilding `movies` from an unchanged release yields the same data version: nothing goes stale,
    # and the serving stores (which read movies) are not reloaded.
    assert materialize("movies", lake_dir, instance=instance).success
    assert set(statuses(instance).values()) == {StaleStatus.FRESH}
    assert automation.tick() == set()

    # A new availability rule (a different seed) changes availability's data: its readers are unsynced.
    changed = {"ops": {"availability": {"config": {"seed": 4242}}}}
    assert materialize("availability", lake_dir, changed, instance=instance).success
    after_change = statuses(instance)
    unsynced = {key for key, status in after_change.items() if status == StaleStatus.STALE}
    readers = children_of("availability")
    assert readers >= {"milvus/media_vectors", "milvus/hybrid_media_vectors", "graph"}
    assert unsynced == readers
    for untouched in ("movies", "ratings", "content_vectors", "user_vectors", "episodes", "policies",
                      "demographics", "milvus/user_vectors", "availability", *TASTE, "milvus/hybrid_user_vectors",
                      "recommendation_quality", "agentdb"):
        assert after_change[untouched] == StaleStatus.FRESH, untouched
    # The automation asks for exactly the serving stores that read availability, once, and `release` after them
    # in the same run (Dagster counts a dependency requested in this tick as updated)
    assert automation.tick() == {"milvus/media_vectors", "milvus/hybrid_media_vectors", "graph", "release"}
    assert automation.tick() == set()

    # "Materialize unsynced": rebuilding just those brings everything back to fresh.
    selection = dg.AssetSelection.assets(*[dg.AssetKey.from_user_string(k) for k in sorted(unsynced)])
    assert materialize(selection, lake_dir, instance=instance).success
    # the stores staged new versions: `release`, which publishes them, is now the one unsynced asset
    assert {k for k, v in statuses(instance).items() if v != StaleStatus.FRESH} == {"release"}
    assert materialize("release", lake_dir, instance=instance).success
    assert set(statuses(instance).values()) == {StaleStatus.FRESH}
    automation.tick()

    # New ratings (another release): the collaborative vectors that read ratings go stale; the hybrid ones
    # follow once the collaborative ones are rebuilt with new data (staleness is one step at a time).
    other_release = release_config(**{**SMALL_SAMPLE, "sample_seed": SMALL_SAMPLE["sample_seed"] + 1})
    assert materialize("group:movielens", lake_dir, other_release, instance=instance).success
    after_ratings = statuses(instance)
    assert {"collaborative_movie_vectors", "collaborative_user_vectors", "recommendation_quality"} <= {
        k for k, v in after_ratings.items() if v == StaleStatus.STALE}
    assert materialize("collaborative_movie_vectors", lake_dir, instance=instance).success
    stale = {k for k, v in statuses(instance).items() if v == StaleStatus.STALE}
    assert {"collaborative_user_vectors", "hybrid_movie_vectors"} <= stale
