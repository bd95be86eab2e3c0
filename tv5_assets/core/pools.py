"""One writer per store across runs: the stores' concurrency pools, and the wait of runs that skip the queue.

Every asset and check that writes or audits a store carries that store's pool (`pool=`): one per Milvus
collection, one for the Neo4j graph, one for the AgentDB file. The instances this project sets up
(tv5_assets/platform) enforce pools at *run* granularity with a limit of 1 each: the queued run
coordinator (the daemon: UI, GraphQL, sensors, schedules) keeps a run QUEUED while another run that
touches any of its pools is in progress, so a store's asset and its checks always run with no other
run's step on that store in between.

`dagster job execute` and `dagster asset materialize` run in the calling process and never pass the
queue. `hold_stores`, called when a step opens a store (the Milvus and Neo4j resources' set-up, the
AgentDB asset and check), closes that gap with the same rule: while an *older* active run of the
instance shares a pool with this run, wait (one log line when the wait starts, one when it ends). Older
runs never wait for younger ones, so two runs cannot wait on each other. A store pool with no limit on
a persistent instance fails the step loudly instead of leaving the store silently unguarded.

Hand-written on purpose (about 60 lines): Dagster enforces run-granularity pools only in its queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg
import psutil
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

MILVUS_POOL_PREFIX = "milvus."
GRAPH_POOL = "neo4j.graph"
AGENTDB_POOL = "agentdb"
RELEASE_POOL = "release"  # publishing and rolling back: one at a time (besides the publish lock of its own)
DAYS_POOL = "days"  # a day's delta is computed against the served days: two days' runs must not interleave
DEFAULT_LIMIT = 1
POLL_S = 2.0
ACTIVE = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def milvus_pool(alias: str) -> str:
    """The pool of one Milvus collection (by its alias)."""
    return f"{MILVUS_POOL_PREFIX}{alias}"


# every store the graph writes: the pool is what the instance set-up gives a limit
STORE_POOLS: tuple[str, ...] = (*(milvus_pool(a) for a in ("media_vectors", "user_vectors", "hybrid_media_vectors",
                                                           "hybrid_user_vectors")), GRAPH_POOL, AGENTDB_POOL,
                                   RELEASE_POOL, DAYS_POOL)


class PoolLimitMissingError(dg.Failure):
    """A store pool has no limit on this instance: its store would be unguarded."""


def missing_limits(instance: dg.DagsterInstance, pools: Iterable[str] = STORE_POOLS) -> list[str]:
    """The store pools that have no explicit limit on `instance` (all of them when it keeps no pools)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return list(pools)
    limited = {limit.name for limit in storage.get_pool_limits() if not limit.from_default}
    return [pool for pool in pools if pool not in limited]


def apply_limits(instance: dg.DagsterInstance, limit: int = DEFAULT_LIMIT,
                 pools: Iterable[str] = STORE_POOLS) -> dict[str, int]:
    """Give every store pool an explicit limit (idempotent). Explicit, not `default_limit`: on Postgres a
    default limit crashes two runs making the first claim on a new pool (dagster-io/dagster#33552)."""
    for pool in pools:
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return {pool: limit for pool in pools}


def run_pools(run: Any) -> set[str]:
    """The pools of the steps a run executes (recorded by Dagster when the run is created)."""
    concurrency = getattr(run, "run_op_concurrency", None)
    return set(concurrency.all_pools or []) if concurrency is not None else set()


def run_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid (and when it was recorded) of the process executing `run_id`, from its engine events."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None and str(pid.value).isdigit():
            return int(pid.value), entry.timestamp
    return None


def dead_local_run(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether an active run of a local (SQLite) instance lost its process: killed, nobody left to end it. A
    Postgres instance may serve several hosts, where a pid says nothing: there the daemon's run monitoring
    ends dead runs."""
    if type(instance.run_storage).__name__ != "SqliteRunStorage":
        return False
    found = run_process(instance, run_id)
    if found is None:
        return False
    pid, recorded = found
    try:
        return psutil.Process(pid).create_time() > recorded + 1  # the pid was reused by a younger process
    except psutil.NoSuchProcess:
        return True


def older_conflicts(instance: dg.DagsterInstance, run: Any, log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Ids of the active runs created before `run` that touch one of its pools. A local run whose process is gone
    is marked failed and its pool slots freed (they would otherwise be held for ever), then skipped."""
    pools = run_pools(run)
    if not pools:
        return []
    own = instance.get_run_record_by_id(run.run_id)
    own_created = own.create_timestamp.timestamp() if own is not None else time.time()
    conflicts = []
    for record in instance.get_run_records(filters=RunsFilter(statuses=ACTIVE)):
        other = record.dagster_run
        if other.run_id == run.run_id or not (run_pools(other) & pools):
            continue
        if (record.create_timestamp.timestamp(), other.run_id) < (own_created, run.run_id):
            if dead_local_run(instance, other.run_id):
                message = f"run {other.run_id}'s process is gone (killed); marked failed by run {run.run_id}"
                instance.report_run_failed(other, message)
                instance.event_log_storage.free_concurrency_slots_for_run(other.run_id)  # its pool slots too
                log(message)
                continue
            conflicts.append(other.run_id)
    return conflicts


def hold_stores(instance: dg.DagsterInstance | None, run: Any, log: Callable[[str], None],
                timeout_s: float = 7200.0, poll_s: float = POLL_S) -> float:
    """Fail when a pool of `run` has no limit; wait while an older active run shares one. Returns seconds waited."""
    if instance is None or run is None or instance.is_ephemeral:
        return 0.0  # an ephemeral instance holds this one run only
    pools = sorted(run_pools(run) & set(STORE_POOLS))
    if missing := missing_limits(instance, pools):
        raise PoolLimitMissingError(
            f"store pool(s) {', '.join(missing)} have no limit on this Dagster instance, so two runs could write "
            f"one store at once. Set them: `python -m tv5_assets.platform pools apply` (or `dagster instance "
            f"concurrency set <pool> 1`); scripts/materialize and scripts/services start team do it for you.")
    started, announced = time.monotonic(), False
    while blockers := older_conflicts(instance, run, log):
        if not announced:
            log(f"stores {', '.join(pools)}: waiting for older run(s) {', '.join(blockers)} that use them to end")
            announced = True
        if time.monotonic() - started > timeout_s:
            raise dg.Failure(f"waited {timeout_s:.0f} s for run(s) {', '.join(blockers)} to release "
                             f"{', '.join(pools)}; if they are dead, terminate them in the UI or delete them "
                             "(`dagster run delete <id>`)")
        time.sleep(poll_s)
    waited = time.monotonic() - started
    if announced:
        log(f"stores {', '.join(pools)}: free after {waited:.1f} s")
    return waited
