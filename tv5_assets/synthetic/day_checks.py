"""Per-partition checks of a day's new people (the rules of `demographics`, on the day's new users) and of its new
movies' availability."""

from datetime import date

import dagster as dg
import polars as pl

from tv5_assets.core.checking import check_result
from tv5_assets.core.lake import DataLake
from tv5_assets.ingestion.day_checks import day_check_spec
from tv5_assets.synthetic import day_availability as day_availability_rules
from tv5_assets.synthetic import day_people, rules
from tv5_assets.synthetic.checks import (
    AGE_IN_BAND,
    DEMOGRAPHICS_REQUIRED,
    REGION_AND_PLATFORMS,
    REQUIRED_FIELDS,
    SIGNUP_BEFORE_FIRST_RATING,
    VALID_CODES,
)

ASSET = "day_demographics"
ONE_ROW_PER_NEW_USER = "one_row_per_new_user"


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    return day_check_spec(ASSET, name, description, reads=("day_user_ratings", "demographics"))


@dg.multi_asset_check(
    specs=[_spec(ONE_ROW_PER_NEW_USER, "exactly one person per user of the day without a served person (a row of "
                 "demographics or a person another published day drew)"),
           _spec(REQUIRED_FIELDS, "no nulls except secondary_language; platforms never empty"),
           _spec(VALID_CODES, "ISO 3166-1 alpha-2 countries, ISO 639-1 languages"),
           _spec(SIGNUP_BEFORE_FIRST_RATING, "signup_date on or before the first rating"),
           _spec(REGION_AND_PLATFORMS, "region is the country's; platforms are offered there"),
           _spec(AGE_IN_BAND, "age within 18-100 and in its age_band")],
    ins={"people": dg.AssetIn(ASSET), "day_user_ratings": dg.AssetIn("day_user_ratings"),
         "demographics": dg.AssetIn("demographics")},
)
def day_demographics_checks(context: dg.AssetCheckExecutionContext, lake: DataLake, people: pl.DataFrame,
                            day_user_ratings: pl.DataFrame, demographics: pl.LazyFrame):
    elsewhere = day_people.published_elsewhere(lake.base_dir, date.fromisoformat(context.partition_key), demographics)
    new = day_people.new_users(day_user_ratings, day_people.served_people(
        demographics, elsewhere, day_user_ratings.select("user_id").unique()))
    first = (day_user_ratings.join(new, on="user_id", how="semi").group_by("user_id")
             .agg(pl.from_epoch(pl.col("epoch").min(), "s").dt.replace_time_zone("UTC").alias("first_rating")))
    yield check_result(ASSET, ONE_ROW_PER_NEW_USER, rules.one_row_per_user(people, new["user_id"]))
    yield check_result(ASSET, REQUIRED_FIELDS, rules.non_null(people, DEMOGRAPHICS_REQUIRED, ("platforms",)))
    yield check_result(ASSET, VALID_CODES, rules.valid_codes(people))
    yield check_result(ASSET, SIGNUP_BEFORE_FIRST_RATING, rules.signup_before_first_rating(people, first))
    yield check_result(ASSET, REGION_AND_PLATFORMS, rules.region_and_platforms(people))
    yield check_result(ASSET, AGE_IN_BAND, rules.age_in_band(people))


EVERY_NEW_MOVIE_AVAILABLE = "every_new_movie_available"


@dg.multi_asset_check(
    specs=[day_check_spec("day_availability", EVERY_NEW_MOVIE_AVAILABLE, "each movie the day brings in is on at least "
                          "one platform, and only those movies are", reads=("day_movies", "movies"))],
    ins={"day_availability": dg.AssetIn("day_availability"), "day_movies": dg.AssetIn("day_movies"),
         "movies": dg.AssetIn("movies")},
)
def day_availability_checks(day_availability: pl.DataFrame, day_movies: pl.DataFrame, movies: pl.LazyFrame):
    new = day_movies.join(movies.select("movie_id").collect(), on="movie_id", how="anti")["movie_id"]
    yield check_result("day_availability", EVERY_NEW_MOVIE_AVAILABLE,
                       day_availability_rules.covers_exactly(day_availability, new))


asset_checks = [day_demographics_checks, day_availability_checks]
