"""The movies days bring in: which the stores serve, which a delivery sets or withdraws (no Dagster here).

The base release's `movies` is the catalogue until a refit folds the published days' movies into it; until then the
served catalogue is `movies`, the movies each published day brought (`<lake>/days/published/<day>/movies.parquet`)
and the day's own. A re-delivery of a day replaces its movies like its ratings: a movie it brings again unchanged is
not rewritten, a changed one is set again, and one it drops is withdrawn from the stores, which is refused while
another published day rates it (its ratings would point at nothing).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from tv5_assets.ingestion import served_days
from tv5_assets.ingestion.days import MOVIE, MOVIES_SCHEMA
from tv5_assets.ingestion.errors import MovieLensInputError


def refuse_withdrawn(path: Path, movies: pl.DataFrame, published_before: pl.DataFrame,
                     other_days_log: pl.DataFrame) -> None:
    """Refuse a re-delivery (`path`, its `movies`) that drops a movie its published version (`published_before`)
    brought while another published day's ratings (`other_days_log`) rate it."""
    dropped = published_before.join(movies.select(MOVIE), on=MOVIE, how="anti")
    rated = dropped.join(other_days_log.select(MOVIE).unique(), on=MOVIE, how="semi")[MOVIE]
    if rated.len():
        raise MovieLensInputError(
            path, "withdrawn_movie",
            f"this delivery of the day no longer brings movie(s) {rated.head(5).to_list()} ({rated.len()} in all), "
            "which the day's published version brought and other published days rate; deliver them again "
            "(a movie is withdrawn with a release), so nothing was loaded")


def catalogue(movies: pl.DataFrame, published: pl.DataFrame, day_movies: pl.DataFrame) -> pl.DataFrame:
    """The served catalogue with the day's movies: `movies`, then the published days' movies it lacks (another
    day's, `published` without the day's own), then the day's (MOVIES_SCHEMA, sorted by movie_id)."""
    extra = pl.concat([published.select(list(MOVIES_SCHEMA)), day_movies.select(list(MOVIES_SCHEMA))])
    return pl.concat([movies.select(list(MOVIES_SCHEMA)).cast(MOVIES_SCHEMA),
                      extra.join(movies.select(MOVIE), on=MOVIE, how="anti").cast(MOVIES_SCHEMA)]
                     ).unique(MOVIE, keep="last", maintain_order=True).sort(MOVIE)


def changed(day_movies: pl.DataFrame, published_before: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """What a delivery of a day changes in the stores' movies against the day's published version: the movies to
    set (new, or brought again changed) and the ids to withdraw (brought before, dropped now)."""
    columns = list(MOVIES_SCHEMA)
    before = published_before.select(columns).cast(MOVIES_SCHEMA)
    now = day_movies.select(columns).cast(MOVIES_SCHEMA)
    same = now.join(before, on=columns, how="semi", nulls_equal=True)
    to_set = now.join(same.select(MOVIE), on=MOVIE, how="anti").sort(MOVIE)
    withdrawn = before.join(now.select(MOVIE), on=MOVIE, how="anti")[MOVIE].cast(pl.Int64).sort()
    return to_set, withdrawn


def published_elsewhere(lake_dir: str | Path, day: date) -> pl.DataFrame:
    """The movies the published days other than `day` brought in (MOVIES_SCHEMA and arrival)."""
    folder = served_days.published_folder(lake_dir)
    return served_days.read_published_movies(folder, [d for d in served_days.published_days(folder) if d != day])


def published_on(lake_dir: str | Path, day: date) -> pl.DataFrame:
    """The movies the published version of `day` brought in (none when the day is not published)."""
    folder = served_days.published_folder(lake_dir)
    return served_days.read_published_movies(folder, [day] if day in served_days.published_days(folder) else [])


def extra_movies(lake_dir: str | Path, day: date, movies: pl.DataFrame | pl.LazyFrame,
                 day_movies: pl.DataFrame) -> pl.DataFrame:
    """The movies a day's users may rate that `movies` (the last full build's) lacks: other published days' and the
    day's own (MOVIES_SCHEMA, sorted by movie_id)."""
    base = movies.lazy().select(MOVIE).collect()
    extra = pl.concat([published_elsewhere(lake_dir, day).select(list(MOVIES_SCHEMA)),
                       day_movies.select(list(MOVIES_SCHEMA)).cast(MOVIES_SCHEMA)])
    return extra.join(base, on=MOVIE, how="anti").unique(MOVIE, keep="last", maintain_order=True).sort(MOVIE)
