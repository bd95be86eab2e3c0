"""The episodes of the users a day touched (no Dagster here).

A user's episodes depend only on that user's ratings (history, boundaries and truncations are per user), so the
touched users' episodes are rebuilt from their whole current ratings with `transitions.episodes_frame`, the
function the full build uses, and no other user's steps are read or rewritten. The full table numbers episodes
with one running count over all users (`episode_id`), which a day cannot extend without renumbering everyone
after the first touched user; a day's episodes are keyed per user instead: (user_id, user_episode), user_episode
counting the user's episodes from 0.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from tv5_assets.ingestion.days import ratings_table
from tv5_assets.rl.transitions import SCHEMA, episodes_frame

USER_EPISODE = "user_episode"
NATURAL_KEY = ["user_id", "timestamp", "action"]  # a step is a user's rating of a movie at a time


def with_user_episodes(frame: pl.DataFrame) -> pl.DataFrame:
    """`episodes` rows with `episode_id` replaced by the per-user count `user_episode`."""
    episode = pl.col("episode_id")
    return frame.with_columns((episode - episode.min().over("user_id")).cast(pl.Int32).alias(USER_EPISODE)) \
        .select([USER_EPISODE if c == "episode_id" else c for c in SCHEMA.names()])


def touched_episodes(current: pl.DataFrame, users: pl.DataFrame, session_gap: timedelta) -> pl.DataFrame:
    """Every step of `users` (their whole current ratings, `day_user_ratings` rows), keyed per user."""
    rows = ratings_table(current.join(users, on="user_id", how="semi"))
    return with_user_episodes(episodes_frame(rows, session_gap, presorted=True).collect())
