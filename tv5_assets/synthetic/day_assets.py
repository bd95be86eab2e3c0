"""Synthetic data of an arrival day: a person for each new user (thin Dagster wiring around `day_people`)."""

import time

import dagster as dg
import polars as pl

from tv5_assets.core.checking import latest_metadata
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.ingestion.day_assets import day_asset
from tv5_assets.synthetic import day_people
from tv5_assets.synthetic.assets import CONFIG, DemographicsConfig



@day_asset(
    kinds={"polars", "parquet", "faker"},
    description=(
        "A synthetic person for each user the partition's day brings in (rated, and has no row in `demographics`), "
        "in `demographics`' columns, drawn as the full build draws one: every field from the user's keyed stream "
        "with the served table's seed, the archetype from the user's behaviour with the quotas over the day's new "
        "users. Every other user keeps their row."
    ),
)
def day_demographics(context: dg.AssetExecutionContext, day_user_ratings: pl.DataFrame, demographics: pl.LazyFrame,
                     movies: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    config = DemographicsConfig(**(latest_metadata(context, "demographics") or {}).get(CONFIG, {}))
    served = demographics.select("user_id").collect()
    built = day_people.new_people(day_user_ratings, served, movies, config.seed, config.archetype_shares)
    frame = built.users
    shares = frame["archetype"].value_counts(sort=True)
    context.log.info(f"day {context.partition_key}: {frame.height} new users")
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "new_users": frame.height, "served_users": served.height, "seed": config.seed,
        "archetypes": dg.MetadataValue.json(dict(zip(shares["archetype"].to_list(), shares["count"].to_list()))),
        "wall_time_s": round(time.perf_counter() - started, 3),
    })


assets = [day_demographics]
