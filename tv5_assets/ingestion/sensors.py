"""The source sensor: one `whole_graph` run per new MovieLens release content (thin Dagster wiring).

What counts as new, complete or malformed, and the cursor, are in `source_watch` (no Dagster there).
Each first sighting of a content is also an observation of `movielens_release` (source, fingerprint,
first_seen), which `newest_seen` reads back: a freshness check compares it with the data version the
graph serves.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg

from tv5_assets.ingestion.assets import movielens_release
from tv5_assets.ingestion.release import REQUIRED_FILES
from tv5_assets.ingestion.source_watch import Plan, SeenSource, WatchCursor, candidates, plan, skip_message

RELEASE_KEY = movielens_release.key
DATA_VERSION_TAG = "dagster/data_version"  # the tag Dagster puts the data version in on each materialization
SENSOR_NAME = "movielens_new_release"


def served_version(instance: dg.DagsterInstance) -> str | None:
    """The data version (content fingerprint) of the latest `movielens_release` materialization."""
    records = instance.fetch_materializations(RELEASE_KEY, limit=1).records
    event = records[0].asset_materialization if records else None
    return event.tags.get(DATA_VERSION_TAG) if event is not None and event.tags else None


def observation(seen: SeenSource) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=RELEASE_KEY,
        description=f"source sensor: new release content in {seen.source}",
        metadata={
            "source": dg.MetadataValue.path(seen.source),
            "name": seen.name,
            "fingerprint": seen.fingerprint,
            "first_seen": dg.MetadataValue.timestamp(seen.first_seen),
        },
    )


def newest_seen(instance: dg.DagsterInstance) -> SeenSource | None:
    """The release content the source sensor recorded last, or None when it has recorded none."""
    cursor = None
    while True:
        result = instance.fetch_observations(RELEASE_KEY, limit=100, cursor=cursor)
        for record in result.records:
            event = record.asset_observation
            meta = event.metadata if event is not None else {}
            if "fingerprint" in meta and "first_seen" in meta:
                return SeenSource(
                    source=str(meta["source"].value), name=str(meta["name"].value),
                    fingerprint=str(meta["fingerprint"].value), first_seen=float(meta["first_seen"].value),
                )
        if not result.has_more:
            return None
        cursor = result.cursor


def _result(decided: Plan, landing: Path, job_name: str) -> dg.SensorResult:
    events = [observation(seen) for seen in decided.sightings]
    cursor = decided.cursor.to_json()
    if not decided.requests:
        return dg.SensorResult(skip_reason=skip_message(decided, landing), asset_events=events, cursor=cursor)
    requests = [dg.RunRequest(run_key=r.run_key, job_name=job_name, run_config=r.run_config, tags=r.tags)
                for r in decided.requests]
    return dg.SensorResult(run_requests=requests, asset_events=events, cursor=cursor)


def source_release_sensor(
    landing_dir: str, configured_source: str, job_name: str = "whole_graph",
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """Watches `landing_dir` (each sub-directory a release) and `configured_source` when it is a directory."""

    @dg.sensor(
        name=SENSOR_NAME,
        job_name=job_name,
        minimum_interval_seconds=30,
        default_status=default_status,
        description=(
            f"Requests one `{job_name}` run per new MovieLens release content found in {landing_dir} (one "
            "sub-directory per release) or in TV5_MOVIELENS_SOURCE when it is a directory. A directory is "
            f"taken once it holds {', '.join(REQUIRED_FILES)} and either a `.complete` "
            "marker written last or files unchanged for one tick; content is identified by the asset's "
            "data version, so the same content never runs twice. Requests nothing while the folder is empty."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        landing = Path(landing_dir).absolute()
        decided = plan(
            candidates(landing, configured_source),
            WatchCursor.from_json(context.cursor),
            now=time.time(),
            served=served_version(context.instance),
        )
        for line in decided.problems:
            context.log.warning(line)
        for key in decided.hashed:
            context.log.info(f"hashed {key}")
        for r in decided.requests:
            context.log.info(f"new release content {r.fingerprint} in {r.directory}: requesting {r.run_key}")
        return _result(decided, landing, job_name)

    return _sensor
