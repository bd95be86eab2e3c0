"""Validation rules of a day's partitions, as plain functions (the checks in `day_checks` wrap them)."""

from __future__ import annotations

from datetime import date

import polars as pl

from tv5_assets.core.checking import RuleResult
from tv5_assets.ingestion.day_delta import CHANGE
from tv5_assets.ingestion.days import ARRIVAL, CURRENT_ORDER, EPOCH, PAIR, RATING


def arrival_is(frame: pl.DataFrame, day: str | date) -> RuleResult:
    expected = date.fromisoformat(day) if isinstance(day, str) else day
    wrong = frame.filter(pl.col(ARRIVAL) != expected)
    if wrong.height:
        seen = sorted(str(d) for d in wrong[ARRIVAL].unique().to_list())
        return RuleResult(False, f"{wrong.height} rows arrived on {seen[:5]}, not on {expected}",
                          {"wrong_rows": wrong.height})
    return RuleResult(True, f"all {frame.height} rows arrived on {expected}")


def in_current_order(frame: pl.DataFrame) -> RuleResult:
    """The `ratings` contract (user_id, epoch, movie_id ascending) on which the episodes' fast path relies."""
    earlier = pl.lit(False)
    for column in reversed(CURRENT_ORDER):  # lexicographic: this column smaller, or equal and the rest smaller
        now, before = pl.col(column), pl.col(column).shift(1)
        earlier = (now < before) | ((now == before) & earlier)
    out_of_place = frame.select(earlier.fill_null(False).sum()).item()
    if out_of_place:
        return RuleResult(False, f"{out_of_place} rows come before the row above them in the order {CURRENT_ORDER}",
                          {"rows_out_of_place": out_of_place})
    return RuleResult(True, f"{frame.height} rows sorted by {CURRENT_ORDER}")


def changes_applied(current: pl.DataFrame, changes: pl.DataFrame) -> RuleResult:
    """Every changed pair holds its new (rating, epoch) in the current rows, or is absent when erased or withdrawn."""
    found = changes.join(current.select(*PAIR, pl.col(RATING).alias("__now"), pl.col(EPOCH).alias("__now_epoch")),
                         on=PAIR, how="left")
    gone = pl.col(CHANGE).is_in(["erased", "withdrawn"])
    wrong = found.filter(pl.when(gone).then(pl.col("__now").is_not_null())
                         .otherwise(~(pl.col("__now").eq_missing(pl.col(RATING))
                                      & pl.col("__now_epoch").eq_missing(pl.col(EPOCH)))))
    if wrong.height:
        sample = wrong.select(*PAIR, CHANGE).head(5).rows()
        return RuleResult(False, f"{wrong.height} of {changes.height} changes are not in the current rows, "
                                 f"e.g. {sample}", {"changes_missing": wrong.height})
    return RuleResult(True, f"all {changes.height} changes are in the current rows", {"changes": changes.height})


def movies_new(day_movies: pl.DataFrame, served_ids: pl.DataFrame) -> RuleResult:
    """A day brings movies the stores do not serve yet (`served_ids`: the release's and the other days')."""
    known = day_movies.join(served_ids.select("movie_id").unique(), on="movie_id", how="semi")["movie_id"]
    if known.len():
        return RuleResult(False, f"{known.len()} movie(s) of the day are served already, e.g. "
                          f"{known.head(5).to_list()}", {"known_movies": known.len()})
    return RuleResult(True, f"all {day_movies.height} movies of the day are new", {"known_movies": 0})
