"""The team's Dagster without Docker (`scripts/services start team`), end to end with real processes:
PostgreSQL, Neo4j, the Milvus server, one code server, the webserver and the daemon on the team instance,
a run launched through the webserver's GraphQL API, queued, dequeued by the daemon, executed by the code
server, stored in Postgres; then `stop team` leaves nothing behind.

The stack is the session's private one (tests/team_support.py: ports, data directories, state directory,
.env, DAGSTER_HOME, data lake): the developer's services and their `.env` are not touched.
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
from tv5_assets_tests import services as svc
from tv5_assets_tests.dagster_runs import LAUNCH, graphql
from tv5_assets_tests.team_support import TeamStack

pytestmark = pytest.mark.team_stack
RUN_TIMEOUT_S = 120
RUN_STATUS = """query Status($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""


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


def _cmdline(pid: int) -> list[str]:
    """A process's command line, empty once it has exited (a run worker finishing becomes a zombie meanwhile)."""
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return []


def test_the_team_stack_runs_a_job_queued_through_the_webserver_and_stops_clean(team_stack: TeamStack) -> None:
    """On the session's team stack (tests/team_support.py, started by `local_services.start("team")` as
    `scripts/services start team` does). It stops the stack: it runs last of the stack's users (file order)."""
    started_at = time.monotonic()
    state, said, ports = team_stack.state, team_stack.said, team_stack.ports
    settings = team_stack.settings
    # the stack's own start (later lines: restarts by the fault tests that share the stack)
    first_start = said[:next(i for i, line in enumerate(said) if line.startswith("dagster-daemon ready")) + 1]
    starting = [line.split(" ", 1)[0] for line in first_start if " starting (pid " in line]
    assert starting == list(ls.TEAM), said
    prepared = next(i for i, line in enumerate(first_start) if line.startswith("team instance ready in "))
    assert first_start.index(next(l for l in first_start if l.startswith("dagster-code-server starting"))) > prepared

    states = ls.status("team", settings(), state_dir=state)
    assert [s.name for s in states] == list(ls.TEAM)
    assert all(s.answering for s in states), "\n".join(s.describe() for s in states)
    assert states[-1].describe().startswith("dagster-daemon: running, answering (heartbeats in the team "
                                            "instance) (pid ")
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['web']}/server_info", timeout=10) as response:
        assert "dagster_webserver_version" in json.loads(response.read())
    workspace = (team_stack.home / "workspace.yaml").read_text()
    assert f"port: {ports['code']}" in workspace and "location_name: tv5_assets" in workspace

    # exactly one long-lived process imports the project: the code server's `dagster api grpc` child (a run
    # still finishing from an earlier test of the session has a run worker too: the loader's own child)
    trees = _trees(state)
    importing = {pid for tree in trees.values() for pid in tree if _imports_the_project(pid)}
    servers = {pid for pid in importing if "api grpc" in " ".join(_cmdline(pid))}
    assert len(servers) == 1, {pid: _cmdline(pid) for pid in importing}
    [loader] = servers
    assert importing - {loader} <= svc.process_tree(loader), "a second process imports the project"
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
    result = graphql(team_stack.url, LAUNCH, {"params": {
        "selector": {"repositoryLocationName": "tv5_assets", "repositoryName": "__repository__",
                     "jobName": "purge_old_runs"},
        "runConfigData": {}}})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id, seen = result["run"]["runId"], [result["run"]["status"]]
    assert seen == ["QUEUED"]
    while seen[-1] not in ("SUCCESS", "FAILURE", "CANCELED"):
        assert time.monotonic() - launched < RUN_TIMEOUT_S, f"run {run_id} still {seen[-1]}: {seen}"
        time.sleep(0.25)
        status = graphql(team_stack.url, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status != seen[-1]:
            seen.append(status)
    run_s = time.monotonic() - launched
    assert seen[-1] == "SUCCESS", (seen, (state / "dagster-code-server.log").read_text()[-3000:])
    instance = team_stack.instance  # stored in the stack's Postgres
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
    team_stack.start("team")
    assert [line for line in said if "already running" in line] == [
        f"{name} already running (pid {ls.running_pid(name, state)})"
        for name in ls.TEAM if name != "dagster-webserver"]
    assert any(line.startswith("dagster-webserver ready in ") for line in said), said
    assert ls.running_pid("dagster-code-server", state) == code_pid

    # stop: reverse order, nothing left of any of them
    trees = _trees(state)
    said.clear()
    stop_started = time.monotonic()
    team_stack.stop("team")
    stop_s = time.monotonic() - stop_started
    assert [line.split(" ")[1] for line in said if line.startswith("stopping ")] == list(reversed(ls.TEAM))
    left = [pid for tree in trees.values() for pid in tree if ls.is_alive(pid)]
    assert not left, [psutil.Process(p).cmdline() for p in left if ls.is_alive(p)]
    assert all(s.describe() == f"{s.name}: stopped" for s in ls.status("team", settings(), state_dir=state))
    if shutil.which("ss"):
        assert not {l.port for l in svc.listening_sockets()} & set(ports.values())
    print(f"team stack: run {run_id} {' -> '.join(seen)} in {run_s:.1f} s, stopped in {stop_s:.1f} s, "
          f"{time.monotonic() - started_at:.1f} s in all")
