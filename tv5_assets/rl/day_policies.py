"""The policies of the users a day touched (no Dagster here): a policy row depends on its own user's steps only."""

from __future__ import annotations

import polars as pl

from tv5_assets.rl.day_episodes import USER_EPISODE
from tv5_assets.rl.policies import build_policies


def as_episodes(frame: pl.DataFrame) -> pl.DataFrame:
    """A day's steps in the `episodes` columns (`user_episode` in place of `episode_id`), for the full build's
    per-user functions, which only count and order a user's episode ids."""
    return frame.rename({USER_EPISODE: "episode_id"})


def day_policy_rows(steps: pl.DataFrame, demographics: pl.LazyFrame, new_people: pl.DataFrame) -> pl.DataFrame:
    """The touched users' `policies` rows from their steps; archetypes from the served demographics or the day's
    new people (only the touched users' rows are read)."""
    users = steps.select("user_id").unique()
    served = demographics.select("user_id", "archetype").join(users.lazy(), on="user_id", how="semi").collect()
    people = pl.concat([served, new_people.select("user_id", "archetype").cast(served.schema)])
    return build_policies(as_episodes(steps).lazy(), people.unique("user_id", keep="first"))
