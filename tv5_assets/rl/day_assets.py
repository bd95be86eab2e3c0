"""RL of an arrival day: the episodes of the users it touched (thin Dagster wiring around `day_episodes`)."""

import time
from datetime import timedelta

import dagster as dg
import polars as pl

from tv5_assets.core.checking import latest_metadata
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.embeddings import day_vectors
from tv5_assets.ingestion.day_assets import day_asset
from tv5_assets.rl import day_episodes as logic
from tv5_assets.rl.assets import DEFAULT_GAP_DAYS, SESSION_GAP_DAYS



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


assets = [day_episodes]
