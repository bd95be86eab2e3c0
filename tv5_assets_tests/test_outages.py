"""Outages longer than the adapters' own retries, on the team (Postgres) instance: a store step is retried by
Dagster (STEP_UP_FOR_RETRY in the event log) and the run succeeds; a permanent fault fails once, clearly.

Each outage lasts 60 s: Neo4j killed during the graph's load then started again; the Milvus server stopped
during a collection's build then started again. Real servers (the session's private team stack, so the
faults hit no other test's server), real runs (one in-process, one launched through the daemon, both
recorded in the stack's Postgres); the two outages overlap to keep the suite's time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets_tests.dagster_runs import failure_reasons, launch, step_events, wait_finished, workload
from tv5_assets_tests.graph_support import sources, write_sources
from tv5_assets_tests.harness import materialize
from tv5_assets_tests.milvus_support import write_source_lake
from tv5_assets_tests.team_support import TeamStack
from tv5_assets_tests.test_run_collisions import STORE, store_checks

pytestmark = [pytest.mark.team_stack]

OUTAGE_S = 60.0


class Outage(threading.Thread):
    """Waits for `step` to start in `run_id`, or else in a run created after this outage was (the stack's earlier
    runs, e.g. the browser test's, started the same step long ago), then `down()`, sleeps OUTAGE_S, then `up()`."""

    def __init__(self, instance: dg.DagsterInstance, step: str, down: Callable[[], object], up: Callable[[], object],
                 run_id: str | None = None):
        super().__init__(daemon=True)
        self.instance, self.step, self.down, self.up, self.run_id = instance, step, down, up, run_id
        self.went_down = self.came_up = 0.0
        self.error: BaseException | None = None
        self.run_over = threading.Event()  # set by the test when its run returned
        self.earlier = {run.run_id for run in instance.get_runs(limit=50)}

    def _step_started(self) -> bool:
        run_ids = [self.run_id] if self.run_id else [
            run.run_id for run in workload(self.instance.get_runs(limit=5)) if run.run_id not in self.earlier]
        return any(key == self.step and kind == DagsterEventType.STEP_START.value
                   for run_id in run_ids for key, kind, _ in step_events(self.instance, run_id))

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not self.run_over.is_set():
                if self._step_started():
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"step {self.step} never started")
            self.down()
            self.went_down = time.time()
            time.sleep(OUTAGE_S)
            self.up()
            self.came_up = time.time()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


def retries_of(instance: dg.DagsterInstance, run_id: str, step: str) -> list[float]:
    return [ts for key, kind, ts in step_events(instance, run_id)
            if key == step and kind == DagsterEventType.STEP_UP_FOR_RETRY.value]


@pytest.mark.extended
def test_a_minute_long_outage_during_a_store_step_is_retried_and_the_run_succeeds(
        team_stack: TeamStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both outages at once (they touch different stores, so neither run waits for the other): the stack's Neo4j
    killed during the graph's load in an in-process run, and its Milvus server stopped during a collection's
    build in a run launched through the webserver and the daemon (executed by the code server)."""
    instance = team_stack.instance
    graph_lake, milvus_lake = tmp_path / "graph", tmp_path / "milvus"
    graph_lake.mkdir()
    write_sources(graph_lake, sources(users=1_500, movies=600, ratings_per_user=60))  # ~90K RATED: seconds to load
    write_source_lake(milvus_lake, movies=40_000, users=10)  # a build of seconds on the server
    monkeypatch.setenv("TV5_OUTAGE_WAIT_S", "30")  # the in-process run's; the stack's code server has the same

    prefix = f"outage{uuid.uuid4().hex[:6]}_"
    milvus_run = launch(team_stack.url, [STORE], store_checks(STORE),
                        {**team_stack.lake_config(milvus_lake, {"collection_prefix": prefix}),
                         "ops": {"milvus__media_vectors": {"config": {"force_rebuild": True}}}},
                        tags={"test": "outage-milvus"})
    milvus_outage = Outage(instance, "milvus__media_vectors", lambda: team_stack.stop("milvus"),
                           lambda: team_stack.start("milvus"), run_id=milvus_run)
    graph_outage = Outage(instance, "graph", lambda: team_stack.kill("neo4j"), lambda: team_stack.start("neo4j"))
    milvus_outage.start()
    graph_outage.start()
    graph = materialize("graph", graph_lake, {"ops": {"graph": {"config": {"force_reload": True, "method": "online"}}}},
                        instance=instance, raise_on_error=False, neo4j=team_stack.neo4j(retry_delay_s=0.5))
    graph_outage.run_over.set()
    [milvus] = wait_finished(instance, [milvus_run], timeout_s=600)
    milvus_outage.run_over.set()
    for outage in (graph_outage, milvus_outage):
        outage.join(timeout=400)
        assert outage.error is None, outage.error

    graph_retries = retries_of(instance, graph.run_id, "graph")
    milvus_retries = retries_of(instance, milvus_run, "milvus__media_vectors")
    print(f"Neo4j down {graph_outage.came_up - graph_outage.went_down:.0f} s during the graph load: step retried "
          f"{len(graph_retries)} time(s), run {'SUCCESS' if graph.success else 'FAILURE'}; Milvus server down "
          f"{milvus_outage.came_up - milvus_outage.went_down:.0f} s during the build: step retried "
          f"{len(milvus_retries)} time(s), run {milvus.status.value}")
    assert graph.success, "the in-process run failed despite the step retries"
    assert graph_retries and graph_retries[0] >= graph_outage.went_down, "no STEP_UP_FOR_RETRY after Neo4j went"
    assert all(e.passed for e in graph.get_asset_check_evaluations()), "graph checks failed after the retry"
    assert milvus.status == dg.DagsterRunStatus.SUCCESS, failure_reasons(instance, milvus_run)
    assert milvus_retries and milvus_retries[0] >= milvus_outage.went_down, "no STEP_UP_FOR_RETRY after Milvus went"
    staged = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(STORE))
    with MilvusResource(uri=team_stack.milvus_uri, collection_prefix=prefix).connected() as store:
        target = staged.asset_materialization.metadata["staged_version"].value
        assert store.has_collection(target) and store.count(target) == 40_000


def test_refused_neo4j_credentials_fail_once_with_a_clear_message(
        team_stack: TeamStack, lake_dir: Path) -> None:
    write_sources(lake_dir, sources())
    started = time.monotonic()
    result = materialize("graph", lake_dir, instance=team_stack.instance, raise_on_error=False,
                         neo4j=team_stack.neo4j(password="not-the-password"))
    assert not result.success and time.monotonic() - started < 120
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE
                or e.event_type == DagsterEventType.RUN_FAILURE]
    messages = " ".join(str(e.event_specific_data) for e in failures)
    assert "refused the credentials" in messages and "NEO4J_PASSWORD" in messages, messages[-2000:]
    assert not retries_of(team_stack.instance, result.run_id, "graph")
