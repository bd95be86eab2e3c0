"""`day_release`: an arrival day reaches every served store (thin Dagster wiring around `day_publish`)."""


import time
from datetime import date

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG
import polars as pl

from tv5_assets.agentdb.assets import DEFAULT_RECENT_STEPS, FILE_NAME, RECENT_STEPS
from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets.core.checking import latest_metadata
from tv5_assets.core.lake import DataLake
from tv5_assets.core.pools import RELEASE_POOL, hold_stores
from tv5_assets.core.releases import Registry
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.graph_store.resources import Neo4jResource
from tv5_assets.ingestion import served_days
from tv5_assets.ingestion.day_assets import day_asset
from tv5_assets.release import day_publish
from tv5_assets.release.publish import publisher_lock
from tv5_assets.release.warmup import DayWarmup
from tv5_assets.synthetic import day_people
from tv5_assets.vector_store.resources import MILVUS_STEP_TAGS, MilvusResource


@day_asset(
    kinds={"milvus", "neo4j", "agentdb"},
    pool=RELEASE_POOL,
    op_tags=MILVUS_STEP_TAGS,
    description=(
        "The partition's day, published to every served store as one audited delta: the touched users' rows are "
        "journalled (`<lake>/days/journal/<day>/`), then the graph takes the day's RATED changes and new or "
        "removed User nodes (each touched user with their served person: the `demographics` row, else the one "
        "another published day drew, else the day's `day_demographics`; and the day's new Media with their genres "
        "and platforms) in one transaction audited before it commits; `user_vectors` and `hybrid_user_vectors` "
        "upsert and delete the touched users' entities, `media_vectors` and `hybrid_media_vectors` the day's "
        "movies, read back within 1e-6 and searched back; AgentDB's sessions, recent steps and vectors of those "
        "users are replaced in one SQLite transaction and read back by AgentDB. A failed audit or write restores "
        "every store from the journal and fails; then the day is published (`<lake>/days/published/<day>/`, with "
        "the people it drew, which later days' users keep), which later days' deltas read. A killed run's journal "
        "is restored or finished by the next day run. Untouched users are not rewritten; the day waits for any full "
        "publish (the publish lock) and runs one at a time (the release pool)."
    ),
)
def day_release(context: dg.AssetExecutionContext, lake: DataLake, milvus: MilvusResource, neo4j: Neo4jResource,
                day_warmup: dg.ResourceParam[DayWarmup],
                day_rating_changes: pl.DataFrame, day_user_ratings: pl.DataFrame, day_user_vectors: pl.DataFrame,
                day_hybrid_user_vectors: pl.DataFrame, day_demographics: pl.DataFrame, demographics: pl.LazyFrame,
                day_episodes: pl.DataFrame, day_policies: pl.DataFrame, day_ratings: pl.DataFrame,
                day_erasures: pl.DataFrame, day_movies: pl.DataFrame, day_content_vectors: pl.DataFrame,
                day_hybrid_movie_vectors: pl.DataFrame, day_availability: pl.DataFrame) -> dg.MaterializeResult:
    started, day = time.perf_counter(), date.fromisoformat(context.partition_key)  # checked by day_delivery
    warmed = day_warmup.report()  # what the warm-up had done by now (what it had not, the release does itself)
    hold_stores(context.instance, context.run, context.log.info)  # AgentDB's file has no resource that waits
    elsewhere = day_people.published_elsewhere(lake.base_dir, day, demographics)
    profiles = day_publish.touched_profiles(demographics, day_rating_changes, elsewhere, day_demographics)
    movies = day_publish.movies_of_day(lake.base_dir, day, day_movies, day_content_vectors, day_hybrid_movie_vectors,
                                       day_availability)
    inputs = day_publish.DayInputs(day, day_rating_changes, day_user_ratings, day_user_vectors,
                                   day_hybrid_user_vectors, profiles, day_episodes, day_policies, day_ratings,
                                   day_erasures, movies, day_demographics)
    link = lake.path(FILE_NAME)
    if not link.exists():
        raise day_publish.DayReleaseError(f"{link} does not exist: materialize whole_graph and `release` first")
    stores = day_publish.DayStores(
        milvus=milvus, graph=neo4j.client, agentdb=link.resolve(), node=NodeRuntime.locate(),
        recent_steps=int((latest_metadata(context, "agentdb") or {}).get(RECENT_STEPS, DEFAULT_RECENT_STEPS)))
    with publisher_lock(Registry.in_lake(lake.base_dir), context.log.info):
        published = day_publish.publish(lake.base_dir, inputs, stores, context.log.info)
    published_folder = served_days.published_folder(lake.base_dir)
    folder = published_folder / day.isoformat()
    # `ratings` folds the published days in: a new version of them makes it unsynced (the refit's clock)
    context.log_event(dg.AssetObservation(asset_key="published_days", tags={
        DATA_VERSION_TAG: served_days.fingerprint(published_folder)}))
    context.log_event(dg.AssetObservation(asset_key="published_movies", tags={  # `movies` folds them in
        DATA_VERSION_TAG: served_days.movies_fingerprint(published_folder)}))
    return dg.MaterializeResult(
        data_version=dg.DataVersion(f"{day.isoformat()}-{frame_fingerprint(day_rating_changes)}"),
        metadata={
            **published.counts,
            "recovered": ", ".join(published.recovered) or "nothing",
            "published": dg.MetadataValue.path(str(folder)),
            "store_seconds": dg.MetadataValue.json(published.seconds),
            "warmed_before": dg.MetadataValue.json(warmed),
            "wall_time_s": round(time.perf_counter() - started, 3),
        },
    )


assets = [day_release]
