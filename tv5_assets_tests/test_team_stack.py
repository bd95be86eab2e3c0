"""The team's Dagster without Docker (`scripts/services start team`), end to end with real processes:
PostgreSQL, Neo4j, the Milvus server, one code server, the webserver and the daemon on the team instance,
a run launched through the webserver's GraphQL API, queued, dequeued by the daemon, executed by the code
server, stored in Postgres; then `stop team` leaves nothing behind.

Everything is private to the test (ports, data directories, state directory, .env, DAGSTER_HOME, data
lake): the developer's services and their `.env` are not touched. About a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tv5_assets import local_services as ls
from tv5_assets.local_services import dagster_stack
from tv5_assets_tests import services as svc

pytestmark = pytest.mark.team_stack
RUN_TIMEOUT_S = 120
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN_STATUS = """query Status($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""


def _graphql(port: int, query: str, variables: dict) -> dict:
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert not answer.get("errors"), answer
    return answer["data"]


def _imports_the_project(pid: int) -> bool:
    """The process mapped the native libraries the project's definitions load (polars, implicit's ALS);
    Dagster's own processes import neither."""
    try:
        return any("_polars_runtime" in m.path or "/implicit/" in m.path for m in psutil.Process(pid).memory_maps())
    except psutil.Error:
        return False


def _trees(state: Path) -> dict[str, set[int]]:
    trees = {}
    for name in ls.TEAM:
        pid = ls.running_pid(name, state)
        assert pid is not None, f"{name} is not running"
        trees[name] = svc.process_tree(pid)
    return trees


def test_the_team_stack_runs_a_job_queued_through_the_webserver_and_stops_clean(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    svc.clean_service_environment(monkeypatch)
    monkeypatch.setenv("TV5_DATA_DIR", str(tmp_path / "lake"))
    started_at = time.monotonic()
    with svc.shared_tmp_dir("tv5-team-") as shared:
        env_file, state, said = tmp_path / ".env", tmp_path / "state", []
        ports = {key: ls.free_port() for key in ("pg", "bolt", "milvus", "code", "web")}

        def settings() -> ls.ServiceSettings:  # what the CLI would read: the (cleaned) environment, then .env
            return ls.ServiceSettings(
                _env_file=env_file, dagster_postgres_port=ports["pg"], postgres_data_dir=str(shared / "pg"),
                neo4j_bolt_port=ports["bolt"], neo4j_home_dir=str(tmp_path / "neo4j"), neo4j_heap="384m",
                neo4j_pagecache="64m", neo4j_tx_memory="128m", milvus_port=ports["milvus"],
                milvus_data_dir=str(tmp_path / "milvus"), dagster_team_home=str(tmp_path / "dagster-team"),
                dagster_code_server_port=ports["code"], dagster_webserver_port=ports["web"])

        try:
            ls.start("team", settings(), env_file=env_file, state_dir=state, out=said.append)
            startup_s = time.monotonic() - started_at
            starting = [line.split(" ", 1)[0] for line in said if " starting (pid " in line]
            assert starting == list(ls.TEAM), said
            prepared = next(i for i, line in enumerate(said) if line.startswith("team instance ready in "))
            assert said.index(next(l for l in said if l.startswith("dagster-code-server starting"))) > prepared

            states = ls.status("team", settings(), state_dir=state)
            assert [s.name for s in states] == list(ls.TEAM)
            assert all(s.answering for s in states), "\n".join(s.describe() for s in states)
            assert states[-1].describe().startswith("dagster-daemon: running, answering (heartbeats in the team "
                                                    "instance) (pid ")
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['web']}/server_info", timeout=10) as response:
                assert "dagster_webserver_version" in json.loads(response.read())
            workspace = (tmp_path / "dagster-team" / "workspace.yaml").read_text()
            assert f"port: {ports['code']}" in workspace and "location_name: tv5_assets" in workspace

            # exactly one process imports the project: the code server's `dagster api grpc` child
            trees = _trees(state)
            importing = {pid for tree in trees.values() for pid in tree if _imports_the_project(pid)}
            assert len(importing) == 1, importing
            [loader] = importing
            assert loader in trees["dagster-code-server"] and loader != ls.running_pid("dagster-code-server", state)
            assert "api grpc" in " ".join(psutil.Process(loader).cmdline())
            proxy = psutil.Process(ls.running_pid("dagster-code-server", state)).cmdline()
            assert "--heartbeat" not in proxy  # it never shuts itself down when its clients go quiet
            # each process leads its own session
            for name in ls.TEAM:
                pid = ls.running_pid(name, state)
                assert os.getpgid(pid) == pid and os.getsid(pid) == pid, name
            if shutil.which("ss"):
                ours = set().union(*trees.values())
                mine = [l for l in svc.listening_sockets() if any(p in ours for _, p in l.processes)]
                assert set(ports.values()) <= {l.port for l in mine}
                assert all(svc.is_loopback(l.address) for l in mine), mine

            # a run through the webserver's GraphQL: QUEUED, dequeued by the daemon, SUCCESS
            launched = time.monotonic()
            result = _graphql(ports["web"], LAUNCH, {"params": {
                "selector": {"repositoryLocationName": "tv5_assets", "repositoryName": "__repository__",
                             "jobName": "purge_old_runs"},
                "runConfigData": {}}})["launchRun"]
            assert result["__typename"] == "LaunchRunSuccess", result
            run_id, seen = result["run"]["runId"], [result["run"]["status"]]
            assert seen == ["QUEUED"]
            while seen[-1] not in ("SUCCESS", "FAILURE", "CANCELED"):
                assert time.monotonic() - launched < RUN_TIMEOUT_S, f"run {run_id} still {seen[-1]}: {seen}"
                time.sleep(0.25)
                status = _graphql(ports["web"], RUN_STATUS, {"id": run_id})["runOrError"]["status"]
                if status != seen[-1]:
                    seen.append(status)
            run_s = time.monotonic() - launched
            assert seen[-1] == "SUCCESS", (seen, (state / "dagster-code-server.log").read_text()[-3000:])
            with dagster_stack.team_instance(settings()) as instance:  # stored in the test's Postgres
                assert type(instance.run_storage).__name__ == "PostgresRunStorage"
                events = [r.event_log_entry.dagster_event.event_type_value
                          for r in instance.get_records_for_run(run_id).records if r.event_log_entry.is_dagster_event]
            # enqueued by the webserver, launched by the daemon's queued run coordinator, run by the code server
            lifecycle = [e for e in events if e.startswith("PIPELINE_")]
            assert lifecycle == ["PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_START", "PIPELINE_SUCCESS"], events

            # killing the webserver leaves the code server and the daemon running; `start team` brings it back
            web_pid, code_pid = ls.running_pid("dagster-webserver", state), ls.running_pid("dagster-code-server", state)
            os.kill(web_pid, signal.SIGKILL)
            assert ls.wait_gone(web_pid, 10)
            assert ls.wait_ready("dagster-code-server", settings(), 10, code_pid) is None
            said.clear()
            ls.start("team", settings(), env_file=env_file, state_dir=state, out=said.append)
            assert [line for line in said if "already running" in line] == [
                f"{name} already running (pid {ls.running_pid(name, state)})"
                for name in ls.TEAM if name != "dagster-webserver"]
            assert any(line.startswith("dagster-webserver ready in ") for line in said), said
            assert ls.running_pid("dagster-code-server", state) == code_pid

            # stop: reverse order, nothing left of any of them
            trees = _trees(state)
            said.clear()
            stop_started = time.monotonic()
            ls.stop("team", settings(), state_dir=state, out=said.append)
            stop_s = time.monotonic() - stop_started
            assert [line.split(" ")[1] for line in said if line.startswith("stopping ")] == list(reversed(ls.TEAM))
            left = [pid for tree in trees.values() for pid in tree if ls.is_alive(pid)]
            assert not left, [psutil.Process(p).cmdline() for p in left if ls.is_alive(p)]
            assert all(s.describe() == f"{s.name}: stopped" for s in ls.status("team", settings(), state_dir=state))
            if shutil.which("ss"):
                assert not {l.port for l in svc.listening_sockets()} & set(ports.values())
        finally:
            ls.stop("team", settings(), state_dir=state, out=lambda _: None)
    print(f"team stack: started in {startup_s:.1f} s, run {run_id} {' -> '.join(seen)} in {run_s:.1f} s, "
          f"stopped in {stop_s:.1f} s, {time.monotonic() - started_at:.1f} s in all")
