"""The policies of the users a day touched (no Dagster here): a policy row depends on its own user's steps only."""

from __future__ import annotations

import polars as pl

from tv5_assets.rl.day_episodes import USER_EPISODE
from tv5_assets.rl.policies import build_policies
from tv5_assets.synthetic.day_people import people_of


def as_episodes(frame: pl.DataFrame) -> pl.DataFrame:
    """A day's steps in the `episodes` columns (`user_episode` in place of `episode_id`), for the full build's
    per-user functions, which only count and order a user's episode ids."""
    return frame.rename({USER_EPISODE: "episode_id"})


def day_policy_rows(steps: pl.DataFrame, demographics: pl.LazyFrame, elsewhere: pl.DataFrame,
                    new_people: pl.DataFrame) -> pl.DataFrame:
    """The touched users' `policies` rows from their steps; each user's archetype from their served person (the
    base `demographics` row, else the person another published day drew, `elsewhere`), else from the day's new
    people (`day_people.people_of`; only the touched users' rows are read)."""
    users = steps.select("user_id").unique()
    people = people_of(demographics, elsewhere, new_people, users).select("user_id", "archetype")
    return build_policies(as_episodes(steps).lazy(), people)
