"""Full rebuilds of the project's own local Neo4j with the offline import tool (the real server and tool), staged
beside it: a store of its own, audited on a Neo4j process of its own, swapped in only when published.

Publishing a stage stops and restarts the shared local server of `scripts/services` (held exclusively by the
`neo4j_server` fixture): once in this module (the issue's budget: one real restart in CI).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from pathlib import Path

import dagster as dg
import pytest
import zstandard

from tv5_assets.core import shelf
from tv5_assets.core.settings import Settings
from tv5_assets.graph_store import cypher, model, offline_import, slots, stages
from tv5_assets.graph_store.loader import import_graph, live_counts, load_graph, read_load_state
from tv5_assets.graph_store.offline_import import ImportToolError
from tv5_assets.graph_store.resources import Neo4jClient, project_local_server
from tv5_assets.release.pointers import GraphSlot
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


def _staged_client(stage: stages.Stage, neo4j_server) -> Neo4jClient:
    connection = stage.serve(neo4j_server.password, print)
    return Neo4jClient(connection.uri, connection.user, connection.password)


def _transposed(archive: Path) -> set[str]:
    """The names of the archive's members that went in transposed (their record layout in a pax header)."""
    with open(archive, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream, \
            tarfile.open(fileobj=stream, mode="r|") as tar:
        return {Path(m.name).name for m in tar if shelf.RECORDS_HEADER in m.pax_headers}


def _files(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def _rated(client: Neo4jClient, slot: str | None) -> list[dict]:
    user, media = slots.label("User", slot), slots.label("Media", slot)
    return client.read(f"MATCH (u:{user})-[r:RATED]->(m:{media}) RETURN u.id AS u, m.id AS m, r.rating AS rating, "
                       "r.timestamp AS t, r.time_of_day AS band ORDER BY u, m")


@pytest.mark.extended
def test_the_graph_asset_stages_an_import_audited_on_its_own_server_and_publishing_swaps_it_in(
        neo4j_server, tmp_path: Path) -> None:
    selection = dg.AssetSelection.assets("graph").upstream()
    config = {"ops": {**release_config(**SMALL_SAMPLE)["ops"], "graph": {"config": {"force_reload": True,
                                                                                  "method": "import"}}}}
    neo4j = local_neo4j(**project_local_server(Settings(neo4j_uri=neo4j_server.uri)))
    instance = dg.DagsterInstance.ephemeral()
    with Neo4jClient(neo4j_server.uri, neo4j_server.user, neo4j_server.password) as client:
        served_before, counts_before = slots.served(client), live_counts(client)
    result = materialize(selection | dg.AssetSelection.checks_for_assets("graph"), tmp_path, config,
                         instance=instance, neo4j=neo4j)
    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("graph")]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["method"].startswith("import tool") and metadata["skipped_unchanged"] is False
    slot = metadata["staged_version"]
    checks = {name: e for (asset, name), e in check_results(result).items() if asset == "graph"}
    assert checks and all(e.passed for e in checks.values()), {n: e.metadata for n, e in checks.items()}
    assert checks["load_complete"].metadata["slot"].value == slot  # audited on the stage's own server
    stage = stages.Stage(stages.stages_root(neo4j.local_home), slot)
    expected = json.loads(json.dumps(metadata["node_counts"])) | metadata["relationship_counts"]
    assert stage.ready() == {"version": metadata["version"], "counts": expected}
    with Neo4jClient(neo4j_server.uri, neo4j_server.user, neo4j_server.password) as client:
        assert slots.served(client) == served_before and live_counts(client) == counts_before  # readers: unchanged
    with _staged_client(stage, neo4j_server) as staged:
        assert read_load_state(staged, slot).complete and live_counts(staged, slot) == expected
        schema = staged.read(cypher.SHOW_SCHEMA)
    assert sum(r["unique"] for r in schema) == len(model.ALL_CONSTRAINTS) + len(model.NODES)  # public + the slot's

    # publish: the live server restarts on the stage's store (the one real restart of this module)
    with dg.build_resources({"neo4j": neo4j}) as resources:
        started = time.perf_counter()
        GraphSlot(resources.neo4j).switch(slot, "r-import-test")
        swap_s = time.perf_counter() - started
        client = resources.neo4j.client
        release = slots.served(client)
        assert release["slot"] == slot and release["release_id"] == "r-import-test"
        assert live_counts(client) == expected and read_load_state(client).complete
        assert not stage.dir.exists()
        if served_before:  # the replaced store is kept whole as the previous release's stage, ready for a rollback
            previous = stages.Stage(stage.root, served_before["slot"])
            pointer = GraphSlot(resources.neo4j)
            assert previous.ready() is not None and pointer.exists(served_before["slot"])
            # what `release` does with it: shelved (compressed) until a rollback restores it, byte for byte, before
            # its swap (the swap itself is this test's publish above)
            files = _files(previous.home)
            assert pointer.shelve(served_before["slot"]) and not previous.built() and shelf.is_shelved(previous.home)
            assert pointer.exists(served_before["slot"]) and not pointer.shelve(served_before["slot"])
            assert _transposed(shelf.archive_of(previous.home)) == set(stages.RECORD_FILES)  # record files, by field
            shelf.restore(previous.home)
            assert previous.ready() is not None and _files(previous.home) == files
    print(f"\nimport stage {slot}: published by a swap in {swap_s:.1f} s (live server restarted)")

    # same data again: the complete load is kept (no import, no restart)
    again = materialize(dg.AssetSelection.assets("graph"), tmp_path, {"ops": {"graph": {"config": {"method": "import"}}}},
                        instance=instance, neo4j=neo4j)
    [event] = [e for e in again.get_asset_materialization_events() if e.asset_key == dg.AssetKey("graph")]
    assert event.materialization.metadata["skipped_unchanged"].value is True
    assert event.materialization.metadata["staged_version"].value == slot


def test_import_gives_the_same_graph_as_the_online_load(graph_client: Neo4jClient, local, neo4j_server,
                                                        tmp_path: Path) -> None:
    rows = _rows(seed=3)
    online = load_graph(graph_client, rows, "online-v", batch_rows=50)
    report = import_graph(graph_client, local, rows, "import-v", tmp_path / "stages", neo4j_server.password)
    stage = stages.Stage(tmp_path / "stages", report.slot)
    try:
        assert not report.skipped and report.counts == online.counts == rows.counts()
        with _staged_client(stage, neo4j_server) as staged:
            assert _rated(staged, report.slot) == _rated(graph_client, online.slot)
            state = read_load_state(staged, report.slot)
        assert state.complete and state.version == "import-v" and state.counts == rows.counts()
        assert not (stage.dir / "csv").exists(), "the CSV files are removed after a good import"
        assert stage.ready() == {"version": "import-v", "counts": rows.counts()}
        again = import_graph(graph_client, local, rows, "import-v", tmp_path / "stages", neo4j_server.password)
        assert again.skipped and again.slot == report.slot  # a ready stage of the version is staged again
    finally:
        stage.remove()
        slots.drop(graph_client, online.slot)
    assert not stage.dir.exists()


def test_a_failing_import_tool_leaves_the_served_graph_untouched(graph_client: Neo4jClient, local,
                                                                 tmp_path: Path) -> None:
    served, counts = slots.served(graph_client), live_counts(graph_client)
    broken = offline_import.LocalServer(local.home, "/nonexistent/*", local.control, local.database)
    with pytest.raises(ImportToolError, match="live graph is unchanged"):
        import_graph(graph_client, broken, _rows(seed=5, users=20), "new-v", tmp_path / "stages", "unused",
                     force=True)
    assert slots.served(graph_client) == served and live_counts(graph_client) == counts
    assert [s.ready() for s in stages.existing(tmp_path / "stages").values()] == [None]  # nothing publishable
