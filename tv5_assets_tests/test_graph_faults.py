"""A Neo4j killed in the middle of loading `graph`, restarted, and the asset re-run: exact counts.

This runs on a private Neo4j (own port and data directory, started by the test), never on the
shared server on 7687 that other tests use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from tv5_assets.graph_store import slots
from tv5_assets.graph_store.loader import live_counts, read_load_state
from tv5_assets.graph_store.resources import Neo4jClient
from tv5_assets.graph_store.rows import graph_rows
from tv5_assets_tests import services as svc
from tv5_assets_tests.graph_support import sources, write_sources
from tv5_assets_tests.harness import check_results, local_neo4j, materialize

pytestmark = [pytest.mark.neo4j, pytest.mark.extended]


@pytest.fixture(scope="module")
def private_neo4j(tmp_path_factory) -> Iterator[svc.PrivateNeo4j]:
    # C1-only JIT: this short-lived JVM starts in about half the time on a busy 2-core machine
    instance = svc.PrivateNeo4j(tmp_path_factory.mktemp("neo4j-private"), port=svc.free_port(), heap="512m",
                                pagecache="128m", tx_memory="256m", java_opts=("-XX:TieredStopAtLevel=1",))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def _rated(client: Neo4jClient) -> int:
    return client.read("MATCH ()-[r:RATED]->() RETURN count(r) AS n")[0]["n"]


def _kill_when_rated_reaches(instance: svc.PrivateNeo4j, threshold: int, seen: list[int]) -> None:
    """Poll the server; SIGKILL it as soon as `threshold` RATED relationships are committed."""
    settings = instance.settings
    deadline = time.monotonic() + 120
    with Neo4jClient(settings.uri, settings.user, settings.password, max_retries=0) as client:
        while time.monotonic() < deadline:
            count = _rated(client)
            if count >= threshold:
                seen.append(count)
                instance.kill()
                return
            time.sleep(0.05)


def test_killed_mid_load_then_restarted_a_rerun_gives_exact_counts(private_neo4j: svc.PrivateNeo4j,
                                                                   lake_dir: Path) -> None:
    tables = sources(users=200, movies=100, ratings_per_user=40)  # 8,000 ratings, in 8 batches
    write_sources(lake_dir, tables)
    expected = graph_rows(**tables).counts()
    resource = local_neo4j(uri=private_neo4j.settings.uri, batch_rows=1_000, max_retries=1, retry_delay_s=0.1,
                           connection_timeout_s=2)
    instance = dg.DagsterInstance.ephemeral()

    seen: list[int] = []
    killer = threading.Thread(target=_kill_when_rated_reaches, args=(private_neo4j, 2_000, seen))
    killer.start()
    crashed = materialize("graph", lake_dir, instance=instance, raise_on_error=False, neo4j=resource)
    killer.join()
    assert seen, "the load finished before the server could be killed"
    assert not crashed.success

    settings = private_neo4j.start()  # crash recovery on the same data directory
    with Neo4jClient(settings.uri, settings.user, settings.password) as client:
        [half] = slots.existing(client)
        state = read_load_state(client, half)
        assert not state.complete and state.phase == "relationships:RATED"
        assert seen[0] <= _rated(client) < expected["RATED"]  # committed batches survived; the rest never came

        rerun = materialize("graph", lake_dir, instance=instance, neo4j=resource)
        assert rerun.success
        [event] = rerun.get_asset_materialization_events()
        metadata = {k: v.value for k, v in event.materialization.metadata.items()}
        slot = metadata["staged_version"]
        assert metadata["dropped_slots"] == [half] and slots.existing(client) == {slot}  # the half load is gone
        assert live_counts(client, slot) == expected
        assert read_load_state(client, slot).complete
    evaluations = {name: e for (asset, name), e in check_results(rerun).items() if asset == "graph"}
    assert len(evaluations) == 6  # the latency check only warns: a cold, just-recovered page cache may be slow
    assert {name: e.description for name, e in evaluations.items()
            if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR} == {}
