"""Vector store stage: the media and user collections in Milvus (thin Dagster wiring).

Both assets write to Milvus only (they return `MaterializeResult`: nothing goes through the IO
manager) and report a data version computed from their rows, schema and index, so an unchanged input
gives an unchanged version.
"""


import time

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.core.automation import FOLLOW_INPUTS, SERVED_FRESHNESS
from tv5_assets.core.checking import staged_version
from tv5_assets.core.lake import DataLake
from tv5_assets.core.metadata import markdown_table
from tv5_assets.core.outages import retry_step_on
from tv5_assets.core.pools import milvus_pool
from tv5_assets.core.releases import STAGED, Registry, ensure_free_space
from tv5_assets.core.versioning import versioned_asset
from tv5_assets.vector_store.batching import byte_batches, row_bytes
from tv5_assets.vector_store.rebuild import stage
from tv5_assets.vector_store.resources import MILVUS_STEP_TAGS, MilvusResource, MilvusUnavailableError, lite_path
from tv5_assets.vector_store.rows import Rows, content_version, media_rows, user_rows
from tv5_assets.vector_store.schema import HYBRID_MEDIA, HYBRID_USERS, MEDIA, USERS, VECTOR_FIELD, CollectionSpec

GROUP = "vector_store"
OWNERS = ["team:data-platform"]
KEY_PREFIX = "milvus"

_REBUILD_RULES = (
    "Staged, never served by this asset: the rows go into a new collection "
    "`<alias>__v<time>_<token>_c<content>` in insert "
    "requests of at most `batch_bytes` (default 16 MiB) each, then flush, an index (HNSW, M=16, "
    "efConstruction=200, metric COSINE by default, set on the `milvus` resource; a collection's spec may set "
    "its own, see its index metadata), load, and an exact "
    "entity count, with no alias: readers keep searching the alias. The checks audit the staged collection "
    "(`staged_version` in the metadata) and the `release` asset moves every store's alias at once when every "
    "blocking check of the lineage passed. Clean-up drops only versions that are neither served, nor held by a "
    "retained release, nor staged again: leftovers of killed builds and stages never published. When a version "
    "already holds exactly these rows, schema and index (the content version in its name), complete and "
    "searchable, it is staged again instead of a new build (config `force_rebuild`). "
    "Runs on Milvus Lite (default data/milvus.db) or a Milvus server (TV5_MILVUS_URI)."
)


class CollectionConfig(dg.Config):
    force_rebuild: bool = Field(
        default=False,
        description="build a new collection even when a version (served, retained or staged before) already "
        "holds these exact rows, schema and index, complete and searchable; by default that one is staged again",
    )


def _stage(context: dg.AssetExecutionContext, milvus: MilvusResource, lake: DataLake, spec: CollectionSpec,
           rows: Rows, extra: dict[str, object], force: bool) -> dg.MaterializeResult:
    started = time.perf_counter()
    alias = milvus.alias_name(spec.alias)
    version = content_version(rows, milvus.index_for(spec), spec)
    batches = byte_batches(row_bytes(rows.frame), milvus.batch_bytes)
    keep = Registry.in_lake(lake.base_dir).retained_versions(context.asset_key.to_user_string())
    if (local := lite_path(milvus.uri)) is not None:  # Milvus Lite: the versions share the local file system
        ensure_free_space(local.parent, 2 * rows.frame.estimated_size(), f"a version of {alias}")
    with retry_step_on((MilvusUnavailableError,)):  # a server down longer than the client's retries
        report = stage(milvus, spec, alias, rows, batches, keep, log=context.log.info, content=version, force=force,
                       last_staged=staged_version(context, context.asset_key))
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version),
        metadata={
            STAGED: report.collection,
            "alias": alias,
            "served_collection": report.previous or "",
            "reused": report.kept,
            "dropped_leftovers": dg.MetadataValue.json(report.dropped_stale),
            "backend": milvus.describe(),
            "entity_count": report.entities,
            "dimension": rows.dimension,
            "index": dg.MetadataValue.json(milvus.index_for(spec).describe()),
            "batches": report.batches,
            "batch_bytes": milvus.batch_bytes,
            "largest_batch_rows": report.largest_batch_rows,
            "insert_s": report.seconds.get("insert", 0.0),
            "flush_s": report.seconds.get("flush", 0.0),
            "index_s": report.seconds.get("index", 0.0),
            "load_time_s": report.seconds.get("load", 0.0),
            "build_s": report.seconds.get("total", 0.0),
            "vectors_per_s": round(report.vectors_per_s, 1),
            "preview": dg.MetadataValue.md(markdown_table(rows.frame.drop(VECTOR_FIELD))),
            "wall_time_s": round(time.perf_counter() - started, 3),
            **extra,
        },
    )


