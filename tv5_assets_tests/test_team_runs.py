"""One writer per store on the team instance (Postgres): runs launched through the team stack's webserver
(GraphQL), queued, dequeued by its daemon, executed by its one code server.

- Two runs of one store selection with `force_rebuild`, launched at once, on Milvus Lite and on the Milvus
  server: both succeed, the second's store steps start only after the first's checks on that store ended.
- The same for two `graph` runs on the stack's Neo4j.
- A run worker killed (SIGKILL) during a store step: the run is FAILURE within seconds, its pools are free,
  the next queued run starts and succeeds, and the daemon's run retry re-runs the killed one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import neo4j
import pytest

from tv5_assets.graph_store import slots
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets_tests.dagster_runs import (
    dequeued_at,
    launch,
    run_worker_pid,
    step_started,
    store_window,
    wait_finished,
    wait_status,
)
from tv5_assets_tests.graph_support import sources, write_sources
from tv5_assets_tests.milvus_support import write_source_lake
from tv5_assets_tests.team_support import TeamStack
from tv5_assets_tests.test_run_collisions import MOVIES, STORE, assert_serialised, assert_staged_complete, store_checks

pytestmark = [pytest.mark.team_stack, pytest.mark.daemon]

GRAPH_CHECKS = store_checks("graph")


def graph_config(stack: TeamStack, lake: Path) -> dict:
    return {**stack.lake_config(lake), "ops": {"graph": {"config": {"force_reload": True, "method": "online"}}}}


# CI runs the server here and Lite on SQLite (test_run_collisions); `-m matrix` adds the other two pairs
@pytest.mark.parametrize("backend", [pytest.param("lite", marks=pytest.mark.matrix),
                                     pytest.param("server", marks=pytest.mark.extended)])
def test_two_store_runs_at_once_on_postgres_run_one_after_the_other(team_stack: TeamStack, tmp_path: Path,
                                                                   backend: str) -> None:
    lake = tmp_path / "lake"
    write_source_lake(lake, movies=MOVIES)
    milvus = {"uri": str(lake / "milvus.db")} if backend == "lite" else \
        {"collection_prefix": f"coll{uuid.uuid4().hex[:6]}_"}
    config = {**team_stack.lake_config(lake, milvus), "ops": {"milvus__media_vectors": {"config": {"force_rebuild": True}}}}
    checks = store_checks(STORE)
    first = launch(team_stack.url, [STORE], checks, config, tags={"test": f"pg-collision-{backend}-1"})
    second = launch(team_stack.url, [STORE], checks, config, tags={"test": f"pg-collision-{backend}-2"})
    assert type(team_stack.instance.run_storage).__name__ == "PostgresRunStorage"
    assert_serialised(team_stack.instance, first, second)
    resource = MilvusResource(uri=team_stack.milvus_uri, **milvus) if backend == "server" else MilvusResource(**milvus)
    assert_staged_complete(resource, team_stack.instance, MOVIES)


def test_two_graph_runs_at_once_on_postgres_run_one_after_the_other(team_stack: TeamStack, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    tables = sources(users=200, movies=120, ratings_per_user=20)
    write_sources(lake, tables)
    config = graph_config(team_stack, lake)
    first = launch(team_stack.url, ["graph"], GRAPH_CHECKS, config, tags={"test": "pg-graph-1"})
    second = launch(team_stack.url, ["graph"], GRAPH_CHECKS, config, tags={"test": "pg-graph-2"})
    assert_serialised(team_stack.instance, first, second)
    event = team_stack.instance.get_latest_materialization_event(dg.AssetKey("graph"))
    staged = slots.label("User", event.asset_materialization.metadata["staged_version"].value)
    with _session(team_stack) as session:
        rated = session.run(f"MATCH (:{staged})-[r:RATED]->() RETURN count(r) AS n").single()["n"]
    assert rated == tables["ratings"].height


@contextlib.contextmanager
def _session(stack: TeamStack) -> Iterator[neo4j.Session]:
    with neo4j.GraphDatabase.driver(f"bolt://127.0.0.1:{stack.ports['bolt']}",
                                    auth=("neo4j", stack.passwords["neo4j"])) as driver, driver.session() as session:
        yield session


@pytest.mark.extended
def test_a_killed_run_worker_fails_its_run_frees_the_store_and_the_queued_run_succeeds(
        team_stack: TeamStack, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    write_sources(lake, sources(users=1_500, movies=600, ratings_per_user=60))  # ~90K RATED: a load of seconds
    config = graph_config(team_stack, lake)
    instance = team_stack.instance
    victim = launch(team_stack.url, ["graph"], GRAPH_CHECKS, config, tags={"test": "kill-1", "dagster/max_retries": "1"})
    queued = launch(team_stack.url, ["graph"], GRAPH_CHECKS, config, tags={"test": "kill-2", "dagster/max_retries": "0"})
    step_started(instance, victim, "graph", timeout_s=300)
    assert instance.get_run_by_id(queued).status == dg.DagsterRunStatus.QUEUED
    pid = run_worker_pid(instance, victim)
    time.sleep(1.0)  # well inside the load
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    failed = wait_status(instance, victim, {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS}, timeout_s=120)
    failed_at = instance.get_run_record_by_id(victim).end_time or time.time()
    print(f"run worker {pid} killed; run {victim[:8]} {failed.status.value} {failed_at - killed:.1f} s later")
    assert failed.status == dg.DagsterRunStatus.FAILURE and failed_at - killed < 30
    [done] = wait_finished(instance, [queued], timeout_s=600)
    assert done.status == dg.DagsterRunStatus.SUCCESS
    started = dequeued_at(instance, queued)
    assert started is not None and started >= failed_at - 0.5, (started, failed_at)
    print(f"queued run {queued[:8]} dequeued {started - failed_at:.1f} s after the failure, SUCCESS")
    # the daemon's run retry re-runs the killed run (a run whose worker died; failed steps are never retried)
    deadline = time.monotonic() + 600
    while not (retries := instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": victim}))):
        assert time.monotonic() < deadline, "no retry of the killed run"
        time.sleep(2)
    [retry] = wait_finished(instance, [retries[0].run_id], timeout_s=600)
    assert retry.status == dg.DagsterRunStatus.SUCCESS
    window = store_window(instance, retry.run_id)
    assert window.first_start >= store_window(instance, queued).last_end
