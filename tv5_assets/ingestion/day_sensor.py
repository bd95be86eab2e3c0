"""The day sensor: one `daily` run per delivered version of an arrival day (thin Dagster wiring).

A day's run key is its files' names and checksums, so a corrected re-delivery (new bytes) is a new run that
replaces the day, while the same files seen again are the same key, which is not requested again (the cursor,
`day_watch`) and which the daemon would never run twice.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from tv5_assets.ingestion.day_assets import ARRIVAL_DAYS
from tv5_assets.ingestion.day_watch import DayCursor, plan_days

DAY_SENSOR = "arrival_days_sensor"
DAILY_JOB = "daily"
DAY_FILES_TAG = "tv5/day_files"


def arrival_days_sensor(days_dir: str, job_name: str = DAILY_JOB,
                        default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING) -> dg.SensorDefinition:
    """Watches `days_dir` for day files (`ratings-YYYY-MM-DD.csv`, `erasures-YYYY-MM-DD.csv`)."""

    @dg.sensor(
        name=DAY_SENSOR,
        job_name=job_name,
        minimum_interval_seconds=30,
        default_status=default_status,
        description=(
            f"Adds an `arrival_days` partition for each day with files in {days_dir} and requests one `{job_name}` "
            "run for it, keyed by the day's file names and checksums: a corrected re-delivery runs again and "
            "replaces the day, the same files never run twice. Files land by rename, so a file with a day file's "
            "name is complete."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        folder = Path(days_dir).absolute()
        plan = plan_days(folder, DayCursor.from_json(context.cursor))
        for path in plan.other:
            if not path.name.startswith("."):
                context.log.warning(f"{path} is not a day file (ratings-YYYY-MM-DD.csv or erasures-YYYY-MM-DD.csv)")
        cursor = plan.cursor.to_json()
        if not plan.requests:
            return dg.SensorResult(skip_reason=f"no new or corrected day file in {folder} "
                                   f"({len(plan.cursor.requested)} days requested before)", cursor=cursor)
        known = set(context.instance.get_dynamic_partitions(ARRIVAL_DAYS.name))
        new_days = [day.isoformat() for day, _ in plan.requests if day.isoformat() not in known]
        for day, key in plan.requests:
            context.log.info(f"day {day}: requesting {key}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=key, partition_key=day.isoformat(), tags={DAY_FILES_TAG: key})
                          for day, key in plan.requests],
            dynamic_partitions_requests=[ARRIVAL_DAYS.build_add_request(new_days)] if new_days else [],
            cursor=cursor,
        )

    return _sensor
