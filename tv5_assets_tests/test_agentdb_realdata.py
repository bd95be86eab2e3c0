"""End to end on the real ml-latest-small: `agentdb` from the real policies, episodes and user vectors, every
check green, and the counts AgentDB's own code (Node API and CLI) reads back."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tv5_assets.agentdb import checks
from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets.core.storage import write_parquet_atomic
from tv5_assets_tests.agentdb_support import AGENTDB, UPSTREAM, failed_checks, staged_file
from tv5_assets_tests.harness import check_results, materialize, release_config

pytestmark = [pytest.mark.realdata, pytest.mark.extended]

# the embeddings stage's cache, shared with the other real-data tests: only the first run encodes 9,742 titles
ENCODINGS = Path(__file__).resolve().parents[1] / "data" / "test-cache" / "embeddings"


def test_ml_latest_small_agentdb_passes_every_check(ml_latest_small: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    if ENCODINGS.is_dir():
        shutil.copytree(ENCODINGS, lake / "cache" / "embeddings")
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(UPSTREAM | AGENTDB, lake, release_config(source=str(ml_latest_small)), instance=instance)
    ENCODINGS.mkdir(parents=True, exist_ok=True)
    for cache in (lake / "cache" / "embeddings").glob("*.parquet"):
        write_parquet_atomic(pl.read_parquet(cache), ENCODINGS / cache.name)
    assert result.success and failed_checks(result) == {}
    evaluations = {name: e for (asset, name), e in check_results(result).items() if asset == "agentdb"}
    assert set(evaluations) == {checks.ONE_SESSION, checks.STEPS, checks.VECTORS, checks.SEARCH, checks.SIZE}

    node = NodeRuntime.locate()
    staged = staged_file(lake, instance)
    stats, cli = node.stats(staged), node.cli_stats(staged)
    print(f"\nAgentDB stats on ml-latest-small: {stats}\nAgentDB CLI stats: {cli}\n"
          f"search: {evaluations[checks.SEARCH].description} {evaluations[checks.SEARCH].metadata['top_hits'].value}")
    ratings = pl.read_parquet(lake / "ratings.parquet")
    per_user = ratings.group_by("user_id").len()
    assert stats["sessions"] == stats["session_users"] == per_user.height == 610
    assert stats["experiences"] == per_user.select(pl.col("len").clip(upper_bound=10).sum()).item() == 6100
    assert stats["episodes"] == stats["embeddings"] == cli["episodes"] == cli["embeddings"] == 610
    assert stats["embedding_dims"] == {"384": 610} and stats["integrity"] == "ok"
    assert sum(stats["sessions_by_type"].values()) == 610 and len(stats["sessions_by_type"]) == 6
    built = {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}
    assert built["agentdb"].metadata["file_bytes"].value == staged.stat().st_size
