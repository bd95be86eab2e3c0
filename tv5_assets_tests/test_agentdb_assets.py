"""`agentdb` through Dagster on the generated sample, read back by the real AgentDB 1.6.1 (no mocks): counts
from AgentDB's own code, LearningSystem reading a session, idempotent re-runs, the window setting."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tv5_assets.agentdb import checks
from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets_tests.agentdb_support import AGENTDB, UPSTREAM, agentdb_config, failed_checks, staged_file
from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, materialize, release_config

CHECKS = {checks.ONE_SESSION, checks.STEPS, checks.VECTORS, checks.SEARCH, checks.SIZE}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.DagsterInstance, dg.ExecuteInProcessResult]:
    """The sample graph up to `agentdb` (release, synthetic, embeddings, rl), materialized once."""
    lake = tmp_path_factory.mktemp("agentdb_lake")
    instance = dg.DagsterInstance.ephemeral()
    return lake, instance, materialize(UPSTREAM | AGENTDB, lake, release_config(**SMALL_SAMPLE), instance=instance)


def _metadata(instance: dg.DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey("agentdb"))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _data_version(instance: dg.DagsterInstance) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey("agentdb"))
    return event.asset_materialization.tags["dagster/data_version"]


def _expected_steps(lake: Path, per_user: int) -> int:
    counts = pl.read_parquet(lake / "episodes.parquet").group_by("user_id").len()
    return int(counts.select(pl.col("len").clip(upper_bound=per_user).sum()).item())


def test_sample_agentdb_passes_every_check_with_agentdbs_own_counts(sample) -> None:
    lake, instance, result = sample
    assert result.success and failed_checks(result) == {}
    evaluations = {name: e for (asset, name), e in check_results(result).items() if asset == "agentdb"}
    assert set(evaluations) == CHECKS and all(e.severity == dg.AssetCheckSeverity.ERROR for e in evaluations.values())
    policies = pl.read_parquet(lake / "policies.parquet")
    vectors = pl.read_parquet(lake / "user_vectors.parquet")
    staged = staged_file(lake, instance)  # staged, audited; readers' data/agentdb.db moves only with `release`
    assert staged.parent.name == "agentdb.versions" and not (lake / "agentdb.db").exists()
    stats = NodeRuntime.locate().stats(staged)  # AgentDB's own reading, through the project's script
    cli = NodeRuntime.locate().cli_stats(staged)  # and AgentDB's CLI
    print(f"\nAgentDB stats on the sample: {stats}\nAgentDB CLI stats: {cli}")
    assert stats["sessions"] == stats["session_users"] == policies.height == SMALL_SAMPLE["sample_users"]
    assert stats["sessions_by_type"] == dict(policies["algorithm"].value_counts().iter_rows())
    assert stats["experiences"] == _expected_steps(lake, 10) == _metadata(instance)["experiences"]
    assert stats["episodes"] == stats["embeddings"] == cli["episodes"] == cli["embeddings"] == vectors.height
    assert stats["embedding_dims"] == {"384": vectors.height} and stats["integrity"] == "ok"
    assert evaluations[checks.ONE_SESSION].metadata["sessions"].value == policies.height
    assert evaluations[checks.SEARCH].metadata["users"].value  # three real users were searched
    assert evaluations[checks.SIZE].metadata["bytes"].value == staged.stat().st_size


def test_learning_system_reads_a_users_session(sample) -> None:
    lake, instance, _ = sample
    policy = pl.read_parquet(lake / "policies.parquet").row(3, named=True)
    session = NodeRuntime.locate().stats(staged_file(lake, instance), session=f"user-{policy['user_id']}")["session"]
    assert session["userId"] == str(policy["user_id"]) and session["sessionType"] == policy["algorithm"]
    assert session["status"] == "active"
    assert session["config"]["learningRate"] == policy["hyperparameters"]["learning_rate"]
    assert session["metadata"]["archetype"] == policy["archetype"]
    assert session["metadata"]["last_items"] == list(policy["last_items"])
    assert session["metadata"]["steps"] == policy["steps"]
    assert session["metadata"]["steps_in_agentdb"] == min(policy["steps"], 10)


def test_rerun_is_idempotent(sample) -> None:
    lake, instance, _ = sample
    path = staged_file(lake, instance)
    before, digest = _data_version(instance), hashlib.sha256(path.read_bytes()).hexdigest()
    path.unlink()  # a fresh write of the same rows
    again = materialize("agentdb", lake, instance=instance)
    assert again.success and failed_checks(again) == {}
    assert _data_version(instance) == before and staged_file(lake, instance) == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # byte for byte the same database
    inode = path.stat().st_ino
    kept = materialize("agentdb", lake, instance=instance)  # the staged file holds these rows: staged again as is
    assert kept.success and _metadata(instance)["reused"] is True and path.stat().st_ino == inode
    assert [p.name for p in (lake / "agentdb.versions").iterdir()] == [path.name]  # no temporary left behind


def test_window_setting_changes_the_steps_and_the_checks_follow(sample) -> None:
    lake, instance, _ = sample
    before = _data_version(instance)
    short = materialize("agentdb", lake, agentdb_config(recent_steps_per_user=3), instance=instance)
    assert short.success and failed_checks(short) == {}  # the checks read the recorded window
    assert _data_version(instance) != before
    assert NodeRuntime.locate().stats(staged_file(lake, instance))["experiences"] == _expected_steps(lake, 3)
    back = materialize("agentdb", lake, instance=instance)
    assert back.success and _data_version(instance) == before
