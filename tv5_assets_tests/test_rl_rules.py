"""Every RL rule both ways: it passes on good hand-made data and fails, saying why, on broken data."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from tv5_assets.rl import policies as po
from tv5_assets.rl import rules
from tv5_assets.rl import transitions as tr
from tv5_assets.synthetic import archetypes as arc
from tv5_assets_tests.rl_frames import SESSIONS, demographics

GAP = tr.DEFAULT_SESSION_GAP
ARCHETYPES = demographics({1: arc.CASUAL, 2: arc.CINEPHILE})


@pytest.fixture
def episodes() -> pl.DataFrame:
    return tr.episodes_frame(SESSIONS, GAP).collect()


@pytest.fixture
def policies(episodes: pl.DataFrame) -> pl.DataFrame:
    return po.build_policies(episodes.lazy(), ARCHETYPES)


def _set(frame: pl.DataFrame, row: int, column: str, value: object) -> pl.DataFrame:
    """`frame` with one cell replaced."""
    new = frame[column].scatter(row, value) if not isinstance(value, list) else pl.Series(
        column, [value if i == row else v for i, v in enumerate(frame[column].to_list())], dtype=frame[column].dtype)
    return frame.with_columns(new.alias(column))


def test_good_data_passes_every_rule(episodes: pl.DataFrame, policies: pl.DataFrame) -> None:
    outcomes = {
        "steps": rules.steps_match_ratings(episodes, SESSIONS),
        "order": rules.steps_in_time_order(episodes),
        "chain": rules.next_state_chains(episodes),
        "reward": rules.rewards_in_unit_interval(episodes),
        "gap": rules.boundaries_honour_gap(episodes, GAP),
        "policy": rules.one_policy_per_user(policies, episodes),
        "shares": rules.algorithm_shares_match_archetypes(policies, ARCHETYPES),
    }
    assert {name: o.description for name, o in outcomes.items() if not o.passed} == {}
    assert outcomes["steps"].metadata == {"steps": 9, "ratings": 9, "step_users": 2, "rating_users": 2}
    assert outcomes["gap"].metadata["wrong_episode_starts"] == 0


def test_a_lost_or_extra_step_fails(episodes: pl.DataFrame) -> None:
    lost = rules.steps_match_ratings(episodes.head(8), SESSIONS)
    assert not lost.passed
    assert "episodes has 8 step(s) for 2 user(s) but ratings has 9 row(s) for 2 user(s)" in lost.description
    extra = rules.steps_match_ratings(episodes.lazy(), SESSIONS.head(7).lazy())
    assert not extra.passed and extra.metadata["rating_users"] == 1


def test_steps_out_of_time_order_fail(episodes: pl.DataFrame) -> None:
    swapped = pl.concat([episodes[[1]], episodes[[0]], episodes[2:]])  # user 1's first two steps swapped
    result = rules.steps_in_time_order(swapped)
    assert not result.passed and result.metadata["steps_out_of_time_order"] == 1
    assert "1 step(s) earlier than (or tied with a larger movie id than) the user's previous step" in result.description
    assert "'action': '10'" in result.description  # the offending step is shown
    tie_reversed = pl.concat([episodes[:7], episodes[[8]], episodes[[7]]])  # user 2's same-second tie: 21 before 20
    assert rules.steps_in_time_order(tie_reversed).metadata["steps_out_of_time_order"] == 1
    interleaved = pl.concat([episodes[:3], episodes[7:], episodes[3:7]])  # user 1 resumes after user 2
    result = rules.steps_in_time_order(interleaved)
    assert not result.passed and result.metadata["users_not_contiguous"] == 1


def test_a_broken_state_chain_fails(episodes: pl.DataFrame) -> None:
    broken = _set(episodes, 3, "next_state", [99, 99, 99, 99, 99])
    result = rules.next_state_chains(broken)
    assert not result.passed
    assert result.metadata == {"broken_chains": 1, "next_state_not_state_plus_action": 1}
    assert "1 step(s) whose next_state differs from the next step's state" in result.description
    # a state that no longer follows from the previous step breaks the chain of the step before it
    result = rules.next_state_chains(_set(episodes, 4, "state", [1, 2, 3, 4, 5]))
    assert not result.passed and result.metadata["broken_chains"] == 1


def test_rewards_outside_the_unit_interval_fail(episodes: pl.DataFrame) -> None:
    bad = _set(_set(episodes, 0, "reward", 1.5), 1, "reward", float("nan"))
    result = rules.rewards_in_unit_interval(bad)
    assert not result.passed and result.metadata["rewards_outside_0_1"] == 2
    assert "2 reward(s) null, NaN or outside [0, 1]" in result.description and "1.5" in result.description


@pytest.mark.parametrize(("column", "row", "value", "counter"), [
    ("timeouts", 1, True, "wrong_timeouts"),  # a truncation in the middle of an episode
    ("timeouts", 2, False, "wrong_timeouts"),  # an episode's last step not truncated
    ("terminals", 2, True, "terminal_steps"),  # users never leave for good in a log
    ("step", 4, 7, "wrong_step_numbers"),
    ("episode_id", 3, 0, "wrong_episode_starts"),  # the 39-day pause not cut
])
def test_broken_boundaries_fail(episodes: pl.DataFrame, column: str, row: int, value: object, counter: str) -> None:
    result = rules.boundaries_honour_gap(_set(episodes, row, column, value), GAP)
    assert not result.passed and result.metadata[counter] >= 1
    assert "episode boundaries break the session-gap rule (gap > 30 days)" in result.description
    assert counter in result.description


def test_boundaries_are_judged_against_the_gap_used(episodes: pl.DataFrame) -> None:
    result = rules.boundaries_honour_gap(episodes, timedelta(days=45))  # the 39-day pause should not cut
    assert not result.passed and result.metadata["wrong_episode_starts"] == 1
    assert rules.boundaries_honour_gap(tr.episodes_frame(SESSIONS, timedelta(days=45)), timedelta(days=45)).passed


def test_missing_duplicated_or_stray_policies_fail(episodes: pl.DataFrame, policies: pl.DataFrame) -> None:
    doubled = rules.one_policy_per_user(pl.concat([policies, policies.head(1)]), episodes)
    assert not doubled.passed and "1 user(s) with several policies (e.g. [1])" in doubled.description
    missing = rules.one_policy_per_user(policies.tail(1), episodes)
    assert not missing.passed and "1 user(s) of episodes without one (e.g. [1])" in missing.description
    stray = rules.one_policy_per_user(pl.concat([policies, policies.head(1).with_columns(pl.lit(7, pl.Int32)
                                                                                      .alias("user_id"))]), episodes)
    assert not stray.passed and stray.metadata["policies_of_unknown_users"] == 1


def test_algorithm_shares_off_their_archetypes_fail(policies: pl.DataFrame) -> None:
    swapped = policies.with_columns(pl.lit(po.PPO).alias("algorithm"))
    result = rules.algorithm_shares_match_archetypes(swapped, ARCHETYPES)
    assert not result.passed
    assert "'algorithm': 'PPO', 'expected_pct': 0.0, 'actual_pct': 100.0" in result.description
    assert "'algorithm': 'Q-Learning', 'expected_pct': 50.0, 'actual_pct': 0.0" in result.description
