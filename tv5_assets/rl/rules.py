"""Validation rules of the RL stage, as plain functions over (lazy) frames.

`episodes` has a step per rating (25M at ml-25m), so each rule is one lazy query collecting a few
counts and at most a handful of example rows: the table is streamed, never held whole.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from tv5_assets.core.checking import RuleResult
from tv5_assets.rl.policies import ALGORITHM_BY_ARCHETYPE
from tv5_assets.rl.transitions import HISTORY

Frame = pl.LazyFrame | pl.DataFrame
_EXAMPLES = 3


def _examples(frame: Frame, condition: pl.Expr, columns: list[str]) -> list[dict[str, str]]:
    rows = frame.lazy().filter(condition).select(columns).head(_EXAMPLES).collect()
    return [{k: str(v) for k, v in row.items()} for row in rows.to_dicts()]


def _days(gap: timedelta) -> str:
    return f"{gap / timedelta(days=1):g} days"


def _same_user_as_previous() -> pl.Expr:
    return pl.col("user_id").shift(1) == pl.col("user_id")


def steps_match_ratings(episodes: Frame, ratings: Frame) -> RuleResult:
    """One step per rating: equal row counts and equal users."""
    steps, step_users = episodes.lazy().select(pl.len().alias("n"), pl.col("user_id").n_unique().alias("users")).collect().row(0)
    rows, rating_users = ratings.lazy().select(pl.len().alias("n"), pl.col("user_id").n_unique().alias("users")).collect().row(0)
    meta = {"steps": steps, "ratings": rows, "step_users": step_users, "rating_users": rating_users}
    if steps != rows or step_users != rating_users:
        return RuleResult(False, f"episodes has {steps} step(s) for {step_users} user(s) but ratings has {rows} "
                                 f"row(s) for {rating_users} user(s): every rating must be exactly one step", meta)
    return RuleResult(True, f"{steps} steps for {rows} ratings ({steps} = {rows}), {step_users} users", meta)


def steps_in_time_order(episodes: Frame) -> RuleResult:
    """Users' steps are contiguous and ordered by (timestamp, action): time, ties by movie id."""
    same = _same_user_as_previous()
    ts, action = pl.col("timestamp"), pl.col("action")
    later = (ts > ts.shift(1)) | ((ts == ts.shift(1)) & (action > action.shift(1)))
    out_of_order = same & ~later
    user_back = pl.col("user_id") < pl.col("user_id").shift(1)
    bad = out_of_order | user_back
    counts = episodes.lazy().select(out_of_order.sum().alias("o"), user_back.sum().alias("u")).collect().row(0)
    meta = {"steps_out_of_time_order": counts[0], "users_not_contiguous": counts[1]}
    if counts[0] or counts[1]:
        examples = _examples(episodes.lazy().with_columns(bad.alias("_bad")), pl.col("_bad"),
                             ["user_id", "episode_id", "step", "timestamp", "action"])
        return RuleResult(False, f"{counts[0]} step(s) earlier than (or tied with a larger movie id than) the user's "
                                 f"previous step and {counts[1]} user id(s) going backwards; first offending "
                                 f"steps: {examples}", meta)
    return RuleResult(True, "every user's steps are contiguous and ordered by timestamp, then movie id", meta)


def next_state_chains(episodes: Frame) -> RuleResult:
    """next_state = state with the action appended (oldest dropped), and = the state of the next step."""
    state, nxt = pl.col("state"), pl.col("next_state")
    same_episode = pl.col("episode_id") == pl.col("episode_id").shift(-1)
    broken_chain = same_episode & (nxt != state.shift(-1))
    shifted = pl.concat_arr([*[state.arr.get(i) for i in range(1, HISTORY)], pl.col("action")])
    not_after_action = nxt != shifted
    counts = episodes.lazy().select(broken_chain.sum().alias("chain"), not_after_action.sum().alias("shift")).collect().row(0)
    meta = {"broken_chains": counts[0], "next_state_not_state_plus_action": counts[1]}
    if counts[0] or counts[1]:
        columns = ["user_id", "episode_id", "step", "state", "action", "next_state"]
        examples = _examples(episodes.lazy().with_columns((broken_chain | not_after_action).alias("_bad")),
                             pl.col("_bad"), columns)
        return RuleResult(False, f"{counts[0]} step(s) whose next_state differs from the next step's state within "
                                 f"the episode, {counts[1]} whose next_state is not state + action; e.g. {examples}",
                          meta)
    return RuleResult(True, "next_state = state + action, and equals the next step's state in every episode", meta)


def rewards_in_unit_interval(episodes: Frame) -> RuleResult:
    r = pl.col("reward")
    bad = r.is_null() | r.is_nan() | (r < 0) | (r > 1)
    n, low, high = episodes.lazy().select(bad.sum().alias("bad"), r.min().alias("low"), r.max().alias("high")).collect().row(0)
    meta = {"rewards_outside_0_1": n, "min_reward": low, "max_reward": high}
    if n:
        examples = _examples(episodes, bad, ["user_id", "episode_id", "step", "reward"])
        return RuleResult(False, f"{n} reward(s) null, NaN or outside [0, 1], e.g. {examples}", meta)
    return RuleResult(True, f"rewards within [0, 1] (min {low}, max {high})", meta)


