"""Asset checks of each arrival day (per partition, so the partitions view shows which days are checked).

They re-read what the day stored, so a day partition edited outside Dagster, or a delta that lost a change,
fails before anything downstream of the day runs.
"""


import warnings

import dagster as dg
import polars as pl

from datetime import date

from tv5_assets.core.checking import RuleResult, check_result
from tv5_assets.core.lake import DataLake
from tv5_assets.ingestion import day_catalogue, day_rules, rules
from tv5_assets.ingestion.day_assets import ARRIVAL_DAYS

UNIQUE_KEY = "unique_key"
RATING_DOMAIN = "rating_domain"
MOVIE_KNOWN = "movie_id_in_movies"
MOVIES_NEW = "movies_are_new"
ARRIVAL_IS_DAY = "arrival_is_the_partitions_day"
CURRENT_ORDER = "sorted_by_user_then_time"
CHANGES_APPLIED = "changes_applied"


def day_check_spec(asset: str, name: str, description: str, reads: tuple[str, ...] = ()) -> dg.AssetCheckSpec:
    """A blocking check of one arrival day's partition of `asset` (every stage's day checks use it)."""
    with warnings.catch_warnings():  # checks per partition are a preview feature (docs/days.md says so), chosen
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, description=description, blocking=True, additional_deps=reads,
                                 partitions_def=ARRIVAL_DAYS)



@dg.multi_asset_check(
    specs=[
        day_check_spec("day_ratings", UNIQUE_KEY, "(user_id, movie_id) is unique within the day"),
        day_check_spec("day_ratings", RATING_DOMAIN, "ratings are 0.5..5.0 in half steps"),
        day_check_spec("day_ratings", MOVIE_KNOWN, "every rated movie exists in movies, or a published day or this "
                       "one brought it", reads=("movies", "day_movies")),
        day_check_spec("day_ratings", ARRIVAL_IS_DAY, "every row arrived on the partition's day"),
        day_check_spec("day_erasures", UNIQUE_KEY, "one erasure per user within the day"),
        day_check_spec("day_erasures", ARRIVAL_IS_DAY, "every erasure is of the partition's day"),
        day_check_spec("day_movies", UNIQUE_KEY, "one row per movie_id within the day"),
        day_check_spec("day_movies", MOVIES_NEW, "no movie of the day is in movies or another published day",
                       reads=("movies",)),
    ],
    ins={"day_ratings": dg.AssetIn("day_ratings"), "day_erasures": dg.AssetIn("day_erasures"),
         "day_movies": dg.AssetIn("day_movies"), "movies": dg.AssetIn("movies")},
)
def day_delivery_checks(context: dg.AssetCheckExecutionContext, lake: DataLake, day_ratings: pl.DataFrame,
                        day_erasures: pl.DataFrame, day_movies: pl.DataFrame, movies: pl.LazyFrame):
    day = context.partition_key
    served = pl.concat([movies.select("movie_id").collect(), day_catalogue.published_elsewhere(
        lake.base_dir, date.fromisoformat(day)).select("movie_id")])
    yield check_result("day_ratings", UNIQUE_KEY, rules.unique_key(day_ratings, ["user_id", "movie_id"]))
    yield check_result("day_ratings", RATING_DOMAIN, rules.rating_domain(day_ratings))
    yield check_result("day_ratings", MOVIE_KNOWN, rules.movie_ids_known(
        day_ratings, pl.concat([served, day_movies.select("movie_id")]), "rating"))
    yield check_result("day_ratings", ARRIVAL_IS_DAY, day_rules.arrival_is(day_ratings, day))
    yield check_result("day_erasures", UNIQUE_KEY, rules.unique_key(day_erasures, ["user_id"]))
    yield check_result("day_erasures", ARRIVAL_IS_DAY, day_rules.arrival_is(day_erasures, day))
    yield check_result("day_movies", UNIQUE_KEY, rules.unique_key(day_movies, ["movie_id"]))
    yield check_result("day_movies", MOVIES_NEW, day_rules.movies_new(day_movies, served))


@dg.multi_asset_check(
    specs=[
        day_check_spec("day_user_ratings", UNIQUE_KEY, "(user_id, movie_id) is unique"),
        day_check_spec("day_user_ratings", CURRENT_ORDER, "sorted by user_id, epoch, movie_id: the `ratings` contract"),
        day_check_spec("day_user_ratings", CHANGES_APPLIED, "every changed pair of day_rating_changes is in the users' "
              "current rows with its new rating (inserted, replaced) or gone (erased, withdrawn)",
              reads=("day_rating_changes",)),
    ],
    ins={"day_user_ratings": dg.AssetIn("day_user_ratings"), "day_rating_changes": dg.AssetIn("day_rating_changes")},
)
def day_changes_checks(day_user_ratings: pl.DataFrame, day_rating_changes: pl.DataFrame):
    yield check_result("day_user_ratings", UNIQUE_KEY, rules.unique_key(day_user_ratings, ["user_id", "movie_id"]))
    yield check_result("day_user_ratings", CURRENT_ORDER, day_rules.in_current_order(day_user_ratings))
    result: RuleResult = day_rules.changes_applied(day_user_ratings, day_rating_changes)
    yield check_result("day_user_ratings", CHANGES_APPLIED, result)


asset_checks = [day_delivery_checks, day_changes_checks]
