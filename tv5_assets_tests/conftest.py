"""Shared fixtures: where the real MovieLens data is, a throw-away data lake per test, and the real
local services (started through tv5_assets.local_services when they are not running)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TV5_SHARED_DATA", REPO.parent / "shared" / "data"))
ML_LATEST_SMALL = SHARED_DATA / "ml-latest-small"


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
