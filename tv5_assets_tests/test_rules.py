"""Each validation rule, both ways: passes on good data, fails with a useful message on bad data."""

from __future__ import annotations

import polars as pl

from tv5_assets.ingestion import rules

MOVIES = pl.DataFrame({
    "movie_id": [1, 2, 3], "title": ["A (1995)", "B (2001)", "C"], "display_title": ["A", "B", "C"],
    "year": [1995, 2001, None], "genres": [["Drama"], [], ["Comedy"]], "imdb_id": ["tt0114709", "tt0112682", None],
}, schema_overrides={"movie_id": pl.Int32, "year": pl.Int32})
RATINGS = pl.DataFrame({"user_id": [1, 1, 2], "movie_id": [1, 2, 3], "rating": [0.5, 4.0, 5.0]},
                       schema_overrides={"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32})
GENOME = pl.DataFrame({"movie_id": [1, 1, 2], "tag_id": [5, 7, 5], "relevance": [0.9, 0.6, 0.7], "rank": [1, 2, 1]},
                      schema_overrides={"movie_id": pl.Int32, "relevance": pl.Float32, "rank": pl.Int32})


def test_unique_key() -> None:
    assert rules.unique_key(RATINGS, ["user_id", "movie_id"]).passed
    bad = rules.unique_key(pl.concat([RATINGS, RATINGS.head(1)]), ["user_id", "movie_id"])
    assert not bad.passed and "1 value(s)" in bad.description and bad.metadata["duplicate_keys"] == 1


def test_required_non_null() -> None:
    assert rules.required_non_null(MOVIES, ["movie_id", "title"]).passed
    bad = rules.required_non_null(MOVIES.with_columns(pl.lit(None, pl.String).alias("title")), ["movie_id", "title"])
    assert not bad.passed and "'title': 3" in bad.description


def test_movie_ids_known() -> None:
    assert rules.movie_ids_known(RATINGS, MOVIES, "rating").passed
    bad = rules.movie_ids_known(RATINGS, MOVIES.filter(pl.col("movie_id") != 3), "rating")
    assert not bad.passed and "[3]" in bad.description and bad.metadata["orphan_rows"] == 1


def test_rating_domain() -> None:
    assert rules.rating_domain(RATINGS).passed
    for value in (0.0, 5.5, 3.3):
        bad = rules.rating_domain(RATINGS.with_columns(pl.lit(value, pl.Float32).alias("rating")))
        assert not bad.passed and "outside 0.5..5.0" in bad.description


def test_year_plausible() -> None:
    assert rules.year_plausible(MOVIES, latest=2030).passed
    bad = rules.year_plausible(MOVIES.with_columns(pl.lit(1066, pl.Int32).alias("year")), latest=2030)
    assert not bad.passed and "1874..2030" in bad.description and bad.metadata["implausible_years"] == 3


def test_imdb_id_format() -> None:
    assert rules.imdb_id_format(MOVIES).passed
    bad = rules.imdb_id_format(MOVIES.with_columns(pl.lit("114709").alias("imdb_id")))
    assert not bad.passed and "'tt' + 7 digits" in bad.description


def test_relevance_range() -> None:
    assert rules.relevance_range(GENOME).passed
    bad = rules.relevance_range(GENOME.with_columns(pl.lit(1.5, pl.Float32).alias("relevance")))
    assert not bad.passed and "outside [0, 1]" in bad.description


def test_genome_ranks() -> None:
    assert rules.genome_ranks(GENOME, top_k=10).passed
    assert not rules.genome_ranks(GENOME, top_k=1).passed
    swapped = GENOME.with_columns(pl.Series("relevance", [0.6, 0.9, 0.7], dtype=pl.Float32))
    bad = rules.genome_ranks(swapped, top_k=10)
    assert not bad.passed and "decreasing relevance" in bad.description


def test_rows_accounted() -> None:
    ok = rules.rows_accounted({"ratings.csv": 10}, {"ratings.csv": 8}, {"ratings.csv": 2}, 8, 8)
    assert ok.passed
    lost = rules.rows_accounted({"ratings.csv": 10}, {"ratings.csv": 8}, {"ratings.csv": 1}, 8, 8)
    assert not lost.passed and "'ratings.csv': 1" in lost.description
    drift = rules.rows_accounted({"ratings.csv": 10}, {"ratings.csv": 8}, {"ratings.csv": 2}, 8, 7)
    assert not drift.passed and "stored asset has 7 rows" in drift.description
