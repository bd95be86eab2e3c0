"""Runs launched as a team launches them: through the webserver's GraphQL API, queued, dequeued by the daemon.

- ``launch(url, assets, checks, run_config)``: one `launchRun` of an asset (and check) selection; its run id.
- ``wait_finished(instance, run_ids)``: the runs once all have finished.
- ``store_window(instance, run_id)``: when a run's first step started and its last step ended (event log).
- ``run_worker_pid(instance, run_id)``: the pid Dagster logged for the run's worker process.
- ``workload(runs)``: the runs less the daily housekeeping schedule's (which the daemon launches at 03:15).

Plain module: import what you need. Talks to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.events import DagsterEventType

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""
LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"""
STEP_EVENTS = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE,
               DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.STEP_RESTARTED}
_PID = re.compile(r"\(pid: (\d+)\)")


def graphql(url: str, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if answer.get("errors"):
        raise AssertionError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def location(url: str) -> str:
    """The one code location the webserver serves."""
    [entry] = graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]
    return entry["name"]


def launch(url: str, assets: Sequence[str], checks: Iterable[tuple[str, str]] = (), run_config: dict | None = None,
           tags: dict[str, str] | None = None, where: str | None = None) -> str:
    """Launch the asset selection (asset keys as 'a/b') and checks ((asset key, check name)) through GraphQL."""
    params = {
        "selector": {
            "repositoryLocationName": where or location(url), "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": key.split("/")} for key in assets],
            "assetCheckSelection": [{"assetKey": {"path": key.split("/")}, "name": name} for key, name in checks],
        },
        "runConfigData": run_config or {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
    }
    result = graphql(url, LAUNCH, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise AssertionError(f"launchRun failed: {result}")
    return result["run"]["runId"]


HOUSEKEEPING_JOBS = frozenset({"purge_old_runs"})  # launched by the daemon's schedule whatever the test does


def workload(runs: Iterable[dg.DagsterRun]) -> list[dg.DagsterRun]:
    """The runs less the housekeeping schedule's: a stack whose daemon runs at 03:15 launches `purge_old_runs`
    beside a test's runs (it failed a CI run once), and a test counts the runs it caused."""
    return [run for run in runs if run.job_name not in HOUSEKEEPING_JOBS]


def wait_finished(instance: dg.DagsterInstance, run_ids: Sequence[str], timeout_s: float = 600) -> list[dg.DagsterRun]:
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
        if all(run is not None and run.is_finished for run in runs):
            return runs  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"runs not finished after {timeout_s:.0f} s: "
                                 f"{[(r.run_id[:8], r.status.value) for r in runs if r is not None]}")
        time.sleep(1)


def failure_reasons(instance: dg.DagsterInstance, run_id: str) -> str:
    """The messages of a run's failure events (step and run), for an assertion's message."""
    kinds = {DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE, DagsterEventType.ENGINE_EVENT}
    lines = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.event_type in kinds:
            error = getattr(event.event_specific_data, "error", None)
            lines.append(f"{event.event_type.value} {event.step_key or ''}: {entry.message} "
                         f"{error.to_string()[-1500:] if error is not None else ''}")
    return "\n".join(lines[-8:])


def wait_status(instance: dg.DagsterInstance, run_id: str, statuses: set[dg.DagsterRunStatus],
                timeout_s: float = 300) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout_s
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run.status.value if run else 'missing'} after {timeout_s:.0f} s")
        time.sleep(0.5)


@dataclass(frozen=True)
class StepWindow:
    run_id: str
    first_start: float
    last_end: float
    steps: tuple[tuple[str, str, float], ...]  # (step key, event type, timestamp)

    def describe(self) -> str:
        return "\n".join(f"  {self.run_id[:8]} {time.strftime('%H:%M:%S', time.localtime(ts))}.{int(ts % 1 * 1000):03d} "
                         f"{kind:<18} {step}" for step, kind, ts in self.steps)


def step_events(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str, float]]:
    events = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.event_type in STEP_EVENTS:
            events.append((event.step_key or "", event.event_type.value, entry.timestamp))
    return events


def store_window(instance: dg.DagsterInstance, run_id: str) -> StepWindow:
    """From the first STEP_START to the last step end of a run (its steps are the store's asset and checks)."""
    steps = step_events(instance, run_id)
    starts = [ts for _, kind, ts in steps if kind == DagsterEventType.STEP_START.value]
    ends = [ts for _, kind, ts in steps if kind in (DagsterEventType.STEP_SUCCESS.value,
                                                    DagsterEventType.STEP_FAILURE.value)]
    assert starts and ends, f"run {run_id} has no step events: {steps}"
    return StepWindow(run_id, min(starts), max(ends), tuple(steps))


def dequeued_at(instance: dg.DagsterInstance, run_id: str) -> float | None:
    """When the daemon took the run off the queue and launched it (RUN_STARTING; None: it was never queued)."""
    if not instance.all_logs(run_id, of_type=DagsterEventType.RUN_ENQUEUED):
        return None
    entries = instance.all_logs(run_id, of_type=DagsterEventType.RUN_STARTING)
    return entries[0].timestamp if entries else None


def run_worker_pid(instance: dg.DagsterInstance, run_id: str, timeout_s: float = 120) -> int:
    """The pid in the run's 'Started process for run (pid: N)' engine event."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
            if match := _PID.search(entry.message or entry.dagster_event.message or ""):
                return int(match.group(1))
        time.sleep(0.3)
    raise AssertionError(f"no run worker pid logged for {run_id} within {timeout_s:.0f} s")


def step_started(instance: dg.DagsterInstance, run_id: str, step_key: str, timeout_s: float = 300) -> float:
    """Wait for the step's STEP_START; its timestamp."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for key, kind, ts in step_events(instance, run_id):
            if key == step_key and kind == DagsterEventType.STEP_START.value:
                return ts
        time.sleep(0.3)
    raise AssertionError(f"step {step_key} of {run_id} did not start within {timeout_s:.0f} s")


def wait_http(url: str, process, log, timeout_s: float = 240) -> None:
    """Wait until `url` answers; fail with the log's tail when the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer: {log.read_text()[-3000:]}") from None
            time.sleep(1)
