"""Per-partition checks of a day's episodes."""

import dagster as dg
import polars as pl

from tv5_assets.core.checking import check_result
from tv5_assets.embeddings import day_vectors
from tv5_assets.ingestion.day_checks import day_check_spec
from tv5_assets.rl import rules

ASSET = "day_episodes"


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    return day_check_spec(ASSET, name, description, reads=("day_user_ratings", "day_rating_changes"))


@dg.multi_asset_check(
    specs=[_spec("one_step_per_rating", "one step per current rating of the touched users, for the same users"),
           _spec("steps_in_time_order", "each user's steps are contiguous, by timestamp then movie id"),
           _spec("rewards_in_0_1", "every reward lies in [0, 1]")],
    ins={"day_episodes": dg.AssetIn(ASSET), "day_user_ratings": dg.AssetIn("day_user_ratings"),
         "day_rating_changes": dg.AssetIn("day_rating_changes")},
)
def day_episodes_checks(day_episodes: pl.DataFrame, day_user_ratings: pl.DataFrame,
                        day_rating_changes: pl.DataFrame):
    touched = day_user_ratings.join(day_vectors.touched_users(day_rating_changes), on="user_id", how="semi")
    yield check_result(ASSET, "one_step_per_rating", rules.steps_match_ratings(day_episodes, touched))
    yield check_result(ASSET, "steps_in_time_order", rules.steps_in_time_order(day_episodes))
    yield check_result(ASSET, "rewards_in_0_1", rules.rewards_in_unit_interval(day_episodes))


asset_checks = [day_episodes_checks]