def media_collection(spec: CollectionSpec, description: str) -> dg.AssetsDefinition:
    """A movie collection: one entity per vector of `spec.source`, with title, year, genres and platforms."""

    @versioned_asset(
        key=[KEY_PREFIX, spec.alias],
        ins={"source_vectors": dg.AssetIn(spec.source), "movies": dg.AssetIn("movies"),
             "availability": dg.AssetIn("availability")},
        group_name=GROUP,
        kinds={"milvus"},
        op_tags=MILVUS_STEP_TAGS,
        pool=milvus_pool(spec.alias),
        owners=OWNERS,
        automation_condition=FOLLOW_INPUTS,
        freshness_policy=SERVED_FRESHNESS,
        description=description + " " + _REBUILD_RULES,
    )
    def collection(context: dg.AssetExecutionContext, config: CollectionConfig, milvus: MilvusResource,
                   lake: DataLake, source_vectors: pl.DataFrame, movies: pl.DataFrame,
                   availability: pl.DataFrame) -> dg.MaterializeResult:
        rows = media_rows(source_vectors, movies, availability, spec)
        return _stage(context, milvus, lake, spec, rows, {
            "movies_on_a_platform": int((rows.frame["platforms"].list.len() > 0).sum()),
            "movies_without_year": int((rows.frame["year"] == 0).sum()),
        }, config.force_rebuild)

    return collection


def user_collection(spec: CollectionSpec, description: str) -> dg.AssetsDefinition:
    """A user collection: one entity per vector of `spec.source`, with archetype and country."""

    @versioned_asset(
        key=[KEY_PREFIX, spec.alias],
        ins={"source_vectors": dg.AssetIn(spec.source), "demographics": dg.AssetIn("demographics")},
        group_name=GROUP,
        kinds={"milvus"},
        op_tags=MILVUS_STEP_TAGS,
        pool=milvus_pool(spec.alias),
        owners=OWNERS,
        automation_condition=FOLLOW_INPUTS,
        freshness_policy=SERVED_FRESHNESS,
        description=description + " " + _REBUILD_RULES,
    )
    def collection(context: dg.AssetExecutionContext, config: CollectionConfig, milvus: MilvusResource,
                   lake: DataLake, source_vectors: pl.DataFrame, demographics: pl.DataFrame) -> dg.MaterializeResult:
        rows = user_rows(source_vectors, demographics, spec)
        return _stage(context, milvus, lake, spec, rows, {
            "users_without_demographics": int((rows.frame["country"] == "").sum()),
        }, config.force_rebuild)

    return collection


media_vectors = media_collection(MEDIA, (
    "The `media_vectors` collection, behind the alias of that name: one entity per content vector, "
    "id = movie_id (INT64 primary key), vector FLOAT_VECTOR(384), title (display title, VARCHAR), year "
    "(INT32, 0 when unknown), genres and platforms (ARRAY of VARCHAR; platforms are the distinct "
    "platforms of `availability`, empty when none), for searches filtered by platform, year or genre; "
    "'more like this' searches it with a movie's own vector."))
user_vectors = user_collection(USERS, (
    "The `user_vectors` collection, behind the alias of that name: one entity per user vector, id = "
    "user_id (INT64 primary key), vector FLOAT_VECTOR(384), archetype and country (VARCHAR, from "
    "`demographics`; empty for a user it lacks), for searches filtered by archetype or country."))
hybrid_media_vectors = media_collection(HYBRID_MEDIA, (
    "The `hybrid_media_vectors` collection, behind the alias of that name: the search side of the 'for you' "
    "row. One entity per hybrid movie vector (content + collaborative, 448-d by default; metric IP, HNSW M=32), id = "
    "movie_id, with the same scalar fields as `media_vectors` (title, year, genres, platforms) for filtered "
    "rows such as 'for you on TV5MONDE'. Query it with the user's vector from `hybrid_user_vectors`."))
hybrid_user_vectors = user_collection(HYBRID_USERS, (
    "The `hybrid_user_vectors` collection, behind the alias of that name: the query side of the 'for you' "
    "row (fetch a user's vector by id, search `hybrid_media_vectors` with it) and 'users like you' "
    "searches. id = user_id, archetype and country as in `user_vectors`."))


assets = [media_vectors, user_vectors, hybrid_media_vectors, hybrid_user_vectors]
