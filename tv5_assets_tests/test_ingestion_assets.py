"""The MovieLens stage run through Dagster: on the generated sample, on real ml-latest-small, on bad input."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, materialize, release_config
from tv5_assets_tests.test_bad_input import RATINGS, write_release

INGESTION = "group:movielens"


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def _failed_checks(result: dg.ExecuteInProcessResult) -> dict:
    return {key: e.description for key, e in check_results(result).items() if not e.passed}


def test_sample_release_materializes_with_green_checks(lake_dir: Path) -> None:
    result = materialize(INGESTION, lake_dir, release_config(**SMALL_SAMPLE))
    assert result.success
    checks = check_results(result)
    assert len(checks) == 18 and _failed_checks(result) == {}
    ratings_meta = _metadata(result, "ratings")
    assert ratings_meta["rows_read"] == SMALL_SAMPLE["sample_ratings"] == ratings_meta["rows_kept"]
    assert ratings_meta["rows_rejected"] == 0 and ratings_meta["distinct_users"] == SMALL_SAMPLE["sample_users"]
    assert {"first", "last"} <= set(ratings_meta["date_range"])
    genome = pl.read_parquet(lake_dir / "genome.parquet")
    assert genome.height > 0 and genome["rank"].max() <= 10 and genome["relevance"].min() > 0.5
    for name in ("movies", "ratings", "tags", "genome"):
        assert (lake_dir / f"{name}.parquet").exists()
        assert (lake_dir / f"{name}.quarantine.parquet").exists()


def test_real_ml_latest_small_known_figures(lake_dir: Path, ml_latest_small: Path) -> None:
    result = materialize(INGESTION, lake_dir, release_config(source=str(ml_latest_small)))
    assert result.success and _failed_checks(result) == {}
    movies = pl.read_parquet(lake_dir / "movies.parquet")
    ratings = pl.read_parquet(lake_dir / "ratings.parquet")
    tags = pl.read_parquet(lake_dir / "tags.parquet")
    assert movies.height == 9_742
    assert ratings.height == 100_836 and ratings["user_id"].n_unique() == 610
    assert tags.height == 3_683
    assert pl.read_parquet(lake_dir / "genome.parquet").is_empty()  # ml-latest-small has no Tag Genome
    toy_story = movies.filter(pl.col("movie_id") == 1).row(0, named=True)
    assert toy_story["year"] == 1995 and toy_story["imdb_id"] == "tt0114709" and toy_story["tmdb_id"] == 862
    assert toy_story["genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    death_note = movies.filter(pl.col("title") == "Death Note: Desu nôto (2006–2007)").row(0, named=True)
    assert death_note["year"] is None  # "(2006–2007)" is a range, not a year
    no_genres = movies.filter(pl.col("genres").list.len() == 0)
    assert no_genres.height == 34
    assert _metadata(result, "movies")["movies_without_year"] == 13


def test_checks_fail_on_corrupted_stored_data(lake_dir: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(INGESTION, lake_dir, release_config(**SMALL_SAMPLE), instance=instance).success
    ratings = pl.read_parquet(lake_dir / "ratings.parquet")
    corrupted = pl.concat([ratings, ratings.head(2).with_columns(pl.lit(7.0, pl.Float32).alias("rating"))])
    corrupted.write_parquet(lake_dir / "ratings.parquet")
    result = materialize(
        dg.AssetSelection.checks_for_assets("ratings"), lake_dir, instance=instance, raise_on_error=False
    )
    failed = _failed_checks(result)
    assert set(failed) == {
        ("ratings", "unique_key"), ("ratings", "rating_domain"), ("ratings", "kept_plus_rejected_equals_read"),
    }
    assert "2 value(s) of ['user_id', 'movie_id']" in failed[("ratings", "unique_key")]
    assert "2 rating(s) outside 0.5..5.0" in failed[("ratings", "rating_domain")]
    evaluation = check_results(result)[("ratings", "unique_key")]
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR


def test_bad_rows_are_quarantined_and_counted(lake_dir: Path, tmp_path: Path) -> None:
    release = write_release(tmp_path / "release", ratings=RATINGS + "abc,1,4.0,964982703\n" + "1,2,9.0,964982703\n")
    run_config = {"ops": {
        "movielens_release": {"config": {"source": str(release)}},
        "ratings": {"config": {"max_rejected_fraction": 0.5}},
    }}
    result = materialize(INGESTION, lake_dir, run_config)
    assert result.success and _failed_checks(result) == {}
    meta = _metadata(result, "ratings")
    assert (meta["rows_read"], meta["rows_kept"], meta["rows_rejected"]) == (5, 3, 2)
    assert meta["rejected_by_rule"] == {"rating_domain": 1, "userId_not_integer": 1}
    quarantine = pl.read_parquet(lake_dir / "ratings.quarantine.parquet").sort("line")
    assert quarantine.select("file", "line", "rule").rows() == [
        ("ratings.csv", 5, "userId_not_integer"), ("ratings.csv", 6, "rating_domain"),
    ]


def test_a_failed_materialization_leaves_the_previous_version_readable(lake_dir: Path, tmp_path: Path) -> None:
    good = write_release(tmp_path / "good")
    assert materialize(INGESTION, lake_dir, release_config(source=str(good))).success
    before = pl.read_parquet(lake_dir / "ratings.parquet")
    bad = write_release(tmp_path / "bad", ratings=RATINGS.replace(",", ";"))
    result = materialize(INGESTION, lake_dir, release_config(source=str(bad)), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure and e.step_key == "ratings")
    message = failure.step_failure_data.error.to_string()
    assert "ratings.csv, line 1" in message and "comma_delimiter" in message
    assert pl.read_parquet(lake_dir / "ratings.parquet").equals(before)
