"""The whole Definitions loads, with every asset, check and job the project promises."""

from __future__ import annotations

import dagster as dg

from tv5_assets.definitions import defs

EXPECTED_ASSETS = {"movielens_release", "movies", "ratings", "tags", "genome", "content_vectors", "user_vectors",
                   "demographics", "availability", "milvus/media_vectors", "milvus/user_vectors",
                   "episodes", "policies", "graph", "collaborative_movie_vectors", "collaborative_user_vectors",
                   "hybrid_movie_vectors", "hybrid_user_vectors", "milvus/hybrid_media_vectors",
                   "milvus/hybrid_user_vectors", "recommendation_quality", "agentdb", "release",
                   "day_ratings", "day_erasures", "day_user_ratings", "day_rating_changes", "day_user_vectors",
                   "day_collaborative_user_vectors", "day_hybrid_user_vectors", "day_episodes",
                   "day_demographics", "day_policies", "day_release", "published_days", "published_movies",
                   "day_movies", "day_content_vectors", "day_collaborative_movie_vectors", "day_hybrid_movie_vectors",
                   "day_availability"}
SERVING_STORES = ("milvus/media_vectors", "milvus/user_vectors", "milvus/hybrid_media_vectors",
                  "milvus/hybrid_user_vectors", "graph", "agentdb")
EXPECTED_CHECKS = {
    *(("graph", check) for check in (
        "load_complete", "node_counts_match_sources", "relationship_counts_match_sources",
        "constraints_and_indexes_online", "no_relationship_with_missing_endpoint", "explanation_query_under_1s")),
    ("episodes", "one_step_per_rating"), ("episodes", "steps_in_time_order"),
    ("episodes", "next_state_is_next_steps_state"), ("episodes", "rewards_in_0_1"),
    ("episodes", "boundaries_honour_session_gap"),
    ("policies", "one_policy_per_user"), ("policies", "algorithm_shares_match_archetype_shares"),
    ("movies", "unique_key"), ("movies", "required_fields"), ("movies", "year_plausible"),
    ("movies", "imdb_id_format"), ("movies", "kept_plus_rejected_equals_read"),
    ("ratings", "unique_key"), ("ratings", "required_fields"), ("ratings", "movie_id_in_movies"),
    ("ratings", "rating_domain"), ("ratings", "kept_plus_rejected_equals_read"),
    ("tags", "required_fields"), ("tags", "movie_id_in_movies"), ("tags", "kept_plus_rejected_equals_read"),
    ("genome", "unique_key"), ("genome", "relevance_in_0_1"), ("genome", "ranked_top_k"),
    ("genome", "movie_id_in_movies"), ("genome", "kept_plus_rejected_equals_read"),
    ("content_vectors", "dimension_is_models"), ("content_vectors", "no_nan_or_inf"),
    ("content_vectors", "unit_norm"), ("content_vectors", "one_vector_per_movie"),
    ("content_vectors", "model_recorded"), ("content_vectors", "toy_story_2_near_toy_story"),
    ("content_vectors", "genre_coherence"), ("user_vectors", "dimension_is_models"),
    ("user_vectors", "no_nan_or_inf"), ("user_vectors", "unit_norm"), ("user_vectors", "one_vector_per_rating_user"),
    ("demographics", "archetype_shares"), ("demographics", "one_row_per_rating_user"),
    ("demographics", "required_fields"), ("demographics", "valid_country_and_language_codes"),
    ("demographics", "signup_before_first_rating"), ("demographics", "platforms_offered_in_region"),
    ("demographics", "age_in_band"), ("demographics", "same_config_same_hash"),
    ("availability", "platform_shares"), ("availability", "coverage_at_least_85_pct"),
    ("availability", "unique_key"), ("availability", "movie_id_in_movies"), ("availability", "required_fields"),
    ("availability", "known_platform_and_model"), ("availability", "quality_and_languages_valid"),
    ("availability", "available_from_before_until"), ("availability", "same_config_same_hash"),
    *((asset, check) for asset in ("collaborative_movie_vectors", "hybrid_movie_vectors")
      for check in ("dimension_as_configured", "no_nan_or_inf", "one_vector_per_movie")),
    *((asset, check) for asset in ("collaborative_user_vectors", "hybrid_user_vectors")
      for check in ("dimension_as_configured", "no_nan_or_inf", "one_vector_per_rating_user", "recomputed_identically")),
    ("hybrid_movie_vectors", "parts_within_layout"), ("hybrid_movie_vectors", "recomputed_identically"),
    ("hybrid_user_vectors", "unit_norm"),
    ("recommendation_quality", "served_beats_most_popular"), ("recommendation_quality", "ann_search_agrees_with_exact"),
    *(("agentdb", check) for check in ("one_session_per_user", "recent_steps_count", "one_vector_per_user",
                                       "search_finds_user_first", "file_under_size_bound")),
    *((f"milvus/{collection}", check)
      for collection in ("media_vectors", "user_vectors", "hybrid_media_vectors", "hybrid_user_vectors") for check in (
        "entity_count_matches_source", "index_as_configured", "collection_loaded", "self_retrieval_at_rank_1",
        "recall_at_10", "search_latency", "filtered_search_matches", "every_filter_value_found")),
    *((store, "built_from_newest_source") for store in SERVING_STORES),
    *(("day_ratings", check) for check in ("unique_key", "rating_domain", "movie_id_in_movies",
                                           "arrival_is_the_partitions_day")),
    ("day_erasures", "unique_key"), ("day_erasures", "arrival_is_the_partitions_day"),
    ("day_movies", "unique_key"), ("day_movies", "movies_are_new"),
    *(("day_content_vectors", check) for check in ("one_vector_per_movie_gained", "no_nan_or_inf", "unit_norm")),
    ("day_availability", "every_new_movie_available"),
    ("day_user_ratings", "unique_key"), ("day_user_ratings", "sorted_by_user_then_time"),
    ("day_user_ratings", "changes_applied"),
    *((asset, check) for asset in ("day_user_vectors", "day_collaborative_user_vectors", "day_hybrid_user_vectors")
      for check in ("one_row_per_touched_user", "no_nan_or_inf")),
    ("day_user_vectors", "unit_norm"), ("day_hybrid_user_vectors", "unit_norm"),
    *(("day_episodes", check) for check in ("one_step_per_rating", "steps_in_time_order", "rewards_in_0_1")),
    *(("day_demographics", check) for check in (
        "one_row_per_new_user", "required_fields", "valid_country_and_language_codes", "signup_before_first_rating",
        "platforms_offered_in_region", "age_in_band")),
    ("day_release", "served_recall_drift"),
}
EXPECTED_JOBS = {"whole_graph", "movielens", "serving_stores", "daily", "purge_old_runs", "rollback"}


