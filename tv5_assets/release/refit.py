"""The global models' own clock: a refit (`whole_graph`, which ends with the gated `release`) every week, and
sooner when a day's `served_recall_drift` check finds the served recall drifting.

The sensor's decision is a plain function (`refit_decision`) of the latest completed drift evaluation and the
creation time of the latest `whole_graph` run, so it is tested without a daemon. A run requested, queued or
started after the failed evaluation answers it: the sensor asks again only for a later failed evaluation. The
run key names the evaluation (partition and storage id), so the daemon never launches two runs for one failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from tv5_assets.release.day_checks import ASSET, SERVED_RECALL_DRIFT

WHOLE_GRAPH = "whole_graph"
REFIT_SENSOR = "refit_on_recall_drift"
WEEKLY_REFIT = "weekly_refit"
DRIFT_CHECK = dg.AssetCheckKey(dg.AssetKey(ASSET), SERVED_RECALL_DRIFT)
COMPLETED = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
REFIT_TAG = "tv5/refit"


@dataclass(frozen=True)
class DriftEvaluation:
    """One completed `served_recall_drift` evaluation."""

    storage_id: int
    partition: str | None
    passed: bool
    timestamp: float  # seconds since the epoch


@dataclass(frozen=True)
class RefitDecision:
    run_key: str | None  # None: no run to request
    reason: str


def refit_decision(latest: DriftEvaluation | None, last_refit_created: float | None) -> RefitDecision:
    """Request a refit when the latest drift evaluation failed and no `whole_graph` run was created after it."""
    if latest is None:
        return RefitDecision(None, f"no {SERVED_RECALL_DRIFT} evaluation yet")
    day = latest.partition or "unpartitioned"
    if latest.passed:
        return RefitDecision(None, f"the latest {SERVED_RECALL_DRIFT} evaluation (day {day}) passed")
    if last_refit_created is not None and last_refit_created >= latest.timestamp:
        return RefitDecision(None, f"a {WHOLE_GRAPH} run was created after the failed evaluation of day {day}")
    return RefitDecision(f"{SERVED_RECALL_DRIFT}:{day}:{latest.storage_id}",
                         f"served recall drifted on day {day} and no {WHOLE_GRAPH} run has started since")


def latest_evaluation(instance: dg.DagsterInstance) -> DriftEvaluation | None:
    """The latest completed drift evaluation of any day (a planned one, still running, does not count)."""
    records = instance.event_log_storage.get_asset_check_execution_history(DRIFT_CHECK, limit=1, status=COMPLETED)
    if not records:
        return None
    record = records[0]
    timestamp = record.event.timestamp if record.event is not None else record.create_timestamp
    return DriftEvaluation(record.id, record.partition, record.status == AssetCheckExecutionRecordStatus.SUCCEEDED,
                           float(timestamp))


def last_refit_created(instance: dg.DagsterInstance, job_name: str = WHOLE_GRAPH) -> float | None:
    """When the latest `whole_graph` run (whatever its status, queued included) was created; None if never."""
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=job_name), limit=1)
    return records[0].create_timestamp.timestamp() if records else None


def refit_on_recall_drift(job_name: str = WHOLE_GRAPH,
                          default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING
                          ) -> dg.SensorDefinition:
    """The sensor that answers a failed `served_recall_drift` evaluation with one `whole_graph` run."""

    @dg.sensor(
        name=REFIT_SENSOR,
        job_name=job_name,
        minimum_interval_seconds=60,
        default_status=default_status,
        description=(
            f"Requests a `{job_name}` run (the global models refitted from `ratings` and published through the "
            f"release gate) when the latest `{ASSET}` `{SERVED_RECALL_DRIFT}` evaluation failed and no "
            f"`{job_name}` run was created since; one run per failed evaluation (its run key)."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        latest = latest_evaluation(context.instance)
        decision = refit_decision(latest, last_refit_created(context.instance, job_name))
        if decision.run_key is None:
            return dg.SensorResult(skip_reason=decision.reason)
        context.log.info(f"requesting {job_name}: {decision.reason}")
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=decision.run_key,
                                                           tags={REFIT_TAG: decision.run_key})])

    return _sensor


weekly_refit = dg.ScheduleDefinition(
    name=WEEKLY_REFIT, job_name=WHOLE_GRAPH, cron_schedule="0 3 * * 0", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING, tags={REFIT_TAG: WEEKLY_REFIT},
    description="Refits the global models every Sunday at 03:00 UTC: a `whole_graph` run from `ratings`, which "
                "ends with `release` (published only when the gate's blocking checks pass).",
)
