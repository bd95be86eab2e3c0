"""Arrival days in Dagster, on a real instance: the day sensor's partitions and run keys, the `daily` assets
(strict day files, the delta against what the stores serve) and their per-partition checks."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tv5_assets.definitions import defs
from tv5_assets.ingestion import served_days
from tv5_assets.ingestion.day_assets import ARRIVAL_DAYS, LANDING_DAYS
from tv5_assets.ingestion.day_sensor import DAY_FILES_TAG, arrival_days_sensor
from tv5_assets.ingestion.day_watch import DayCursor
from tv5_assets.ingestion.days import base_log, current_ratings, empty_ledger, ratings_table, read_day_ratings
from tv5_assets.rl.day_episodes import NATURAL_KEY, with_user_episodes
from tv5_assets.rl.transitions import episodes_frame
from tv5_assets.embeddings.user_vectors import user_vectors
from tv5_assets.sample.days import write_days
from tv5_assets.synthetic.assets import DemographicsConfig
from tv5_assets.synthetic.demographics import build_demographics
from tv5_assets.taste import factors, hybrid
from tv5_assets.taste.assets import SETTINGS
from tv5_assets_tests.harness import SMALL_SAMPLE, lake_resources, materialize, release_config

DAYS = dg.AssetSelection.groups("days") - dg.AssetSelection.assets("day_release")  # the stores: test_day_release
DAY_ASSETS = ("day_ratings", "day_erasures", "day_user_ratings", "day_rating_changes", "day_user_vectors",
              "day_collaborative_user_vectors", "day_hybrid_user_vectors", "day_episodes",
              "day_demographics", "day_movies", "day_content_vectors", "day_availability")


class Lake:
    def __init__(self, base: Path, instance: dg.DagsterInstance, release: Path) -> None:
        self.base, self.instance, self.release = base, instance, release
        self.cursor: str | None = None
        self.days = base.joinpath(*LANDING_DAYS)

    def run_day(self, day: str, raise_on_error: bool = True, selection: dg.AssetSelection = DAYS
                ) -> dg.ExecuteInProcessResult:
        return dg.materialize([*(defs.assets or []), *(defs.asset_checks or [])], selection=selection,
                              partition_key=day, instance=self.instance, resources=lake_resources(self.base),
                              raise_on_error=raise_on_error)

    def tick(self) -> dg.SensorResult:
        """One evaluation of the day sensor, its cursor kept as the daemon keeps it."""
        sensor = arrival_days_sensor(str(self.days))
        result = sensor(dg.build_sensor_context(instance=self.instance, cursor=self.cursor))
        self.cursor = result.cursor or self.cursor
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result

    def requested(self) -> dict[str, str]:
        """Day -> the run key last requested for it."""
        return DayCursor.from_json(self.cursor).requested

    def stored(self, asset: str, day: str) -> Path:
        return self.base / asset / f"{day}.parquet"

    def base_ratings(self) -> pl.DataFrame:
        return pl.read_parquet(self.base / "ratings.parquet")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    base = tmp_path_factory.mktemp("days_lake")
    instance = dg.DagsterInstance.ephemeral()
    base_assets = dg.AssetSelection.assets("movielens_release", "movies", "ratings", "tags", "genome",
                                           "content_vectors", "collaborative_movie_vectors", "demographics",
                                           "availability")
    result = materialize(base_assets, base, release_config(**SMALL_SAMPLE), instance=instance)
    [release] = [Path(str(e.materialization.metadata["directory"].value))
                 for e in result.get_asset_materialization_events() if e.asset_key.path == ["movielens_release"]]
    return Lake(base, instance, release)


@pytest.fixture(scope="module")
def delivered(lake: Lake) -> list[Path]:
    return write_days(lake.release, lake.days, 3, 60, 8, 2, seed=5, erase=2)


def test_the_sensor_adds_a_partition_and_requests_a_run_per_day_keyed_by_its_files(lake, delivered):
    result = lake.tick()
    days = sorted({date.fromisoformat(p.stem.split("-", 1)[1]).isoformat() for p in delivered})
    assert [r.partition_key for r in result.run_requests] == days
    assert set(lake.instance.get_dynamic_partitions(ARRIVAL_DAYS.name)) == set(days)
    last = result.run_requests[-1]
    named = rf"erasures-{days[-1]}\.csv:[0-9a-f]{{16}}\+ratings-{days[-1]}\.csv:[0-9a-f]{{16}}"
    assert re.fullmatch(named, last.run_key)
    assert last.tags[DAY_FILES_TAG] == last.run_key
    assert lake.requested() == {r.partition_key: r.run_key for r in result.run_requests}
    again = lake.tick()  # the same files: nothing new to request (and the daemon never runs a key twice)
    assert not again.run_requests and not again.dynamic_partitions_requests
    assert "no new or corrected day file" in again.skip_reason.skip_message
    assert lake.requested() == {r.partition_key: r.run_key for r in result.run_requests}


def test_a_day_stores_only_its_rows_and_the_scopes_current_ratings_with_checks_per_partition(lake, delivered):
    lake.tick()
    day = lake.instance.get_dynamic_partitions(ARRIVAL_DAYS.name)[0]
    result = lake.run_day(day)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations), [e.description for e in evaluations if not e.passed]
    assert {e.asset_key.to_user_string() for e in evaluations} == {"day_ratings", "day_erasures", "day_user_ratings",
                                                                    *DAY_ASSETS[4:]}
    day_checks = [k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key.path[0] in DAY_ASSETS]
    assert len(evaluations) == len(day_checks) == 32  # every check of every day asset, on this partition
    assert {e.partition for e in evaluations} == {day}
    for asset in DAY_ASSETS:
        assert lake.stored(asset, day).exists(), asset
    assert lake.instance.get_materialized_partitions(dg.AssetKey("day_ratings")) == {day}

    movie_ids = pl.read_parquet(lake.base / "movies.parquet")["movie_id"]
    rows = read_day_ratings(lake.days / f"ratings-{day}.csv", movie_ids)
    assert_frame_equal(pl.read_parquet(lake.stored("day_ratings", day)), rows)
    log = pl.concat([base_log(lake.base_ratings()), rows.drop("line")])
    scope = pl.read_parquet(lake.stored("day_user_ratings", day))
    full = current_ratings(log.lazy(), empty_ledger().lazy()).collect()
    assert_frame_equal(scope, full.join(rows.select("user_id").unique(), on="user_id", how="semi"))
    changes = pl.read_parquet(lake.stored("day_rating_changes", day))
    assert set(changes["change"]) <= {"inserted", "replaced"} and changes.height > 0
    meta = result.asset_materializations_for_node("day_changes")[0].metadata
    assert meta["untouched_rows"].value == full.height - scope.height  # counted, never read
    assert meta["scope_users"].value == rows["user_id"].n_unique()
    assert_vectors_equal_the_full_build(lake, day, full, changes)
    assert_episodes_equal_the_full_build(lake, day, full, changes)
    assert_new_people_are_drawn_as_the_full_build_draws_them(lake, day, full)


def assert_new_people_are_drawn_as_the_full_build_draws_them(lake: Lake, day: str, full: pl.DataFrame) -> None:
    """The day's new users get a person; every field but the quota-assigned archetype equals the full build's."""
    served = pl.read_parquet(lake.base / "demographics.parquet")
    people = pl.read_parquet(lake.stored("day_demographics", day))
    new = full.select("user_id").unique().join(served.select("user_id"), on="user_id", how="anti")
    assert people["user_id"].to_list() == new.sort("user_id")["user_id"].to_list() and people.height > 0
    movies = pl.read_parquet(lake.base / "movies.parquet")
    rebuilt = build_demographics(ratings_table(full), movies, DemographicsConfig().seed).users
    keyed = ["user_id", "country", "region", "name", "email", "signup_date"]  # drawn from the user's own stream
    assert_frame_equal(people.select(keyed), rebuilt.join(new, on="user_id", how="semi").select(keyed).sort("user_id"))
    assert set(people["archetype"]) <= set(served["archetype"])


def assert_episodes_equal_the_full_build(lake: Lake, day: str, full: pl.DataFrame, changes: pl.DataFrame) -> None:
    """The touched users' day steps equal the full build's on natural keys, with the per-user episode count."""
    everyone = with_user_episodes(episodes_frame(ratings_table(full)).collect())
    touched = changes.select("user_id").unique()
    expected = everyone.join(touched, on="user_id", how="semi").sort(NATURAL_KEY)
    stored = pl.read_parquet(lake.stored("day_episodes", day)).sort(NATURAL_KEY)
    assert stored.height == full.join(touched, on="user_id", how="semi").height > 0
    assert_frame_equal(stored, expected)


def assert_vectors_equal_the_full_build(lake: Lake, day: str, full: pl.DataFrame, changes: pl.DataFrame) -> None:
    """Each touched user's day vectors equal the full build's over the same current ratings."""
    content = pl.read_parquet(lake.base / "content_vectors.parquet").select("movie_id", "vector")
    movie_factors = pl.read_parquet(lake.base / "collaborative_movie_vectors.parquet").select("movie_id", "vector")
    ratings = full.select("user_id", "movie_id", "rating", pl.col("epoch").alias("timestamp"))
    everyone_content = user_vectors(ratings, content).frame
    everyone_collab = factors.user_factors(ratings.lazy(), movie_factors, SETTINGS)
    ids, left, right = hybrid.aligned(everyone_content, everyone_collab, "user_id")
    everyone_hybrid = hybrid.frame("user_id", ids, hybrid.user_vectors(left, right, hybrid.CONTENT_WEIGHT))
    touched = changes.select("user_id").unique()
    for asset, everyone, tolerance in (("day_user_vectors", everyone_content, 1e-6),
                                       ("day_collaborative_user_vectors", everyone_collab, 1e-5),
                                       ("day_hybrid_user_vectors", everyone_hybrid, 1e-6)):
        stored = pl.read_parquet(lake.stored(asset, day))
        assert stored["user_id"].to_list() == touched.sort("user_id")["user_id"].to_list(), asset
        expected = everyone.join(touched, on="user_id", how="semi").sort("user_id")
        assert stored.drop_nulls("vector")["user_id"].to_list() == expected["user_id"].to_list(), asset
        gap = np.abs(np.asarray(stored.drop_nulls("vector")["vector"].to_numpy())
                     - np.asarray(expected["vector"].to_numpy())).max()
        print(f"{asset}: {stored.height} touched users, max |day - full| {gap:.2e} (tolerance {tolerance:g})")
        assert gap <= tolerance, (asset, gap)


def test_a_malformed_day_is_refused_naming_file_line_and_rule_and_stores_nothing(lake):
    day = "2031-01-02"
    bad = lake.days / f"ratings-{day}.csv"
    lake.days.mkdir(parents=True, exist_ok=True)
    bad.write_text("userId,movieId,rating,timestamp\n1,1,4.0,1700000000\n2,1,9.0,1700000001\n")
    try:
        lake.tick()
        result = lake.run_day(day, raise_on_error=False)
        assert not result.success
        [failure] = [e for e in result.all_events if e.is_step_failure]
        error, message = failure.step_failure_data.error, ""
        while error is not None:  # the step's error and its causes: the day file's own error is the cause
            message, error = message + error.message, error.cause
        assert bad.name in message and "line 3" in message and "rating_domain" in message, message
        for asset in DAY_ASSETS:
            assert not lake.stored(asset, day).exists(), asset
        assert day not in lake.instance.get_materialized_partitions(dg.AssetKey("day_ratings"))
    finally:
        bad.unlink()


def test_a_check_fails_on_a_day_partition_edited_outside_dagster_and_blocks_the_days_delta(lake, delivered):
    lake.tick()
    day = lake.instance.get_dynamic_partitions(ARRIVAL_DAYS.name)[1]
    assert lake.run_day(day).success
    stored = lake.stored("day_ratings", day)
    kept = pl.read_parquet(stored)
    pl.concat([kept, kept.head(1)]).write_parquet(stored)  # a row repeated by hand
    changes = lake.stored("day_rating_changes", day)
    written = changes.stat().st_mtime_ns
    try:
        # the stored day audited again, then its delta: the failed blocking check stops the delta
        selection = (dg.AssetSelection.checks_for_assets("day_ratings", "day_erasures", "day_movies")
                     | dg.AssetSelection.assets("day_user_ratings", "day_rating_changes"))
        result = lake.run_day(day, raise_on_error=False, selection=selection)
        verdict = {e.check_name: e.passed for e in result.get_asset_check_evaluations()
                   if e.asset_key.path == ["day_ratings"]}
        assert verdict["unique_key"] is False and verdict["rating_domain"] is True
        assert not result.asset_materializations_for_node("day_changes")
        assert changes.stat().st_mtime_ns == written
    finally:
        kept.write_parquet(stored)


def test_a_published_day_run_again_changes_nothing_and_a_correction_is_a_new_run(lake, delivered):
    lake.tick()
    day = lake.instance.get_dynamic_partitions(ARRIVAL_DAYS.name)[2]
    assert lake.run_day(day).success
    ratings = pl.read_parquet(lake.stored("day_ratings", day))
    erasures = pl.read_parquet(lake.stored("day_erasures", day))
    before = pl.read_parquet(lake.stored("day_user_ratings", day))
    changes = pl.read_parquet(lake.stored("day_rating_changes", day))
    assert changes.height and erasures.height  # the last day erases two users
    published = served_days.published_folder(lake.base)
    gained = changes.filter(pl.col("change") == "inserted").height - changes.filter(
        pl.col("change").is_in(["erased", "withdrawn"])).height
    served_days.publish_day(published, date.fromisoformat(day), ratings, erasures, gained)
    try:
        again = lake.run_day(day)
        assert pl.read_parquet(lake.stored("day_rating_changes", day)).is_empty()
        assert pl.read_parquet(lake.stored("day_user_ratings", day)).is_empty()
        meta = again.asset_materializations_for_node("day_changes")[0].metadata
        assert meta["published_days"].value == 1 and meta["scope_users"].value == 0
        # a correction: the day re-delivered with its first row's rating changed is a new run key
        path = lake.days / f"ratings-{day}.csv"
        lake.tick()
        old_key = lake.requested()[day]
        lines = path.read_text().splitlines()
        user, movie, rating, stamp = lines[1].split(",")
        lines[1] = ",".join([user, movie, "0.5" if rating != "0.5" else "5.0", stamp])
        path.write_text("\n".join(lines) + "\n")
        [request] = lake.tick().run_requests  # only the corrected day
        assert request.partition_key == day and request.run_key != old_key
        assert request.run_key.split("+")[0] == old_key.split("+")[0]  # the erasures file is unchanged
        assert lake.run_day(day).success
        corrected = pl.read_parquet(lake.stored("day_rating_changes", day))
        assert corrected.select("user_id", "movie_id", "change").rows() == [(int(user), int(movie), "replaced")]
        assert before.height > 0
    finally:
        served_days.publish_day(published, date.fromisoformat(day), ratings.head(0), erasures.head(0), -gained)