def test_definitions_hold_every_asset_check_and_job() -> None:
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == EXPECTED_ASSETS
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == EXPECTED_CHECKS
    assert {job.name for job in defs.resolve_all_job_defs()} >= EXPECTED_JOBS


def test_every_asset_is_documented_grouped_and_owned() -> None:
    for node in defs.resolve_asset_graph().asset_nodes:
        assert node.description and len(node.description) > 40, node.key
        assert node.group_name, node.key
        assert node.owners, node.key
        assert node.kinds, node.key


def test_blocking_checks_are_the_ones_guarding_downstream() -> None:
    graph = defs.resolve_asset_graph()
    warn_only = {("movies", "year_plausible"), ("movies", "imdb_id_format"), ("graph", "explanation_query_under_1s"),
                 ("content_vectors", "toy_story_2_near_toy_story"),
                 *((f"milvus/{c}", "search_latency")
                   for c in ("media_vectors", "user_vectors", "hybrid_media_vectors", "hybrid_user_vectors")),
                 ("recommendation_quality", "served_beats_most_popular"),
                 ("recommendation_quality", "ann_search_agrees_with_exact"),
                 ("day_release", "served_recall_drift"),  # warns; its failure requests a refit
                 *((store, "built_from_newest_source") for store in SERVING_STORES)}
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        pair = (key.asset_key.to_user_string(), key.name)
        assert spec.blocking == (pair not in warn_only), pair


def test_the_daily_deliveries_are_partitioned_by_arrival_day_and_kept_out_of_the_whole_graph() -> None:
    graph = defs.resolve_asset_graph()
    days = {key.to_user_string() for key in graph.get_all_asset_keys() if key.path[0].startswith("day_")}
    for name in days:
        assert graph.get(dg.AssetKey(name)).partitions_def.name == "arrival_days", name
    partitioned = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).partitions_def}
    assert partitioned == days
    whole = {key.to_user_string() for key in defs.resolve_job_def("whole_graph").asset_layer.selected_asset_keys}
    daily = {key.to_user_string() for key in defs.resolve_job_def("daily").asset_layer.selected_asset_keys}
    assert not whole & days and daily == days


