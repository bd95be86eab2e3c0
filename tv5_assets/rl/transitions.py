"""Ratings -> offline-RL transitions, in the flat step layout of d3rlpy's `MDPDataset` and Minari.

One step per rating. Per user, steps are ordered by timestamp, ties (several ratings in the same
second, common in MovieLens bulk imports) broken by movie_id, so the order is deterministic.

- state: the last `HISTORY` movie ids the user rated before this step, most recent last, 0-padded
  on the left (movie ids start at 1, so 0 never names a movie). The history runs across episodes:
  a user's taste does not reset because they paused for a month.
- action: the movie rated; reward: `(rating - 0.5) / 4.5`, so 0.5 stars -> 0 and 5 stars -> 1.
- next_state: the state after this step, i.e. the state shifted left with the action appended.
- episodes: a new one starts at a user's first rating and whenever the gap to their previous rating
  exceeds `session_gap`. The last step of an episode is a truncation (`timeouts` = True): the log
  stops, the user did not leave for good, so `terminals` is always False (no absorbing state).

Everything is window-free polars over rows sorted by user: shifts compared with the user id, a
running sum for episode ids, so it streams and vectorises (no per-user Python).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import polars as pl

HISTORY = 5
PAD = 0
DEFAULT_SESSION_GAP = timedelta(days=30)
MIN_RATING, MAX_RATING = 0.5, 5.0

STATE = pl.Array(pl.Int32, HISTORY)
SCHEMA = pl.Schema({
    "user_id": pl.Int32,
    "episode_id": pl.Int32,
    "step": pl.Int32,
    "timestamp": pl.Datetime("us", "UTC"),
    "state": STATE,
    "action": pl.Int32,
    "reward": pl.Float32,
    "next_state": STATE,
    "terminals": pl.Boolean,
    "timeouts": pl.Boolean,
})
ORDER = ["user_id", "timestamp", "action"]
# Columns that determine every other one (state and next_state are functions of the ordered actions).
CONTENT_COLUMNS = ["user_id", "episode_id", "step", "timestamp", "action", "reward", "timeouts"]


def reward(rating: pl.Expr) -> pl.Expr:
    """The rating scaled to [0, 1]: (rating - 0.5) / 4.5."""
    return ((rating - MIN_RATING) / (MAX_RATING - MIN_RATING)).cast(pl.Float32)


def _previous_action(k: int) -> pl.Expr:
    """The movie rated k steps earlier by the same user, or PAD."""
    same_user = pl.col("user_id").shift(k) == pl.col("user_id")
    return pl.when(same_user).then(pl.col("action").shift(k)).otherwise(PAD).cast(pl.Int32)


def in_step_order(ratings: pl.LazyFrame | pl.DataFrame) -> bool:
    """Whether rows are already sorted by (user_id, timestamp, movie_id): one cheap streaming pass.

    The `ratings` contract sorts by user and time and the parser also breaks ties by movie id, so
    sorting 25M rows again (the costliest step) is only done when this says otherwise.
    """
    user, ts, movie = pl.col("user_id"), pl.col("timestamp"), pl.col("movie_id")
    after = (user > user.shift(1)) | ((user == user.shift(1)) & (
        (ts > ts.shift(1)) | ((ts == ts.shift(1)) & (movie > movie.shift(1)))))
    return bool(ratings.lazy().select(after.fill_null(True).all()).collect().item())


def episodes_frame(ratings: pl.LazyFrame | pl.DataFrame, session_gap: timedelta = DEFAULT_SESSION_GAP,
                   presorted: bool = False) -> pl.LazyFrame:
    """The `episodes` table (columns of `SCHEMA`) as a lazy query over `ratings`.

    `presorted=True` skips the sort: pass it only when `in_step_order(ratings)` holds.
    """
    if session_gap <= timedelta(0):
        raise ValueError(f"session_gap must be positive, got {session_gap}")
    steps = ratings.lazy().select(
        "user_id", pl.col("movie_id").alias("action"), "timestamp", reward(pl.col("rating")).alias("reward"))
    if not presorted:
        steps = steps.sort(ORDER)
    previous = [_previous_action(k) for k in range(HISTORY, 0, -1)]  # oldest first
    new_user = pl.col("user_id").shift(1).fill_null(-1) != pl.col("user_id")
    long_gap = (pl.col("timestamp") - pl.col("timestamp").shift(1)) > session_gap
    row = pl.col("_row")  # a row index column, not int_range(len()): a length would stall the stream
    return (
        steps
        .with_row_index("_row")
        .with_columns((new_user | long_gap).alias("_start"))
        .with_columns(
            (pl.col("_start").cum_sum() - 1).cast(pl.Int32).alias("episode_id"),
            (row - pl.when(pl.col("_start")).then(row).forward_fill()).cast(pl.Int32).alias("step"),
            pl.concat_arr(previous).alias("state"),
            pl.concat_arr([*previous[1:], pl.col("action")]).alias("next_state"),
            pl.lit(False).alias("terminals"),
            pl.col("_start").shift(-1).fill_null(True).alias("timeouts"),
        )
        .select(SCHEMA.names())
    )


def summarise(episodes: pl.LazyFrame | pl.DataFrame) -> dict[str, object]:
    """Counts, mean reward and a content fingerprint of `episodes`, in one streaming aggregation.

    The fingerprint hashes every row's CONTENT_COLUMNS (state and next_state are functions of them,
    so hashing them too adds cost, not information) and sums the row hashes (wrapping u64): it is
    the asset's data version, computed without holding the table.
    """
    stats = episodes.lazy().select(
        pl.len().alias("steps"),
        (pl.col("episode_id").max() + 1).fill_null(0).alias("episodes"),
        pl.col("user_id").n_unique().alias("users"),
        pl.col("reward").mean().alias("mean_reward"),
        pl.col("timeouts").sum().alias("truncations"),
        pl.struct(CONTENT_COLUMNS).hash(seed=0).sum().alias("row_hash_sum"),
    ).collect().row(0, named=True)
    digest = hashlib.sha256(f"{SCHEMA!r}|{HISTORY}|{stats['steps']}|{stats['row_hash_sum']}".encode())
    return {**{k: v for k, v in stats.items() if k != "row_hash_sum"}, "fingerprint": digest.hexdigest()[:24]}
