"""Full rebuilds of the project's own local Neo4j with the offline import tool (the real server and tool).

Each import stops and restarts the shared local server of `scripts/services` (held exclusively by the
`neo4j_server` fixture), as the `graph` asset does on the main job's defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from tv5_assets.core.settings import Settings
from tv5_assets.graph_store import cypher, model, offline_import
from tv5_assets.graph_store.loader import import_graph, live_counts, load_graph, read_load_state
from tv5_assets.graph_store.offline_import import ImportToolError
from tv5_assets.graph_store.resources import Neo4jClient, project_local_server
from tv5_assets.graph_store.rows import graph_rows
from tv5_assets_tests.graph_support import sources
from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, local_neo4j, materialize, release_config

pytestmark = pytest.mark.neo4j


@pytest.fixture
def local(neo4j_server) -> offline_import.LocalServer:
    settings = project_local_server(Settings(neo4j_uri=neo4j_server.uri))
    assert settings, "the tests' Neo4j is the project's local server, so the import path must apply"
    return local_neo4j(**settings).local_server()


def _rows(seed: int, users: int = 30):
    return graph_rows(**sources(users=users, seed=seed))


def test_the_graph_asset_imports_into_the_local_server_with_green_checks(neo4j_server, tmp_path: Path) -> None:
    selection = dg.AssetSelection.assets("graph").upstream()
    config = {"ops": {**release_config(**SMALL_SAMPLE)["ops"], "graph": {"config": {"force_reload": True,
                                                                                  "method": "import"}}}}
    resources = {"neo4j": local_neo4j(**project_local_server(Settings(neo4j_uri=neo4j_server.uri)))}
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(selection | dg.AssetSelection.checks_for_assets("graph"), tmp_path, config,
                         instance=instance, **resources)
    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("graph")]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["method"].startswith("import tool")
    assert metadata["skipped_unchanged"] is False
    checks = {name: e for (asset, name), e in check_results(result).items() if asset == "graph"}
    assert checks and all(e.passed for e in checks.values()), {n: e.metadata for n, e in checks.items()}

    with Neo4jClient(neo4j_server.uri, neo4j_server.user, neo4j_server.password) as client:
        state = read_load_state(client)
        counts = live_counts(client)
        schema = client.read(cypher.SHOW_SCHEMA)
    assert state is not None and state.complete and state.version == metadata["version"]
    assert counts == json.loads(json.dumps(metadata["node_counts"])) | metadata["relationship_counts"]
    assert sum(r["unique"] for r in schema) == len(model.ALL_CONSTRAINTS)

    # same data again: the complete load is kept (no import, no restart)
    again = materialize(dg.AssetSelection.assets("graph"), tmp_path, {"ops": {"graph": {"config": {"method": "import"}}}},
                        instance=instance, **resources)
    [event] = [e for e in again.get_asset_materialization_events() if e.asset_key == dg.AssetKey("graph")]
    assert event.materialization.metadata["skipped_unchanged"].value is True


def test_import_gives_the_same_graph_as_the_online_load(graph_client: Neo4jClient, local, tmp_path: Path) -> None:
    rows = _rows(seed=3)
    load_graph(graph_client, rows, "online-v", batch_rows=50)
    online = live_counts(graph_client)
    online_ratings = graph_client.read("MATCH (u:User)-[r:RATED]->(m:Media) RETURN u.id AS u, m.id AS m, "
                                       "r.rating AS rating, r.timestamp AS t, r.time_of_day AS band ORDER BY u, m")
    report = import_graph(graph_client, local, rows, "import-v", tmp_path / "work")
    assert not report.skipped and report.counts == online == rows.counts()
    imported = graph_client.read("MATCH (u:User)-[r:RATED]->(m:Media) RETURN u.id AS u, m.id AS m, "
                                 "r.rating AS rating, r.timestamp AS t, r.time_of_day AS band ORDER BY u, m")
    assert imported == online_ratings
    state = read_load_state(graph_client)
    assert state.complete and state.version == "import-v" and state.counts == rows.counts()
    assert not (tmp_path / "work").exists(), "the staging home and CSV files are removed after a good import"


def test_a_failing_import_tool_leaves_the_served_graph_untouched(graph_client: Neo4jClient, local,
                                                                 tmp_path: Path) -> None:
    good = _rows(seed=4)
    import_graph(graph_client, local, good, "good-v", tmp_path / "work")
    broken = offline_import.LocalServer(local.home, "/nonexistent/*", local.control, local.database)
    with pytest.raises(ImportToolError, match="live graph is unchanged"):
        import_graph(graph_client, broken, _rows(seed=5, users=20), "new-v", tmp_path / "work", force=True)
    state = read_load_state(graph_client)
    assert state.complete and state.version == "good-v"
    assert live_counts(graph_client) == good.counts()


def test_a_swapped_store_that_does_not_verify_is_replaced_by_the_previous_one(graph_client: Neo4jClient, local,
                                                                              tmp_path: Path) -> None:
    good = _rows(seed=6)
    import_graph(graph_client, local, good, "good-v", tmp_path / "work")
    staging = offline_import.build_staged_store(local, _rows(seed=7, users=12), tmp_path / "work2", print)
    offline_import.swap_in(local, staging, print)
    graph_client.verify()
    assert live_counts(graph_client)[model.USER.label] == 12, "the new store is served after the swap"
    assert offline_import.restore_previous(local, print)
    graph_client.verify()
    state = read_load_state(graph_client)
    assert state.complete and state.version == "good-v"
    assert live_counts(graph_client) == good.counts()