def test_workspace_yaml_points_at_the_definitions_module() -> None:
    from pathlib import Path

    import yaml

    workspace = yaml.safe_load((Path(__file__).resolve().parents[1] / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "tv5_assets.definitions"
    assert isinstance(defs, dg.Definitions)


def test_every_step_that_opens_milvus_carries_the_milvus_tag() -> None:
    """A multiprocess run holds Milvus Lite's users to one at a time through this tag
    (`tag_concurrency_limits`), so no step that opens the resource may lack it, and no other step carries it."""
    from tv5_assets.vector_store.resources import MILVUS_STEP_TAGS

    job = defs.resolve_job_def("whole_graph")
    [(key, value)] = MILVUS_STEP_TAGS.items()
    opens = {node.name for node in job.graph.node_defs if "milvus" in node.required_resource_keys}
    tagged = {node.name for node in job.graph.node_defs if node.tags.get(key) == value}
    assert opens == tagged
    assert "recommendation_quality" in tagged and "milvus__user_vectors_search_latency" in tagged
    assert len(tagged) == 4 + 4 * 8 + 1 + 1  # the collections, their checks, the evaluation's ANN search, release


def test_every_step_that_writes_or_audits_a_store_is_in_that_stores_pool() -> None:
    """One pool per store (tv5_assets/core/pools.py): the store's asset and every check that reads the store."""
    from tv5_assets.core.pools import STORE_POOLS

    expected = {"graph": "neo4j.graph", "agentdb": "agentdb",
                **{f"milvus/{c}": f"milvus.{c}" for c in ("media_vectors", "user_vectors", "hybrid_media_vectors",
                                                          "hybrid_user_vectors")}}
    # publishing, rollback and a day's release: one at a time; a day's delta against the served days: one at a time
    assert set(expected.values()) | {"release", "days"} == set(STORE_POOLS)
    assert defs.resolve_assets_def("release").op.pool == "release"
    assert defs.resolve_assets_def("day_release").op.pool == "release"
    assert defs.resolve_assets_def("day_user_ratings").op.pool == "days"
    assert defs.resolve_job_def("rollback").graph.node_defs[0].pool == "release"
    pools: dict[tuple[str, str | None], str | None] = {}
    for asset in defs.assets or []:
        for key in asset.keys:
            pools[(key.to_user_string(), None)] = asset.op.pool
    for checks in defs.asset_checks or []:
        for key in checks.check_keys:
            pools[(key.asset_key.to_user_string(), key.name)] = checks.node_def.pool
    for store, pool in expected.items():
        assert pools[(store, None)] == pool, store
        audits = {name: p for (asset, name), p in pools.items()
                  if asset == store and name not in (None, "built_from_newest_source")}  # that one reads the instance
        assert audits and set(audits.values()) == {pool}, (store, audits)
    others = {step: pool for step, pool in pools.items() if pool and pool not in STORE_POOLS}
    assert not others, f"steps in a pool that is not a store's: {others}"
    unpooled_stores = {step for step, pool in pools.items() if step[0] in expected and step[1] is None and not pool}
    assert not unpooled_stores


def test_the_source_sensor_and_the_retention_schedule_are_defined() -> None:
    assert {sensor.name for sensor in defs.sensors or []} >= {"serving_stores_follow_inputs", "movielens_new_release",
                                                              "arrival_days_sensor", "refit_on_recall_drift"}
    assert {schedule.name for schedule in defs.schedules or []} == {"purge_old_runs_daily", "weekly_refit"}
    refit = defs.resolve_schedule_def("weekly_refit")
    assert refit.job_name == "whole_graph" and refit.cron_schedule == "0 3 * * 0"
    assert refit.execution_timezone == "UTC" and refit.default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_sensor_def("refit_on_recall_drift").job_name == "whole_graph"


def test_dagster_definitions_validate_accepts_the_code_location() -> None:
    """What CI runs on the code location: `dagster definitions validate` (loads it as the code server would)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m",
                           "tv5_assets.definitions"], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All code locations passed validation" in done.stdout + done.stderr
