"""Synthetic data of an arrival day: a person for each new user, the availability of each new movie (thin Dagster
wiring around `day_people` and `day_availability`)."""

import time
from datetime import date

import dagster as dg
import polars as pl

from tv5_assets.core.checking import latest_metadata
from tv5_assets.core.lake import DataLake
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.ingestion import day_catalogue
from tv5_assets.ingestion.day_assets import day_asset
from tv5_assets.synthetic import day_availability as da
from tv5_assets.synthetic import day_people
from tv5_assets.synthetic.assets import CONFIG, AvailabilityConfig, DemographicsConfig, availability_rules
from tv5_assets.synthetic.availability import rating_counts


def _catalogue(context: dg.AssetExecutionContext, lake: DataLake, movies: pl.DataFrame,
               day_movies: pl.DataFrame) -> pl.DataFrame:
    """`movies` with the movies the published days and this day brought in (what the day's users may rate)."""
    extra = day_catalogue.extra_movies(lake.base_dir, date.fromisoformat(context.partition_key), movies, day_movies)
    return day_catalogue.catalogue(movies, extra.head(0), extra)


@day_asset(
    kinds={"polars", "parquet", "faker"},
    description=(
        "A synthetic person for each user the partition's day brings in (rated, and has no served person: no row "
        "in `demographics` and none that another published day drew, `<lake>/days/published/<day>/people.parquet`"
        "), in `demographics`' columns, drawn as the full build draws one: every field from the user's keyed stream "
        "with the served table's seed, the archetype from the user's behaviour with the quotas over the day's new "
        "users. Every other user keeps their person, whichever day drew it and in whatever order the days are "
        "applied; the day's own published version is left out, so a corrected re-delivery draws again the users "
        "it touches that the day brought in. `day_release` publishes the draws of the users the day touched with "
        "the day, and keeps the earlier version's people of the users a re-delivery does not touch."
    ),
)
def day_demographics(context: dg.AssetExecutionContext, lake: DataLake, day_user_ratings: pl.DataFrame,
                     demographics: pl.LazyFrame, movies: pl.DataFrame, day_movies: pl.DataFrame
                     ) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    config = DemographicsConfig(**(latest_metadata(context, "demographics") or {}).get(CONFIG, {}))
    elsewhere = day_people.published_elsewhere(lake.base_dir, date.fromisoformat(context.partition_key), demographics)
    served = day_people.served_people(demographics, elsewhere, day_user_ratings.select("user_id").unique())
    built = day_people.new_people(day_user_ratings, served, _catalogue(context, lake, movies, day_movies),
                                  config.seed, config.archetype_shares)
    frame = built.users
    shares = frame["archetype"].value_counts(sort=True)
    context.log.info(f"day {context.partition_key}: {frame.height} new users")
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "new_users": frame.height, "kept_users": served.height, "published_people": elsewhere.height,
        "seed": config.seed,
        "archetypes": dg.MetadataValue.json(dict(zip(shares["archetype"].to_list(), shares["count"].to_list()))),
        "wall_time_s": round(time.perf_counter() - started, 3),
    })


@day_asset(
    kinds={"polars", "parquet"},
    description=(
        "The availability rows of each movie the partition's day brings in (`day_movies` not in `movies`), in "
        "`availability`'s columns, with the served table's config. Scores are computed over the whole catalogue "
        "(`movies`, the other published days' movies and the day's) as the full build computes them; a new movie "
        "goes on every platform where its score reaches the lowest score among the films the served "
        "`availability` puts there, and one that reaches none gets the platform where its percentile rank is "
        "highest. Its rows are drawn with the full build's keyed seeds. Every served row stays until the next full "
        "build redraws the catalogue."
    ),
)
def day_availability(context: dg.AssetExecutionContext, lake: DataLake, day_movies: pl.DataFrame,
                     movies: pl.DataFrame, availability: pl.DataFrame, ratings: pl.LazyFrame
                     ) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    config = AvailabilityConfig(**(latest_metadata(context, "availability") or {}).get(CONFIG, {}))
    rules = availability_rules(config.model_dump())
    catalogue = _catalogue(context, lake, movies, day_movies)
    new_ids = day_movies.join(movies.select("movie_id"), on="movie_id", how="anti")["movie_id"].unique()
    placement = da.place_new_movies(catalogue, rating_counts(ratings), availability, new_ids, rules)
    frame = da.placement_rows(placement, rules)
    per_movie = frame.height / max(new_ids.len(), 1)
    context.log.info(f"day {context.partition_key}: {new_ids.len()} new movies, {frame.height} availability rows")
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "new_movies": new_ids.len(), "rows": frame.height, "platforms_per_movie": round(per_movie, 3),
        "home_only_movies": int(placement.home_only.size), "seed": rules.seed,
        "wall_time_s": round(time.perf_counter() - started, 3),
    })


assets = [day_demographics, day_availability]
