"""The `graph` asset and its checks run through Dagster against the real local Neo4j."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tv5_assets.graph_store import checks as graph_checks
from tv5_assets.graph_store import rules, slots
from tv5_assets.graph_store.loader import live_counts
from tv5_assets.graph_store.resources import Neo4jClient
from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, local_neo4j, materialize, release_config
from tv5_assets_tests.services import free_port

pytestmark = pytest.mark.neo4j

GRAPH_AND_UPSTREAM = dg.AssetSelection.assets("graph").upstream()
GRAPH_CHECKS = dg.AssetSelection.checks_for_assets("graph")
FORCE = {"graph": {"config": {"force_reload": True}}}


def _config(release: dict | None = None, force: bool = False) -> dict:
    ops = {**(release_config(**release)["ops"] if release else {}), **(FORCE if force else {})}
    return {"ops": ops}


def _graph_metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("graph")]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _graph_checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {name: e for (asset, name), e in check_results(result).items() if asset == "graph"}


def _expected(lake: Path) -> dict[str, int]:
    tables = {n: pl.scan_parquet(lake / f"{n}.parquet") for n in ("movies", "ratings", "genome", "demographics",
                                                                  "availability")}
    return rules.expected_counts(**tables)


@pytest.fixture(scope="module")
def sample_graph(neo4j_server, tmp_path_factory) -> tuple[Path, dg.DagsterInstance, dg.ExecuteInProcessResult]:
    """SMALL_SAMPLE materialized up to `graph` (fresh load), with its checks."""
    lake = tmp_path_factory.mktemp("graph-lake")
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(GRAPH_AND_UPSTREAM, lake, _config(SMALL_SAMPLE, force=True), instance=instance)
    return lake, instance, result


def test_sample_graph_loads_with_green_checks_and_counts_in_metadata(sample_graph) -> None:
    lake, _, result = sample_graph
    assert result.success
    evaluations = _graph_checks(result)
    assert set(evaluations) == {graph_checks.LOAD_COMPLETE, graph_checks.NODE_COUNTS, graph_checks.RELATIONSHIP_COUNTS,
                                graph_checks.SCHEMA, graph_checks.ENDPOINTS, graph_checks.EXPLANATION}
    assert {name: e.description for name, e in evaluations.items() if not e.passed} == {}
    meta = _graph_metadata(result)
    expected = _expected(lake)
    assert {**meta["node_counts"], **meta["relationship_counts"]} == expected
    assert meta["relationships/RATED"] == SMALL_SAMPLE["sample_ratings"] and meta["nodes/User"] == 40
    assert meta["skipped_unchanged"] is False and meta["rated_rows_per_s"] > 0
    latency = evaluations[graph_checks.EXPLANATION].metadata
    assert latency["results"].value > 0 and len(latency["latencies_ms"].value) == 3


def test_rematerializing_gives_identical_counts_and_version(sample_graph) -> None:
    lake, instance, first = sample_graph
    forced = materialize("graph", lake, _config(force=True), instance=instance)
    again = materialize("graph", lake, instance=instance)
    before, reloaded, unchanged = _graph_metadata(first), _graph_metadata(forced), _graph_metadata(again)
    for meta in (reloaded, unchanged):
        assert meta["node_counts"] == before["node_counts"]
        assert meta["relationship_counts"] == before["relationship_counts"]
        assert meta["version"] == before["version"]
    assert reloaded["skipped_unchanged"] is False and unchanged["skipped_unchanged"] is True
    versions = {instance.get_latest_data_version_record(dg.AssetKey("graph")).asset_materialization.tags.get(
        "dagster/data_version")}
    assert versions == {before["version"]}


def test_every_check_fails_with_a_useful_message_on_a_damaged_graph(sample_graph, graph_client: Neo4jClient) -> None:
    lake, instance, _ = sample_graph
    staged = materialize(dg.AssetSelection.assets("graph").without_checks(), lake, _config(force=True),
                         instance=instance)  # a slot of its own (an unforced run may stage the served slot again)
    slot = _graph_metadata(staged)["staged_version"]
    assert slot != _graph_metadata(staged)["served_slot"]
    media, user = slots.label("Media", slot), slots.label("User", slot)
    served_before = live_counts(graph_client)
    try:  # the staged slot is damaged: its checks fail, what readers see is untouched
        graph_client.write(f"MATCH (:{user})-[r:RATED]->() WITH r ORDER BY elementId(r) LIMIT 5 DELETE r")
        graph_client.write(f"MATCH (m:{media}) WITH m ORDER BY m.id DESC LIMIT 1 DETACH DELETE m")
        graph_client.write(f"MATCH (m:{media} {{id: 1}}), (u:{user} {{id: 1}}) CREATE (m)-[:RATED {{rating: 1.0}}]->(u)")
        graph_client.write(f"MATCH (:{media})-[a:AVAILABLE_ON]->() DELETE a")
        graph_client.run("DROP INDEX media_title")
        graph_client.write("MATCH (s:LoadState {key: $key}) SET s.complete = false, s.phase = 'relationships:RATED'",
                           {"key": slots.marker_key(slot)})
        assert live_counts(graph_client) == served_before
        result = materialize(GRAPH_CHECKS, lake, instance=instance, raise_on_error=False)
        evaluations = _graph_checks(result)
        assert {name for name, e in evaluations.items() if e.passed} == set()
        messages = {name: e.description for name, e in evaluations.items()}
        assert "stopped at phase 'relationships:RATED'" in messages[graph_checks.LOAD_COMPLETE]
        assert "Media: " in messages[graph_checks.NODE_COUNTS] and "in the sources" in messages[graph_checks.NODE_COUNTS]
        assert "RATED: " in messages[graph_checks.RELATIONSHIP_COUNTS]
        assert "AVAILABLE_ON: 0 loaded" in messages[graph_checks.RELATIONSHIP_COUNTS]
        assert "media_title missing" in messages[graph_checks.SCHEMA]
        assert "1 RATED not from a User" in messages[graph_checks.ENDPOINTS]
        assert "Media keys used by source rows have no node" in messages[graph_checks.ENDPOINTS]
        assert "returned nothing" in messages[graph_checks.EXPLANATION]
        severities = {name: e.severity for name, e in evaluations.items()}
        assert severities.pop(graph_checks.EXPLANATION) == dg.AssetCheckSeverity.WARN
        assert set(severities.values()) == {dg.AssetCheckSeverity.ERROR}
    finally:  # leave a complete graph behind
        assert materialize("graph", lake, instance=instance).success


def test_a_down_neo4j_fails_the_asset_with_the_uri_named(sample_graph) -> None:
    lake, instance, _ = sample_graph
    uri = f"bolt://127.0.0.1:{free_port()}"
    result = materialize("graph", lake, instance=instance, raise_on_error=False,
                         neo4j=local_neo4j(uri=uri, max_retries=1, retry_delay_s=0.05, connection_timeout_s=2))
    assert not result.success
    [init_failure] = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    error = init_failure.event_specific_data.error
    assert error.cls_name == "Neo4jUnavailableError"
    assert f"Neo4j is not reachable at {uri}" in error.message and "scripts/services start neo4j" in error.message


@pytest.mark.realdata
def test_real_ml_latest_small_graph(neo4j_server, lake_dir: Path, ml_latest_small: Path) -> None:
    result = materialize(GRAPH_AND_UPSTREAM, lake_dir, _config({"source": str(ml_latest_small)}, force=True))
    assert result.success
    assert {name: e.description for name, e in _graph_checks(result).items() if not e.passed} == {}
    meta = _graph_metadata(result)
    assert meta["node_counts"] == {"Media": 9_742, "User": 610, "Genre": 19, "Tag": 0,
                                   "Platform": meta["node_counts"]["Platform"]}
    assert meta["relationships/RATED"] == 100_836 and meta["relationships/HAS_TAG"] == 0  # no Tag Genome
    assert {**meta["node_counts"], **meta["relationship_counts"]} == _expected(lake_dir)
