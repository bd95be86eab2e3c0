"""Validation rules over the parsed MovieLens frames, as plain functions.

The Dagster asset checks are thin wrappers around these, so each rule can be tested on a
hand-made good frame and a hand-made bad one.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from tv5_assets.core.checking import RuleResult
from tv5_assets.ingestion.parsing import unaccounted_rows

FIRST_FILM_YEAR = 1874  # Janssen's "Passage de Vénus", the oldest surviving film sequence


def _examples(frame: pl.DataFrame, limit: int = 5) -> list[dict]:
    return [{k: str(v) for k, v in row.items()} for row in frame.head(limit).to_dicts()]


def unique_key(frame: pl.DataFrame, keys: list[str]) -> RuleResult:
    dupes = frame.filter(pl.struct(keys).is_duplicated()).select(keys)
    n = dupes.unique().height
    if n:
        return RuleResult(False, f"{n} value(s) of {keys} occur more than once, e.g. {_examples(dupes.unique())}",
                          {"duplicate_keys": n})
    return RuleResult(True, f"{keys} unique over {frame.height} rows", {"duplicate_keys": 0})


def required_non_null(frame: pl.DataFrame, columns: list[str]) -> RuleResult:
    nulls = frame.select([pl.col(c).null_count() for c in columns]).row(0, named=True)
    bad = {c: n for c, n in nulls.items() if n}
    if bad:
        return RuleResult(False, f"required field(s) have nulls: {bad}", {"null_counts": nulls})
    return RuleResult(True, f"no nulls in {columns}", {"null_counts": nulls})


def movie_ids_known(frame: pl.DataFrame, movies: pl.DataFrame, what: str) -> RuleResult:
    """Every movie_id of `frame` exists in `movies` (they can drift apart when only one is rebuilt)."""
    orphans = frame.join(movies.select("movie_id"), on="movie_id", how="anti")
    ids = orphans["movie_id"].unique().sort()
    if orphans.height:
        return RuleResult(
            False,
            f"{orphans.height} {what} row(s) reference {ids.len()} movie id(s) absent from movies, "
            f"e.g. {ids.head(5).to_list()}",
            {"orphan_rows": orphans.height, "orphan_movie_ids": ids.len()},
        )
    return RuleResult(True, f"all {frame.height} {what} rows reference known movies", {"orphan_rows": 0})


def rating_domain(ratings: pl.DataFrame) -> RuleResult:
    r = pl.col("rating")
    bad = ratings.filter(r.is_null() | (r < 0.5) | (r > 5.0) | ((r * 2) != (r * 2).round(0)))
    if bad.height:
        return RuleResult(False, f"{bad.height} rating(s) outside 0.5..5.0 in half steps, e.g. {_examples(bad)}",
                          {"out_of_domain": bad.height})
    return RuleResult(True, "every rating is in 0.5..5.0 in half steps", {"out_of_domain": 0})


def year_plausible(movies: pl.DataFrame, latest: int | None = None) -> RuleResult:
    latest = latest or dt.date.today().year + 2
    y = pl.col("year")
    bad = movies.filter(y.is_not_null() & ((y < FIRST_FILM_YEAR) | (y > latest)))
    missing = movies["year"].null_count()
    meta = {"implausible_years": bad.height, "movies_without_year": missing}
    if bad.height:
        return RuleResult(False, f"{bad.height} year(s) outside {FIRST_FILM_YEAR}..{latest}, "
                                 f"e.g. {_examples(bad.select('movie_id', 'title', 'year'))}", meta)
    return RuleResult(True, f"years within {FIRST_FILM_YEAR}..{latest} ({missing} titles carry none)", meta)


def imdb_id_format(movies: pl.DataFrame) -> RuleResult:
    ok = pl.col("imdb_id").str.contains(r"^tt\d{7,8}$")
    bad = movies.filter(pl.col("imdb_id").is_not_null() & ~ok)
    missing = movies["imdb_id"].null_count()
    meta = {"malformed_imdb_ids": bad.height, "movies_without_imdb_id": missing}
    if bad.height:
        return RuleResult(False, f"{bad.height} imdb_id(s) not 'tt' + 7 digits, e.g. "
                                 f"{_examples(bad.select('movie_id', 'imdb_id'))}", meta)
    return RuleResult(True, f"imdb_ids are 'tt' + 7 digits ({missing} movies have none)", meta)


def relevance_range(genome: pl.DataFrame) -> RuleResult:
    r = pl.col("relevance")
    bad = genome.filter(r.is_null() | r.is_nan() | (r < 0) | (r > 1))
    if bad.height:
        return RuleResult(False, f"{bad.height} relevance value(s) outside [0, 1], e.g. {_examples(bad)}",
                          {"out_of_range": bad.height})
    return RuleResult(True, f"all {genome.height} relevances in [0, 1]", {"out_of_range": 0})


def genome_ranks(genome: pl.DataFrame, top_k: int) -> RuleResult:
    """Ranks run 1..n per movie with n <= top_k, in decreasing relevance."""
    per_movie = genome.sort(["movie_id", "rank"]).group_by("movie_id", maintain_order=True).agg(
        pl.col("rank"), pl.col("relevance"),
    )
    bad = per_movie.filter(
        (pl.col("rank").list.len() > top_k)
        | (pl.col("rank") != pl.int_ranges(1, pl.col("rank").list.len() + 1))
        | (pl.col("relevance").list.diff(null_behavior="drop").list.max() > 0)
    )
    if bad.height:
        return RuleResult(False, f"{bad.height} movie(s) whose genome ranks are not 1..n<= {top_k} by "
                                 f"decreasing relevance, e.g. {bad['movie_id'].head(5).to_list()}",
                          {"bad_movies": bad.height})
    return RuleResult(True, f"{per_movie.height} movies with at most {top_k} ranked tags", {"bad_movies": 0})


def rows_accounted(rows_read: dict[str, int], rows_valid: dict[str, int], rejected_by_file: dict[str, int],
                   rows_kept_reported: int, rows_stored: int) -> RuleResult:
    """kept + rejected = read for every source file, and the stored asset has the rows reported."""
    gaps = unaccounted_rows(rows_read, rows_valid, rejected_by_file)
    meta = {"rows_read": rows_read, "rows_valid": rows_valid, "rows_quarantined": rejected_by_file,
            "rows_stored": rows_stored}
    if gaps:
        return RuleResult(False, f"rows neither kept nor quarantined, per file: {gaps}", meta)
    if rows_stored != rows_kept_reported:
        return RuleResult(False, f"stored asset has {rows_stored} rows, the materialization reported "
                                 f"{rows_kept_reported}", meta)
    return RuleResult(True, "every row read is either kept or quarantined", meta)
