"""Parsing the four MovieLens tables into clean, typed polars frames (no Dagster here).

Each parser reads every field as text, rejects rows that break a rule into a quarantine frame
(file, line, rule, raw record), and returns typed rows. Rules are listed in the order they are
tested; a row is quarantined under the first one it breaks.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from tv5_assets.ingestion.csv_reader import LINE, CsvFile, read_fields
from tv5_assets.ingestion.parsing import (
    Parsed,
    is_blank,
    label_duplicates,
    not_digits,
    quarantine,
    require_rows,
    split_by_rules,
    split_duplicates,
    structural_rules,
)
from tv5_assets.ingestion.titles import display_title, year_from_title

MOVIES = CsvFile("movies.csv", ("movieId", "title", "genres"))
LINKS = CsvFile("links.csv", ("movieId", "imdbId", "tmdbId"))
RATINGS = CsvFile("ratings.csv", ("userId", "movieId", "rating", "timestamp"))
TAGS = CsvFile("tags.csv", ("userId", "movieId", "tag", "timestamp"))
GENOME_SCORES = CsvFile("genome-scores.csv", ("movieId", "tagId", "relevance"))
GENOME_TAGS = CsvFile("genome-tags.csv", ("tagId", "tag"))

NO_GENRES = "(no genres listed)"
TIME_OF_DAY = pl.Enum(["night", "morning", "afternoon", "evening"])
# MovieLens began collecting ratings in 1995; anything earlier is a corrupt timestamp.
FIRST_TIMESTAMP = 788_918_400  # 1995-01-01T00:00:00Z


def _latest_plausible_timestamp() -> int:
    return int(time.time()) + 86_400


def _positive_id(column: str) -> pl.Expr:
    """A natively parsed id column: null means missing or not an integer."""
    return pl.col(column).is_null() | (pl.col(column) <= 0)


def _in(column: str, ids: pl.Series) -> pl.Expr:
    return pl.col(column).is_in(ids.cast(pl.Int32).implode())


def parse_movies(movies_path: Path, links_path: Path) -> Parsed:
    """movies.csv joined with links.csv.

    Output: movie_id, title (as given), display_title, year (null when absent or a range),
    genres (list; empty for "(no genres listed)"), imdb_id ("tt" + 7 digits), tmdb_id (nullable).
    """
    raw = read_fields(movies_path, MOVIES, {"movieId": pl.Int32})
    require_rows(raw, movies_path)
    good, flagged = split_by_rules(raw, [
        *structural_rules(MOVIES),
        ("movieId_not_integer", _positive_id("movieId")),
        ("title_missing", is_blank("title")),
        ("genres_missing", is_blank("genres")),
    ])
    typed = good.select(
        LINE,
        pl.col("movieId").alias("movie_id"),
        pl.col("title").str.strip_chars_end("\r"),
        pl.col("genres").str.strip_chars(),
    )
    kept, dupes = split_duplicates(typed, ["movie_id"], [LINE])
    rejected = quarantine(movies_path, MOVIES.name, [flagged, label_duplicates(dupes, kept, ["movie_id"],
                                                                               ["title", "genres"])])
    links, links_rejected, links_read = _parse_links(links_path, kept["movie_id"])
    movies = (
        kept.select(
            "movie_id",
            "title",
            display_title(pl.col("title")).alias("display_title"),
            year_from_title(pl.col("title")).alias("year"),
            pl.when(pl.col("genres") == NO_GENRES)
            .then(pl.lit([], dtype=pl.List(pl.String)))
            .otherwise(pl.col("genres").str.split("|"))
            .alias("genres"),
        )
        .join(links, on="movie_id", how="left")
        .sort("movie_id")
    )
    return Parsed(
        kept=movies,
        rejected=pl.concat([rejected, links_rejected]),
        rows_read={MOVIES.name: raw.height, LINKS.name: links_read},
        rows_valid={MOVIES.name: kept.height, LINKS.name: links.height},
    )


def _parse_links(path: Path, movie_ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    # imdbId stays text (its leading zeros matter); tmdbId too, since empty is allowed but junk is not.
    raw = read_fields(path, LINKS, {"movieId": pl.Int32})
    tmdb = pl.col("tmdbId").str.strip_chars().fill_null("")
    good, flagged = split_by_rules(raw, [
        *structural_rules(LINKS),
        ("movieId_not_integer", _positive_id("movieId")),
        ("imdbId_not_integer", not_digits("imdbId")),
        ("tmdbId_not_integer", (tmdb != "") & not_digits("tmdbId")),
        ("unknown_movie", ~_in("movieId", movie_ids)),
    ])
    typed = good.select(
        LINE,
        pl.col("movieId").alias("movie_id"),
        (pl.lit("tt") + pl.col("imdbId").str.strip_chars().str.zfill(7)).alias("imdb_id"),
        pl.col("tmdbId").str.strip_chars().cast(pl.Int32, strict=False).alias("tmdb_id"),
    )
    kept, dupes = split_duplicates(typed, ["movie_id"], [LINE])
    rejected = quarantine(path, LINKS.name, [flagged, label_duplicates(dupes, kept, ["movie_id"],
                                                                       ["imdb_id", "tmdb_id"])])
    return kept.select("movie_id", "imdb_id", "tmdb_id"), rejected, raw.height


def _timestamp_rules() -> list[tuple[str, pl.Expr]]:
    ts = pl.col("timestamp")
    return [
        ("timestamp_not_integer", ts.is_null()),
        ("timestamp_range", (ts < FIRST_TIMESTAMP) | (ts > _latest_plausible_timestamp())),
    ]


def _utc(seconds: pl.Expr) -> pl.Expr:
    return pl.from_epoch(seconds, time_unit="s").dt.replace_time_zone("UTC")


def time_of_day(epoch_seconds: pl.Expr) -> pl.Expr:
    """UTC hour bands: night 0-5, morning 6-11, afternoon 12-17, evening 18-23.

    Computed from epoch seconds: UTC has no offsets, and integer arithmetic is far cheaper than
    timezone-aware datetime fields on 25M rows.
    """
    hour = (epoch_seconds // 3600) % 24
    return (
        pl.when(hour < 6).then(pl.lit("night"))
        .when(hour < 12).then(pl.lit("morning"))
        .when(hour < 18).then(pl.lit("afternoon"))
        .otherwise(pl.lit("evening"))
        .cast(TIME_OF_DAY)
    )


RATINGS_DTYPES = {"userId": pl.Int32, "movieId": pl.Int32, "rating": pl.Float64, "timestamp": pl.Int64}


def parse_ratings(path: Path, movie_ids: pl.Series) -> Parsed:
    """ratings.csv -> user_id, movie_id, rating (0.5-5.0 in halves), timestamp (UTC), time_of_day.

    A repeated (userId, movieId) keeps the latest rating (then the earlier line): it is the user's
    current opinion; the others are quarantined as duplicate_key / duplicate_row.
    """
    raw = read_fields(path, RATINGS, RATINGS_DTYPES)
    require_rows(raw, path)
    rating = pl.col("rating")
    good, flagged = split_by_rules(raw, [
        *structural_rules(RATINGS),
        ("userId_not_integer", _positive_id("userId")),
        ("movieId_not_integer", _positive_id("movieId")),
        ("rating_not_numeric", rating.is_null() | rating.is_nan()),
        ("rating_domain", (rating < 0.5) | (rating > 5.0) | ((rating * 2) != (rating * 2).round(0))),
        *_timestamp_rules(),
        ("unknown_movie", ~_in("movieId", movie_ids)),
    ])
    typed = good.select(
        LINE,
        pl.col("userId").alias("user_id"),
        pl.col("movieId").alias("movie_id"),
        pl.col("rating").cast(pl.Float32),
        pl.col("timestamp").alias("epoch"),
    )
    del good
    kept, dupes = split_duplicates(typed, ["user_id", "movie_id"], ["epoch", LINE], [True, False])
    del typed
    rejected = quarantine(path, RATINGS.name, [
        flagged, label_duplicates(dupes, kept, ["user_id", "movie_id"], ["rating", "epoch"]),
    ])
    ratings = (
        kept.lazy()
        .sort(["user_id", "epoch", "movie_id"])
        .select(
            "user_id", "movie_id", "rating",
            _utc(pl.col("epoch")).alias("timestamp"),
            time_of_day(pl.col("epoch")).alias("time_of_day"),
        )
        .collect()
    )
    return Parsed(kept=ratings, rejected=rejected, rows_read={RATINGS.name: raw.height},
                  rows_valid={RATINGS.name: ratings.height})


def parse_tags(path: Path, movie_ids: pl.Series) -> Parsed:
    """tags.csv -> user_id, movie_id, tag (trimmed), timestamp (UTC). Exact repeats are quarantined."""
    raw = read_fields(path, TAGS, {"userId": pl.Int32, "movieId": pl.Int32, "timestamp": pl.Int64})
    good, flagged = split_by_rules(raw, [
        *structural_rules(TAGS),
        ("userId_not_integer", _positive_id("userId")),
        ("movieId_not_integer", _positive_id("movieId")),
        ("tag_empty", is_blank("tag")),
        *_timestamp_rules(),
        ("unknown_movie", ~_in("movieId", movie_ids)),
    ])
    typed = good.select(
        LINE,
        pl.col("userId").alias("user_id"),
        pl.col("movieId").alias("movie_id"),
        pl.col("tag").str.strip_chars(),
        pl.col("timestamp").alias("epoch"),
    )
    keys = ["user_id", "movie_id", "tag", "epoch"]
    kept, dupes = split_duplicates(typed, keys, [LINE])
    rejected = quarantine(path, TAGS.name, [flagged, label_duplicates(dupes, kept, keys, keys)])
    tags = kept.select(
        "user_id", "movie_id", "tag", _utc(pl.col("epoch")).alias("timestamp")
    ).sort(["user_id", "movie_id", "timestamp", "tag"])
    return Parsed(kept=tags, rejected=rejected, rows_read={TAGS.name: raw.height},
                  rows_valid={TAGS.name: tags.height})


GENOME_SCHEMA = {
    "movie_id": pl.Int32, "tag_id": pl.Int32, "tag": pl.String, "relevance": pl.Float32, "rank": pl.Int32,
}


def parse_genome(scores_path: Path, tags_path: Path, min_relevance: float, top_k: int) -> Parsed:
    """Per movie, the Tag Genome tags with relevance > `min_relevance`, best first, at most `top_k`.

    Empty (with the same columns) when the release has no genome files, as ml-latest-small.
    """
    if not scores_path.exists() and not tags_path.exists():
        return Parsed(kept=pl.DataFrame(schema=GENOME_SCHEMA))
    tag_raw = read_fields(tags_path, GENOME_TAGS, {"tagId": pl.Int32})
    tag_good, tag_flagged = split_by_rules(tag_raw, [
        *structural_rules(GENOME_TAGS),
        ("tagId_not_integer", pl.col("tagId").is_null()),
        ("tag_empty", is_blank("tag")),
    ])
    tag_typed = tag_good.select(LINE, pl.col("tagId").alias("tag_id"), pl.col("tag").str.strip_chars())
    tag_kept, tag_dupes = split_duplicates(tag_typed, ["tag_id"], [LINE])
    tag_rejected = quarantine(tags_path, GENOME_TAGS.name, [
        tag_flagged, label_duplicates(tag_dupes, tag_kept, ["tag_id"], ["tag"]),
    ])
    tag_names = tag_kept.select("tag_id", "tag")

    raw = read_fields(scores_path, GENOME_SCORES, {"movieId": pl.Int32, "tagId": pl.Int32, "relevance": pl.Float64})
    relevance = pl.col("relevance")
    good, flagged = split_by_rules(raw, [
        *structural_rules(GENOME_SCORES),
        ("movieId_not_integer", _positive_id("movieId")),
        ("tagId_not_integer", pl.col("tagId").is_null()),
        ("relevance_not_numeric", relevance.is_null() | relevance.is_nan()),
        ("relevance_range", (relevance < 0) | (relevance > 1)),
        ("unknown_tag", ~_in("tagId", tag_names["tag_id"])),
    ])
    typed = good.select(
        LINE,
        pl.col("movieId").alias("movie_id"),
        pl.col("tagId").alias("tag_id"),
        relevance.cast(pl.Float32),
    )
    kept, dupes = split_duplicates(typed, ["movie_id", "tag_id"], [LINE])
    rejected = quarantine(scores_path, GENOME_SCORES.name, [
        flagged, label_duplicates(dupes, kept, ["movie_id", "tag_id"], ["relevance"]),
    ])
    top = (
        kept.lazy()
        .filter(pl.col("relevance") > min_relevance)
        .sort(["movie_id", "relevance", "tag_id"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("movie_id").alias("rank"))
        .filter(pl.col("rank") <= top_k)
        .join(tag_names.lazy(), on="tag_id", how="left")
        .select(list(GENOME_SCHEMA))
        .collect()
    )
    return Parsed(
        kept=top,
        rejected=pl.concat([tag_rejected, rejected]),
        rows_read={GENOME_TAGS.name: tag_raw.height, GENOME_SCORES.name: raw.height},
        rows_valid={GENOME_TAGS.name: tag_names.height, GENOME_SCORES.name: kept.height},
    )


__all__ = [
    "GENOME_SCHEMA", "MOVIES", "LINKS", "RATINGS", "TAGS", "GENOME_SCORES", "GENOME_TAGS",
    "parse_movies", "parse_ratings", "parse_tags", "parse_genome", "time_of_day",
]