def boundaries_honour_gap(episodes: Frame, session_gap: timedelta) -> RuleResult:
    """An episode starts exactly at a user's first step or after a gap > session_gap; its last step,
    and only it, is a truncation (timeouts); no step is terminal; steps count 0, 1, ... per episode."""
    same = _same_user_as_previous()
    gap = pl.col("timestamp") - pl.col("timestamp").shift(1)
    should_start = ~same.fill_null(False) | (gap > session_gap)
    starts = pl.col("episode_id") != pl.col("episode_id").shift(1).fill_null(-1)
    ends = pl.col("episode_id") != pl.col("episode_id").shift(-1).fill_null(-1)
    row = pl.col("_row")  # a row index column streams; int_range(len()) would need the length first
    step_expected = row - pl.when(starts).then(row).forward_fill()
    wrong = {
        "wrong_episode_starts": starts != should_start,
        "episode_ids_not_increasing_by_1": starts & (pl.col("episode_id") != pl.col("episode_id").shift(1) + 1)
        & pl.col("episode_id").shift(1).is_not_null(),
        "wrong_timeouts": pl.col("timeouts") != ends,
        "terminal_steps": pl.col("terminals"),
        "wrong_step_numbers": pl.col("step") != step_expected,
    }
    indexed = episodes.lazy().with_row_index("_row")
    counts = indexed.select([e.sum().alias(k) for k, e in wrong.items()]).collect().row(0, named=True)
    meta = {**counts, "session_gap_days": session_gap / timedelta(days=1)}
    failed = {k: v for k, v in counts.items() if v}
    if failed:
        any_bad = pl.any_horizontal(*wrong.values())
        examples = _examples(indexed.with_columns(any_bad.alias("_bad"), gap.alias("gap")), pl.col("_bad"),
                             ["user_id", "episode_id", "step", "timestamp", "gap", "terminals", "timeouts"])
        return RuleResult(False, f"episode boundaries break the session-gap rule (gap > {_days(session_gap)}): {failed}; e.g. {examples}",
                          meta)
    return RuleResult(True, f"episodes start at each user's first step and after gaps > {_days(session_gap)}; only their "
                            "last steps are truncations; no terminals", meta)


def one_policy_per_user(policies: pl.DataFrame, episodes: Frame) -> RuleResult:
    step_users = episodes.lazy().select(pl.col("user_id").unique()).collect()["user_id"]
    repeated = policies.filter(pl.col("user_id").is_duplicated())["user_id"].unique().sort()
    without = step_users.filter(~step_users.is_in(policies["user_id"].implode())).sort()
    unknown = policies.filter(~pl.col("user_id").is_in(step_users.implode()))["user_id"].unique().sort()
    meta = {"policies": policies.height, "users": step_users.len(), "repeated_users": repeated.len(),
            "users_without_policy": without.len(), "policies_of_unknown_users": unknown.len()}
    if repeated.len() or without.len() or unknown.len():
        return RuleResult(False, f"{repeated.len()} user(s) with several policies (e.g. {repeated.head(5).to_list()}), "
                                 f"{without.len()} user(s) of episodes without one (e.g. {without.head(5).to_list()}), "
                                 f"{unknown.len()} polic(ies) for users absent from episodes "
                                 f"(e.g. {unknown.head(5).to_list()})", meta)
    return RuleResult(True, f"exactly one policy for each of the {step_users.len()} users", meta)


def algorithm_shares_match_archetypes(policies: pl.DataFrame, demographics: pl.DataFrame) -> RuleResult:
    """Each algorithm serves exactly the users of the archetypes mapped to it (shares computed from
    demographics over the users that have a policy)."""
    mapping = pl.DataFrame(
        {"archetype": list(ALGORITHM_BY_ARCHETYPE), "algorithm": [a for a, _ in ALGORITHM_BY_ARCHETYPE.values()]}
    )
    users = demographics.join(policies.select("user_id"), on="user_id", how="semi")
    expected = users.join(mapping, on="archetype", how="left").group_by("algorithm").len("expected")
    actual = policies.group_by("algorithm").len("actual")
    table = (
        expected.join(actual, on="algorithm", how="full", coalesce=True).fill_null(0)
        .with_columns((100 * pl.col(c) / max(policies.height, 1)).round(2).alias(f"{c}_pct")
                      for c in ("expected", "actual"))
        .sort("algorithm", nulls_last=True)
    )
    meta = {"shares": table.to_dicts()}
    off = table.filter(pl.col("expected") != pl.col("actual"))
    if off.height:
        return RuleResult(False, f"algorithm shares differ from the archetype shares they map from: "
                                 f"{off.select('algorithm', 'expected_pct', 'actual_pct').to_dicts()}", meta)
    shares = dict(zip(table["algorithm"].to_list(), table["actual_pct"].to_list()))
    return RuleResult(True, f"algorithm shares equal their archetypes' shares: {shares}", meta)
