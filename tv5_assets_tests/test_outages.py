"""Outages longer than the adapters' own retries, on the team (Postgres) instance: a store step is retried by
Dagster (STEP_UP_FOR_RETRY in the event log) and the run succeeds; a permanent fault fails once, clearly.

Each outage lasts 60 s: Neo4j killed during the graph's load then started again; the Milvus server stopped
during a collection's build then started again. Real servers (the session's private team stack, so the
faults hit no other test's server), real runs (in-process, recorded in the stack's Postgres).
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
from tv5_assets_tests.dagster_runs import step_events
from tv5_assets_tests.graph_support import sources, write_sources
from tv5_assets_tests.harness import materialize
from tv5_assets_tests.milvus_support import write_source_lake
from tv5_assets_tests.team_support import TeamStack

pytestmark = [pytest.mark.team_stack]

OUTAGE_S = 60.0


class Outage(threading.Thread):
    """Waits for `step` to start in the instance's newest run, then `down()`, sleeps OUTAGE_S, then `up()`."""

    def __init__(self, instance: dg.DagsterInstance, step: str, down: Callable[[], object], up: Callable[[], object]):
        super().__init__(daemon=True)
        self.instance, self.step, self.down, self.up = instance, step, down, up
        self.went_down = self.came_up = 0.0
        self.error: BaseException | None = None
        self.run_over = threading.Event()  # set by the test when its run returned

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not self.run_over.is_set():
                runs = self.instance.get_runs(limit=1)
                if runs and any(key == self.step and kind == DagsterEventType.STEP_START.value
                                for key, kind, _ in step_events(self.instance, runs[0].run_id)):
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


def test_neo4j_down_for_a_minute_during_the_graph_load_the_step_is_retried_and_the_run_succeeds(
        team_stack: TeamStack, lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_sources(lake_dir, sources(users=1_500, movies=600, ratings_per_user=60))  # ~90K RATED: a load of seconds
    monkeypatch.setenv("TV5_OUTAGE_WAIT_S", "30")
    instance = team_stack.instance
    outage = Outage(instance, "graph", lambda: team_stack.kill("neo4j"), lambda: team_stack.start("neo4j"))
    outage.start()
    result = materialize("graph", lake_dir, {"ops": {"graph": {"config": {"force_reload": True, "method": "online"}}}},
                         instance=instance, raise_on_error=False, neo4j=team_stack.neo4j(retry_delay_s=0.5))
    outage.run_over.set()
    outage.join(timeout=400)
    assert outage.error is None, outage.error
    retried = retries_of(instance, result.run_id, "graph")
    print(f"Neo4j down {outage.came_up - outage.went_down:.0f} s; graph step retried {len(retried)} time(s), "
          f"run {'SUCCESS' if result.success else 'FAILURE'}")
    assert result.success, "the run failed despite the step retries"
    assert retried and retried[0] >= outage.went_down, "no STEP_UP_FOR_RETRY after the outage began"
    assert all(e.passed for e in result.get_asset_check_evaluations()), "graph checks failed after the retry"


def test_milvus_server_restarted_during_a_build_the_step_is_retried_and_the_run_succeeds(
        team_stack: TeamStack, lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_source_lake(lake_dir, movies=40_000, users=10)  # a build of seconds on the server
    monkeypatch.setenv("TV5_OUTAGE_WAIT_S", "30")
    instance = team_stack.instance
    resource = MilvusResource(uri=team_stack.milvus_uri, collection_prefix=f"outage{uuid.uuid4().hex[:6]}_")
    outage = Outage(instance, "milvus__media_vectors", lambda: team_stack.stop("milvus"),
                    lambda: team_stack.start("milvus"))
    outage.start()
    result = materialize("milvus/media_vectors", lake_dir,
                         {"ops": {"milvus__media_vectors": {"config": {"force_rebuild": True}}}},
                         instance=instance, raise_on_error=False, milvus=resource)
    outage.run_over.set()
    outage.join(timeout=400)
    assert outage.error is None, outage.error
    retried = retries_of(instance, result.run_id, "milvus__media_vectors")
    print(f"Milvus down {outage.came_up - outage.went_down:.0f} s; build retried {len(retried)} time(s), "
          f"run {'SUCCESS' if result.success else 'FAILURE'}")
    assert result.success and retried and retried[0] >= outage.went_down
    assert all(e.passed for e in result.get_asset_check_evaluations()
               if e.check_name != "search_latency"), "collection checks failed after the retry"
    with resource.connected() as store:
        target = store.alias_target(store.alias_name("media_vectors"))
        assert target is not None and store.count(target) == 40_000


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
