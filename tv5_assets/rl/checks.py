"""Asset checks of the RL stage: thin wrappers around `rules`.

One multi-check per asset, so inputs are opened once; `episodes` is scanned (LazyFrame), never held
whole. Every check blocks: a lost step, a broken chain or a wrong boundary would silently corrupt
what the agents learn.
"""


from datetime import timedelta

import dagster as dg
import polars as pl

from tv5_assets.core.checking import RuleResult, check_result, latest_metadata
from tv5_assets.rl import rules
from tv5_assets.rl.assets import DEFAULT_GAP_DAYS, SESSION_GAP_DAYS

# check names
ONE_STEP_PER_RATING = "one_step_per_rating"
TIME_ORDER = "steps_in_time_order"
NEXT_STATE = "next_state_is_next_steps_state"
REWARD_RANGE = "rewards_in_0_1"
BOUNDARIES = "boundaries_honour_session_gap"
ONE_POLICY = "one_policy_per_user"
ALGORITHM_SHARES = "algorithm_shares_match_archetype_shares"


def _spec(asset: str, name: str, description: str, reads: tuple[str, ...] = ()) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=asset, description=description, blocking=True, additional_deps=reads)


def recorded_gap(context: dg.AssetCheckExecutionContext) -> tuple[timedelta, str]:
    """The session gap the last materialization of `episodes` used (the config default when none recorded one)."""
    metadata = latest_metadata(context, "episodes") or {}
    if SESSION_GAP_DAYS in metadata:
        return timedelta(days=metadata[SESSION_GAP_DAYS]), "recorded by the last materialization"
    return timedelta(days=DEFAULT_GAP_DAYS), "the default (no materialization recorded one)"


@dg.multi_asset_check(
    specs=[
        _spec("episodes", ONE_STEP_PER_RATING, "steps = ratings rows, over the same users", reads=("ratings",)),
        _spec("episodes", TIME_ORDER, "each user's steps are contiguous and ordered by timestamp, then movie_id"),
        _spec("episodes", NEXT_STATE,
              "next_state = state + action (oldest dropped) and equals the next step's state within an episode"),
        _spec("episodes", REWARD_RANGE, "rewards are in [0, 1], never null or NaN"),
        _spec("episodes", BOUNDARIES, "episodes start at a user's first step or after a gap > session_gap_days; "
                                      "only their last steps are truncations; no terminals; steps count 0, 1, ..."),
    ],
    ins={"episodes": dg.AssetIn("episodes"), "ratings": dg.AssetIn("ratings")},
)
def episodes_checks(context: dg.AssetCheckExecutionContext, episodes: pl.LazyFrame, ratings: pl.LazyFrame):
    gap, source = recorded_gap(context)
    boundaries = rules.boundaries_honour_gap(episodes, gap)
    boundaries = RuleResult(boundaries.passed, boundaries.description,
                            {**boundaries.metadata, "session_gap_source": source})
    yield check_result("episodes", ONE_STEP_PER_RATING, rules.steps_match_ratings(episodes, ratings))
    yield check_result("episodes", TIME_ORDER, rules.steps_in_time_order(episodes))
    yield check_result("episodes", NEXT_STATE, rules.next_state_chains(episodes))
    yield check_result("episodes", REWARD_RANGE, rules.rewards_in_unit_interval(episodes))
    yield check_result("episodes", BOUNDARIES, boundaries)


@dg.multi_asset_check(
    specs=[
        _spec("policies", ONE_POLICY, "exactly one policy per user of episodes, none for anyone else",
              reads=("episodes",)),
        _spec("policies", ALGORITHM_SHARES, "each algorithm's share of users equals the share of the archetypes "
                                            "mapped to it in demographics", reads=("demographics",)),
    ],
    ins={"policies": dg.AssetIn("policies"), "episodes": dg.AssetIn("episodes"),
         "demographics": dg.AssetIn("demographics")},
)
def policies_checks(policies: pl.DataFrame, episodes: pl.LazyFrame, demographics: pl.LazyFrame):
    archetypes = demographics.select("user_id", "archetype").collect()
    yield check_result("policies", ONE_POLICY, rules.one_policy_per_user(policies, episodes))
    yield check_result("policies", ALGORITHM_SHARES, rules.algorithm_shares_match_archetypes(policies, archetypes))


asset_checks = [episodes_checks, policies_checks]
