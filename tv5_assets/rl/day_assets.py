"""RL of an arrival day: the episodes of the users it touched (thin Dagster wiring around `day_episodes`)."""

import time
from datetime import date, timedelta

import dagster as dg
import polars as pl

from tv5_assets.core.checking import latest_metadata
from tv5_assets.core.lake import DataLake
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.embeddings import day_vectors
from tv5_assets.ingestion.day_assets import day_asset
from tv5_assets.rl import day_episodes as logic
from tv5_assets.rl.assets import DEFAULT_GAP_DAYS, SESSION_GAP_DAYS
from tv5_assets.rl.day_policies import day_policy_rows
from tv5_assets.synthetic import day_people


@day_asset(
    kinds={"polars", "parquet"},
    deps=["episodes"],
    description=(
        "Every offline-RL step of the users whose ratings the partition's day changed, rebuilt from their whole "
        "current ratings exactly as `episodes` builds steps (same history, rewards, boundaries and truncations, "
        "with the session gap of the served `episodes`), keyed per user: (user_id, user_episode) instead of the "
        "full table's global episode_id, so no other user's rows are renumbered or rewritten. A user whose "
        "ratings are all gone has no step left."
    ),
)
def day_episodes(context: dg.AssetExecutionContext, day_user_ratings: pl.DataFrame,
                 day_rating_changes: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    gap_days = float((latest_metadata(context, "episodes") or {}).get(SESSION_GAP_DAYS, DEFAULT_GAP_DAYS))
    users = day_vectors.touched_users(day_rating_changes)
    frame = logic.touched_episodes(day_user_ratings, users, timedelta(days=gap_days))
    episodes = frame.select("user_id", logic.USER_EPISODE).n_unique() if frame.height else 0
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "steps": frame.height, "episodes": episodes, "users": frame["user_id"].n_unique(),
        "touched_users": users.height, SESSION_GAP_DAYS: gap_days,
        "wall_time_s": round(time.perf_counter() - started, 3),
    })


@day_asset(
    kinds={"polars", "parquet"},
    deps=["policies"],
    description=(
        "The policy row of every user the partition's day touched and who still has steps, built by the full "
        "build's `build_policies` from the user's `day_episodes` (one row per user: archetype, algorithm, "
        "hyperparameters, state snapshot, counts, mean reward), with the archetype of the user's served person: "
        "the `demographics` row, else the person another published day drew (a user a published day brought in "
        "keeps it), else, for a user new with this day, `day_demographics`'. A policy depends on its own user's "
        "steps only, so no other user's row is read or rewritten."
    ),
)
def day_policies(context: dg.AssetExecutionContext, lake: DataLake, day_episodes: pl.DataFrame,
                 demographics: pl.LazyFrame, day_demographics: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    elsewhere = day_people.published_elsewhere(lake.base_dir, date.fromisoformat(context.partition_key), demographics)
    frame = day_policy_rows(day_episodes, demographics, elsewhere, day_demographics)
    return dg.Output(frame, data_version=dg.DataVersion(frame_fingerprint(frame)), metadata={
        "users": frame.height, "wall_time_s": round(time.perf_counter() - started, 3),
    })


assets = [day_episodes, day_policies]
