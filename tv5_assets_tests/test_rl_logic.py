"""The RL stage's pure logic on hand-made frames: transitions, policies, replay views, the d3rlpy loader."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tv5_assets.rl import policies as po
from tv5_assets.rl import transitions as tr
from tv5_assets.rl.loaders import load_mdp_dataset, step_arrays
from tv5_assets.synthetic import archetypes as arc
from tv5_assets_tests.rl_frames import SESSIONS, at, demographics, ratings


def _episodes(frame: pl.DataFrame = SESSIONS, **kwargs) -> pl.DataFrame:
    return tr.episodes_frame(frame, **kwargs).collect()


def test_states_are_the_last_five_items_zero_padded_most_recent_last() -> None:
    user1 = _episodes().filter(pl.col("user_id") == 1)
    assert user1["action"].to_list() == [10, 11, 12, 13, 14, 15, 16]  # same-second tie at day 1: 11 before 12
    assert user1["state"].to_list() == [
        [0, 0, 0, 0, 0], [0, 0, 0, 0, 10], [0, 0, 0, 10, 11], [0, 0, 10, 11, 12], [0, 10, 11, 12, 13],
        [10, 11, 12, 13, 14], [11, 12, 13, 14, 15],
    ]
    assert user1["next_state"].to_list()[-1] == [12, 13, 14, 15, 16]
    # the history runs across episodes: the second episode starts from what came before, not from zeros
    assert user1.filter(pl.col("episode_id") == 1)["state"].to_list()[0] == [0, 0, 10, 11, 12]
    # and never leaks from one user to the next
    assert _episodes().filter(pl.col("user_id") == 2)["state"].to_list() == [[0] * 5, [0, 0, 0, 0, 20]]


def test_schema_and_reward_formula() -> None:
    frame = _episodes()
    assert frame.schema == tr.SCHEMA
    by_rating = dict(zip(SESSIONS.sort(tr.ORDER[:2] + ["movie_id"])["rating"].to_list(), frame["reward"].to_list()))
    assert by_rating[0.5] == 0.0 and by_rating[5.0] == 1.0
    assert by_rating[3.0] == pytest.approx((3.0 - 0.5) / 4.5)


def test_episodes_cut_where_the_gap_exceeds_the_session_gap() -> None:
    frame = _episodes()
    assert frame["episode_id"].to_list() == [0, 0, 0, 1, 1, 1, 2, 3, 3]
    assert frame["step"].to_list() == [0, 1, 2, 0, 1, 2, 0, 0, 1]
    assert frame["timeouts"].to_list() == [False, False, True, False, False, True, True, False, True]
    assert not frame["terminals"].any()  # truncations, never terminals: the users did not leave for good
    shorter = _episodes(session_gap=timedelta(hours=18))  # now one-day pauses cut too, the half-day one not
    assert shorter.filter(pl.col("user_id") == 1)["episode_id"].to_list() == [0, 1, 1, 2, 3, 3, 4]


def test_a_gap_of_exactly_the_session_gap_stays_in_the_episode() -> None:
    frame = ratings([(1, 1, 3.0, 0), (1, 2, 3.0, 30), (1, 3, 3.0, 60 + 1 / 86_400)])
    assert _episodes(frame)["episode_id"].to_list() == [0, 0, 1]
    with pytest.raises(ValueError, match="session_gap must be positive"):
        tr.episodes_frame(frame, session_gap=timedelta(0))


def test_input_order_does_not_matter_and_the_sort_is_skipped_only_when_safe() -> None:
    shuffled = SESSIONS.sample(fraction=1.0, shuffle=True, seed=3)
    in_order = SESSIONS.sort(["user_id", "timestamp", "movie_id"])
    assert not tr.in_step_order(SESSIONS)  # user 2's tie is listed with the larger movie id first
    assert not tr.in_step_order(shuffled) and tr.in_step_order(in_order)
    expected = _episodes(in_order, presorted=True)
    assert _episodes(shuffled).equals(expected)
    assert tr.summarise(tr.episodes_frame(shuffled))["fingerprint"] == tr.summarise(expected)["fingerprint"]


def test_summary_counts_and_content_fingerprint() -> None:
    summary = tr.summarise(_episodes())
    assert {k: summary[k] for k in ("steps", "episodes", "users", "truncations")} == {
        "steps": 9, "episodes": 4, "users": 2, "truncations": 4}
    changed = SESSIONS.with_columns(pl.when(pl.col("movie_id") == 14).then(2.5).otherwise("rating").alias("rating"))
    assert tr.summarise(_episodes(changed))["fingerprint"] != summary["fingerprint"]
    regapped = _episodes(session_gap=timedelta(days=50))
    assert tr.summarise(regapped)["fingerprint"] != summary["fingerprint"]
    assert tr.summarise(_episodes())["fingerprint"] == summary["fingerprint"]


def test_every_archetype_has_an_algorithm_and_every_algorithm_serves_someone() -> None:
    assert set(po.ALGORITHM_BY_ARCHETYPE) == set(arc.ARCHETYPES)
    assert {algo for algo, _ in po.ALGORITHM_BY_ARCHETYPE.values()} == set(po.ALGORITHMS) == set(po.HYPERPARAMETERS)
    assert [f.name for f in dataclasses.fields(po.Hyperparameters)] == list(po.HYPERPARAMETER_DTYPE.to_schema())
    described = po.describe_mapping()
    assert "Cinephile -> Decision Transformer" in described and "context_length=20" in described


def test_policies_snapshot_counts_and_settings() -> None:
    frame = po.build_policies(_episodes().lazy(), demographics({1: arc.CASUAL, 2: arc.CINEPHILE}))
    assert frame.schema == po.SCHEMA and frame["user_id"].to_list() == [1, 2]
    casual, cinephile = frame.to_dicts()
    assert casual["algorithm"] == po.Q_LEARNING and cinephile["algorithm"] == po.DECISION_TRANSFORMER
    assert casual["last_items"] == [12, 13, 14, 15, 16] and casual["last_timestamp"] == at(100)
    assert (casual["episodes"], casual["steps"]) == (3, 7)
    assert casual["mean_reward"] == pytest.approx(np.mean([0, 1, 2.5 / 4.5, 3.5 / 4.5, 1.5 / 4.5, 0.5 / 4.5, 4 / 4.5]))
    assert cinephile["last_items"] == [0, 0, 0, 20, 21] and (cinephile["episodes"], cinephile["steps"]) == (1, 2)
    assert casual["hyperparameters"] == dataclasses.asdict(po.HYPERPARAMETERS[po.Q_LEARNING])
    assert cinephile["hyperparameters"]["context_length"] == 20 and cinephile["hyperparameters"]["epsilon_start"] is None


def test_policies_refuse_users_without_archetype_or_algorithm() -> None:
    with pytest.raises(ValueError, match=r"1 user\(s\) of episodes have no archetype in demographics, e\.g\. \[2\]"):
        po.build_policies(_episodes().lazy(), demographics({1: arc.CASUAL}))
    with pytest.raises(ValueError, match=r"archetype\(s\) without an algorithm: \['Astronaut'\]"):
        po.build_policies(_episodes().lazy(), demographics({1: arc.CASUAL, 2: "Astronaut"}))


def test_replay_buffers_are_lazy_views_that_partition_the_steps(tmp_path: Path) -> None:
    path = tmp_path / "episodes.parquet"
    _episodes().write_parquet(path)
    episodes = pl.scan_parquet(path)
    policies = po.build_policies(episodes, demographics({1: arc.FAMILY, 2: arc.SENIOR}))
    sarsa = po.replay_buffer(episodes, policies, po.SARSA)
    assert isinstance(sarsa, pl.LazyFrame) and "episodes.parquet" in sarsa.explain()  # a query over the file
    assert sarsa.collect().equals(pl.read_parquet(path))  # both users are SARSA's: every step, in order
    assert po.replay_buffer(episodes, policies, po.PPO).collect().height == 0
    with pytest.raises(ValueError, match="unknown algorithm 'A3C'"):
        po.replay_buffer(episodes, policies, "A3C")


def test_step_arrays_decode_in_order_into_one_block_per_field() -> None:
    frame = _episodes()
    arrays = step_arrays(frame.lazy())
    assert arrays.observations.shape == (9, 5) and arrays.observations.dtype == np.int32
    assert arrays.observations.flags["C_CONTIGUOUS"]
    assert arrays.observations.tolist() == frame["state"].to_list()
    assert arrays.actions.tolist() == frame["action"].to_list()
    assert arrays.timeouts.tolist() == frame["timeouts"].cast(pl.Float32).to_list()
    assert not arrays.terminals.any()


def test_d3rlpy_dataset_slices_episodes_as_views_of_one_copy() -> None:
    dataset = load_mdp_dataset(_episodes().lazy())
    # d3rlpy stores no observation after a truncation, so each episode's last step gives no transition
    # and the one-step episode (user 1's third) has none: it is left out of the buffer
    assert [len(e.observations) for e in dataset.episodes] == [3, 3, 2]
    assert dataset.transition_count == 9 - 4
    assert dataset.dataset_info.action_size == 22  # movie ids index the actions: max id + 1
    bases = {id(e.observations.base) for e in dataset.episodes}
    assert len(bases) == 1  # every episode is a view into the same (N, 5) array: no per-episode copies
    first = dataset.episodes[0]
    assert first.observations.tolist() == [[0] * 5, [0, 0, 0, 0, 10], [0, 0, 0, 10, 11]]
    assert first.rewards.ravel().tolist() == pytest.approx([0.0, 1.0, 2.5 / 4.5]) and not first.terminated
    with pytest.raises(ValueError, match="episodes is empty"):
        load_mdp_dataset(_episodes().lazy().head(0))
