"""Event-log retention: Dagster OSS keeps every run's events forever; this job deletes finished runs (their
event logs and compute logs go with them) older than `keep_days`, on a daily schedule."""


import datetime as dt

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES, RunsFilter
from pydantic import Field


class RetentionConfig(dg.Config):
    keep_days: int = Field(default=30, gt=0, description="finished runs older than this many days are deleted")
    max_runs: int = Field(default=5_000, gt=0, description="at most this many runs deleted per tick")


@dg.op(description="Delete finished runs (and their event logs) created more than `keep_days` days ago.")
def purge_old_runs_op(context: dg.OpExecutionContext, config: RetentionConfig) -> None:
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=config.keep_days)
    records = context.instance.get_run_records(
        filters=RunsFilter(statuses=list(FINISHED_STATUSES), created_before=cutoff), limit=config.max_runs)
    for record in records:
        context.instance.delete_run(record.dagster_run.run_id)
    # nothing to store: the op returns no output (the graph's IO manager keeps assets, not op results)
    context.log.info(f"deleted {len(records)} finished run(s) created before {cutoff:%Y-%m-%d %H:%M} UTC")


@dg.job(description="Event-log retention: delete finished runs older than keep_days (default 30).")
def purge_old_runs() -> None:
    purge_old_runs_op()


purge_old_runs_daily = dg.ScheduleDefinition(
    name="purge_old_runs_daily", job=purge_old_runs, cron_schedule="15 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs purge_old_runs every day at 03:15 (instance time zone).")
