"""Shared fixtures: where the real MovieLens data is, a throw-away data lake per test, and the real
local services (started through tv5_assets.local_services when they are not running)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TV5_SHARED_DATA", REPO.parent / "shared" / "data"))
ML_LATEST_SMALL = SHARED_DATA / "ml-latest-small"


# Test modules that took 12 s or more on 2 cores (`--durations`, session 18): marked `slow`, so `-m "not slow"` is
# the quick subset to run while working (464 tests in 222 s on 2 cores).
SLOW_MODULES = frozenset({
    "test_agentdb_assets", "test_agentdb_faults", "test_agentdb_realdata", "test_browser", "test_code_versions",
    "test_day_assets", "test_day_release", "test_definitions", "test_embeddings_assets", "test_embeddings_realdata",
    "test_encoder_int8", "test_graph_assets", "test_graph_faults", "test_graph_import", "test_graph_load",
    "test_milvus_assets", "test_milvus_checks", "test_milvus_realdata", "test_milvus_store", "test_outages",
    "test_recommendation_realdata", "test_release_gate", "test_run_collisions", "test_services", "test_source_sensor",
    "test_staleness", "test_synthetic_assets", "test_taste_assets", "test_team_runs", "test_team_stack",
    "test_unsynced_after_edits",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow modules' tests `slow`; run the team stack's tests last (a stable sort), so the stack, a session
    fixture of six servers, starts after the rest of the suite instead of running beside it."""
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("team_stack") is not None)


@pytest.fixture(scope="session")
def ml_latest_small() -> Path:
    if not (ML_LATEST_SMALL / "ratings.csv").exists():
        pytest.skip(f"real MovieLens ml-latest-small not found at {ML_LATEST_SMALL} (set TV5_SHARED_DATA)")
    return ML_LATEST_SMALL


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def milvus_server():
    """The shared local Milvus standalone server (started if needed): its settings."""
    from tv5_assets_tests.services import ensure_milvus_server

    return ensure_milvus_server()


# Defined once for the whole session (a fixture imported into two test modules would be two session
# fixtures, and the second would wait forever on the exclusive Neo4j lock the first one holds).
from tv5_assets_tests.graph_support import graph_client, neo4j_server  # noqa: E402,F401
from tv5_assets_tests.team_support import team_stack  # noqa: E402,F401  (one private team stack per session)
