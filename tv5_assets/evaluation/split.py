"""The per-user temporal split: what each user rated first trains, what they rated last is to be found.

Every scorer is fitted on `train` only; `positives` are the held-out ratings at or above the threshold.
A user sample bounds the cost at ml-25m size: sampled users keep all their ratings (train and held
out), so the scorers learn from the sample's training part alone and nothing held out leaks in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class SplitSettings:
    holdout: float = 0.2  # each user's last share of ratings by time
    positive_threshold: float = 4.0  # held-out ratings at or above it are what a scorer must find
    max_users: int = 10_000  # users sampled (seeded) when there are more
    seed: int = 0


@dataclass(frozen=True)
class Split:
    train: pl.DataFrame  # user_id, movie_id, rating, timestamp: each user's first ratings
    held_out: pl.DataFrame  # user_id, movie_id, rating, timestamp: each user's last ratings
    users_sampled: int
    users_total: int

    @property
    def positives(self) -> pl.DataFrame:
        """user_id, movie_id of the held-out ratings a scorer must find (set by `temporal_split`)."""
        return self.held_out.filter(pl.col("positive")).select("user_id", "movie_id")


def sample_users(ratings: pl.LazyFrame, max_users: int, seed: int) -> tuple[pl.Series, int]:
    """All users when there are at most `max_users`, else a seeded sample of them (sorted)."""
    users = ratings.select(pl.col("user_id").unique().sort()).collect()["user_id"]
    if users.len() <= max_users:
        return users, users.len()
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(users.len(), size=max_users, replace=False))
    return users.gather(picked), users.len()


def temporal_split(ratings: pl.LazyFrame | pl.DataFrame, settings: SplitSettings) -> Split:
    """Hold out each sampled user's last `holdout` share of ratings by timestamp (ties: by movie_id).

    A user with n ratings keeps ceil((1 - holdout) * n) for training (so at least one) and holds out the
    rest; a user with a single rating holds nothing out.
    """
    ratings = ratings.lazy().select("user_id", "movie_id", "rating", "timestamp")
    users, total = sample_users(ratings, settings.max_users, settings.seed)
    ordered = (ratings.join(users.to_frame().lazy(), on="user_id", how="semi")
               .sort("user_id", "timestamp", "movie_id")
               .with_columns(pl.int_range(pl.len()).over("user_id").alias("_position"),
                             (pl.len().over("user_id") * (1.0 - settings.holdout)).ceil().alias("_keep"))
               .collect())
    late = pl.col("_position") >= pl.col("_keep")
    held = (ordered.filter(late).drop("_position", "_keep")
            .with_columns((pl.col("rating") >= settings.positive_threshold).alias("positive")))
    return Split(ordered.filter(~late).drop("_position", "_keep"), held, users.len(), total)
