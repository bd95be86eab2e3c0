"""The RL stage run through Dagster on the real upstream assets: the generated sample and ml-latest-small."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.rl import policies as po
from tv5_assets.rl import transitions as tr
from tv5_assets.rl.loaders import load_mdp_dataset
from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, materialize, release_config

RL = dg.AssetSelection.assets("policies").upstream()  # release, movies, ratings, demographics, episodes, policies
RL_CHECKS = {
    ("episodes", "one_step_per_rating"), ("episodes", "steps_in_time_order"),
    ("episodes", "next_state_is_next_steps_state"), ("episodes", "rewards_in_0_1"),
    ("episodes", "boundaries_honour_session_gap"),
    ("policies", "one_policy_per_user"), ("policies", "algorithm_shares_match_archetype_shares"),
}


def _data_version(instance: dg.DagsterInstance, asset: str) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return event.asset_materialization.tags["dagster/data_version"]


def _metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _failed(result: dg.ExecuteInProcessResult) -> dict:
    return {key: e.description for key, e in check_results(result).items() if not e.passed}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.DagsterInstance, dg.ExecuteInProcessResult]:
    """The sample graph up to `policies`, materialized once for the module."""
    lake = tmp_path_factory.mktemp("rl_lake")
    instance = dg.DagsterInstance.ephemeral()
    return lake, instance, materialize(RL, lake, release_config(**SMALL_SAMPLE), instance=instance)


def test_sample_materializes_with_green_checks(sample) -> None:
    lake, instance, result = sample
    assert result.success and _failed(result) == {}
    assert RL_CHECKS <= set(check_results(result))
    episodes = pl.read_parquet(lake / "episodes.parquet")
    ratings = pl.read_parquet(lake / "ratings.parquet")
    assert episodes.schema == tr.SCHEMA and episodes.height == ratings.height == SMALL_SAMPLE["sample_ratings"]
    meta = _metadata(instance, "episodes")
    assert meta["steps"] == episodes.height and meta["episodes"] == episodes["episode_id"].n_unique()
    assert meta["session_gap_days"] == 30.0 and meta["input_already_in_step_order"] is True
    assert _data_version(instance, "episodes") == meta["content_hash"] == tr.summarise(episodes)["fingerprint"]
    policies = pl.read_parquet(lake / "policies.parquet")
    demographics = pl.read_parquet(lake / "demographics.parquet")
    assert policies.schema == po.SCHEMA and policies.height == demographics.height == SMALL_SAMPLE["sample_users"]
    assert policies["steps"].sum() == episodes.height


def test_loader_builds_a_d3rlpy_dataset_from_the_asset(sample) -> None:
    lake = sample[0]
    episodes = pl.scan_parquet(lake / "episodes.parquet")
    steps = pl.read_parquet(lake / "episodes.parquet", columns=["episode_id", "state", "action"])
    dataset = load_mdp_dataset(episodes)
    lengths = steps.group_by("episode_id").len().filter(pl.col("len") > 1)  # one-step episodes have no transition
    assert len(dataset.episodes) == lengths.height
    assert dataset.transition_count == steps.height - steps["episode_id"].n_unique()
    assert dataset.dataset_info.action_size == steps["action"].max() + 1
    assert len({id(e.observations.base) for e in dataset.episodes}) == 1  # views of one array
    first = dataset.episodes[0]
    assert np.array_equal(first.observations, np.array(steps["state"].to_list()[: len(first.observations)]))


def test_replay_buffers_are_views_covering_every_step(sample) -> None:
    lake = sample[0]
    episodes = pl.scan_parquet(lake / "episodes.parquet")
    policies = pl.read_parquet(lake / "policies.parquet")
    sizes = {algo: po.replay_buffer(episodes, policies, algo).select(pl.len()).collect().item()
             for algo in po.ALGORITHMS}
    assert sum(sizes.values()) == episodes.select(pl.len()).collect().item()
    expected = policies.group_by("algorithm").agg(pl.col("steps").sum())
    assert {a: s for a, s in sizes.items() if s} == dict(expected.iter_rows())
    dqn = load_mdp_dataset(po.replay_buffer(episodes, policies, po.DQN))  # the loader takes a view as well
    assert dqn.transition_count <= sizes[po.DQN]


def test_unchanged_episodes_keep_their_data_version_and_a_new_gap_changes_it(sample) -> None:
    lake, instance, _ = sample
    before, default_episodes = _data_version(instance, "episodes"), _metadata(instance, "episodes")["episodes"]
    again = materialize("episodes", lake, instance=instance)
    assert again.success and _data_version(instance, "episodes") == before
    weekly = materialize("episodes", lake, {"ops": {"episodes": {"config": {"session_gap_days": 7}}}},
                         instance=instance)
    assert weekly.success and _failed(weekly) == {}  # the boundary check follows the recorded gap
    assert _data_version(instance, "episodes") != before
    assert _metadata(instance, "episodes")["episodes"] > default_episodes  # more, shorter episodes
    assert materialize("episodes", lake, instance=instance).success  # back to the default for later tests
    assert _data_version(instance, "episodes") == before


def _checks_on_copy(sample, tmp_path: Path, corrupt: dict[str, pl.DataFrame]) -> dg.ExecuteInProcessResult:
    """Run the RL checks over a copy of the sample lake in which `corrupt` replaces some assets."""
    lake, instance, _ = sample
    copy = tmp_path / "corrupt"
    shutil.copytree(lake, copy)
    for name, frame in corrupt.items():
        frame.write_parquet(copy / f"{name}.parquet")
    return materialize(dg.AssetSelection.checks_for_assets("episodes", "policies"), copy, instance=instance,
                       raise_on_error=False)


def test_episode_checks_fail_on_corrupted_stored_episodes(sample, tmp_path: Path) -> None:
    episodes = pl.read_parquet(sample[0] / "episodes.parquet")
    broken = episodes.slice(1).with_columns(  # a lost step, rewards out of range, broken chains
        pl.when(pl.col("step") == 2).then(pl.lit(1.5, pl.Float32)).otherwise("reward").alias("reward"),
        pl.when(pl.col("step") == 3).then(pl.lit([0] * 5, tr.STATE)).otherwise("next_state").alias("next_state"))
    result = _checks_on_copy(sample, tmp_path, {"episodes": broken})
    failed = _failed(result)
    assert set(failed) == {
        ("episodes", "one_step_per_rating"), ("episodes", "next_state_is_next_steps_state"),
        ("episodes", "rewards_in_0_1"), ("episodes", "boundaries_honour_session_gap"),
    }
    assert f"episodes has {broken.height} step(s)" in failed[("episodes", "one_step_per_rating")]
    assert "'wrong_step_numbers'" in failed[("episodes", "boundaries_honour_session_gap")]  # the lost first step
    assert check_results(result)[("episodes", "rewards_in_0_1")].severity == dg.AssetCheckSeverity.ERROR
    # the checks block: what reads episodes (the policies checks here) does not run on broken data
    assert not {key for key in check_results(result) if key[0] == "policies"}


def test_policy_checks_fail_on_corrupted_stored_policies(sample, tmp_path: Path) -> None:
    policies = pl.read_parquet(sample[0] / "policies.parquet")
    broken = pl.concat([policies, policies.head(1)]).with_columns(pl.lit(po.PPO).alias("algorithm"))
    failed = _failed(_checks_on_copy(sample, tmp_path, {"policies": broken}))
    assert set(failed) == {("policies", "one_policy_per_user"), ("policies", "algorithm_shares_match_archetype_shares")}
    assert f"1 user(s) with several policies (e.g. [{policies['user_id'][0]}])" in failed[
        ("policies", "one_policy_per_user")]
    assert "'algorithm': 'PPO', 'expected_pct': " in failed[("policies", "algorithm_shares_match_archetype_shares")]


def test_real_ml_latest_small(lake_dir: Path, ml_latest_small: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(RL, lake_dir, release_config(source=str(ml_latest_small)), instance=instance)
    assert result.success and _failed(result) == {}
    assert RL_CHECKS <= set(check_results(result))
    meta = _metadata(instance, "episodes")
    assert meta["steps"] == 100_836 and meta["users"] == 610
    policies = pl.read_parquet(lake_dir / "policies.parquet")
    assert policies.height == 610 and set(policies["algorithm"]) == set(po.ALGORITHMS)
    episodes = pl.scan_parquet(lake_dir / "episodes.parquet")
    user_1 = episodes.filter(pl.col("user_id") == 1).collect()
    assert user_1.height == 232 and user_1["timestamp"].is_sorted()
    dataset = load_mdp_dataset(episodes)
    assert dataset.transition_count == 100_836 - meta["episodes"]
