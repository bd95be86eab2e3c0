"""The day sensor: one `daily` run per delivered version of an arrival day (thin Dagster wiring).

A day's run key is its files' names and checksums, so a corrected re-delivery (new bytes) is a new run that
replaces the day, while the same files seen again are the same key, which the daemon never runs twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import dagster as dg

from tv5_assets.ingestion.day_assets import ARRIVAL_DAYS
from tv5_assets.ingestion.days import DayFile, scan_days

DAY_SENSOR = "arrival_days_sensor"
DAILY_JOB = "daily"
DAY_FILES_TAG = "tv5/day_files"


def day_requests(folder: Path) -> tuple[list[tuple[date, str]], list[Path]]:
    """(day, run key) of each day with files in `folder`, in day order, and the entries that are no day file."""
    found, other = scan_days(folder)
    by_day: dict[date, list[DayFile]] = defaultdict(list)
    for day_file in found:
        by_day[day_file.day].append(day_file)
    return [(day, "+".join(f.run_key for f in files)) for day, files in sorted(by_day.items())], other


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
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        folder = Path(days_dir).absolute()
        requests, other = day_requests(folder)
        for path in other:
            if not path.name.startswith("."):
                context.log.warning(f"{path} is not a day file (ratings-YYYY-MM-DD.csv or erasures-YYYY-MM-DD.csv)")
        if not requests:
            return dg.SkipReason(f"no day files in {folder}")
        known = set(context.instance.get_dynamic_partitions(ARRIVAL_DAYS.name))
        new_days = [day.isoformat() for day, _ in requests if day.isoformat() not in known]
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=key, partition_key=day.isoformat(), tags={DAY_FILES_TAG: key})
                          for day, key in requests],
            dynamic_partitions_requests=[ARRIVAL_DAYS.build_add_request(new_days)] if new_days else [],
        )

    return _sensor
