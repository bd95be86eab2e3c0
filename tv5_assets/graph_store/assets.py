"""Graph store stage: the `graph` asset, the knowledge graph in Neo4j (thin Dagster wiring)."""


import time
from typing import Literal

import dagster as dg
import polars as pl
from neo4j.exceptions import ServiceUnavailable, SessionExpired
from pydantic import Field

from tv5_assets.core.automation import FOLLOW_INPUTS, SERVED_FRESHNESS
from tv5_assets.core.checking import staged_version
from tv5_assets.core.lake import DataLake
from tv5_assets.core.outages import retry_step_on
from tv5_assets.core.pools import GRAPH_POOL
from tv5_assets.core.releases import STAGED, Registry
from tv5_assets.core.versioning import versioned_asset
from tv5_assets.graph_store import cypher, model, slots, stages
from tv5_assets.graph_store.loader import discard_slots, import_graph, load_graph
from tv5_assets.graph_store.resources import Neo4jAuthError, Neo4jResource, Neo4jUnavailableError
from tv5_assets.graph_store.rows import graph_rows

GROUP = "graph_store"
OWNERS = ["team:data-platform"]
VERSION = "version"  # metadata key: the load version the checks compare the marker with


class GraphLoadConfig(dg.Config):
    force_reload: bool = Field(
        default=False,
        description="rebuild even when the graph already holds a complete load of the same data version",
    )
    clear_batch_rows: int = Field(default=slots.DROP_BATCH_ROWS,
                                  description="nodes (each with its relationships) per inner transaction when clearing "
                                  "or dropping a slot")
    method: Literal["auto", "online", "import"] = Field(
        default="auto",
        description="'auto': the offline import tool when the neo4j resource is the project's own local server "
        "(it is stopped and restarted around the swap) and the graph has at least `import_min_relationships`, "
        "else the online load; 'online': always UNWIND over Bolt; 'import': the import tool, failing when the "
        "server is not local",
    )
    import_min_relationships: int = Field(
        default=1_000_000,
        description="'auto' imports only graphs at least this big: below it the online load is quicker than a "
        "server restart (~20 s)",
    )


@versioned_asset(
    group_name=GROUP,
    kinds={"neo4j"},
    pool=GRAPH_POOL,
    owners=OWNERS,
    automation_condition=FOLLOW_INPUTS,
    freshness_policy=SERVED_FRESHNESS,
    description=(
        "The knowledge graph in Neo4j, rebuilt from movies, ratings, genome, demographics and availability. "
        "Nodes: Media (id, title = display title, year, imdb_id, tmdb_id), User (id, archetype, age_band, "
        "country; every user with a profile or a rating), Genre (name), Tag (id, name; genome tags), Platform "
        "(name, business_model). Relationships: (User)-[:RATED {rating, timestamp (epoch seconds, "
        "UTC), time_of_day (the band's UTC hours: '00-05', '06-11', '12-17', '18-23')}]->(Media), one per "
        "rating; (Media)-[:HAS_GENRE]->(Genre); (Media)-[:HAS_TAG {relevance, "
        "rank}]->(Tag), the genome's top tags; (Media)-[:AVAILABLE_ON {regions, quality, "
        "subtitle_languages}]->(Platform). A uniqueness constraint per node key and range indexes on "
        "Media.title, Media.year, Media.imdb_id, User.archetype, User.country, Platform.business_model. "
        "Staged (online load, any server): the load writes a release slot beside the served graph, its nodes "
        "labelled `Media_<slot>`, `User_<slot>`, ... (`staged_version` names the slot); readers match the public "
        "labels, which only the served slot carries, and `release` moves them in one transaction "
        "(graph_store.slots; `(:Release {key: 'graph'})` names the served slot and release). Clean-up drops only "
        "slots neither served, retained by a release, nor the latest stage. "
        "Full rebuilds of the project's own local server (`scripts/services`) with at least 1M relationships "
        "use the offline import tool instead: "
        "CSV files, `neo4j-admin database import full` into a stage of its own beside the live home "
        "(graph_store.stages), a Neo4j process of its own started on it (loopback, own port: the checks audit "
        "there), the schema created, the counts compared, the load marked complete; `release` swaps it in (the "
        "live server restarts) and keeps the replaced store as the previous release's stage. "
        "Online load: mark (:LoadState {key: 'graph/<slot>'}) incomplete, "
        "create constraints and indexes, CREATE nodes then relationships in columnar UNWIND batches "
        "(`batch_rows` of the neo4j resource, 50,000 by default) with endpoints found through the "
        "uniqueness indexes (each end node once per batch, each start node once per group); relationship "
        "batches are cut on start-node boundaries, so the `write_concurrency` transactions in flight (2) "
        "never share a start node; compare the slot's counts with the rows; mark the load complete. Progress is "
        "logged with rows/s. An interrupted load leaves "
        "its marker incomplete; the next run loads a new slot and drops the half one, so re-runs give the same "
        "counts. A slot already holding a complete load of the same data version (hash of the rows and of the "
        "Cypher) with matching counts is staged again unless `force_reload`."
    ),
)
def graph(
    context: dg.AssetExecutionContext,
    config: GraphLoadConfig,
    neo4j: Neo4jResource,
    lake: DataLake,
    movies: pl.DataFrame,
    ratings: pl.DataFrame,
    genome: pl.DataFrame,
    demographics: pl.DataFrame,
    availability: pl.DataFrame,
) -> dg.MaterializeResult:
    started = time.perf_counter()
    rows = graph_rows(movies, ratings, genome, demographics, availability)
    version = rows.fingerprint(salt=cypher.statements_digest())
    context.log.info(f"graph rows built in {time.perf_counter() - started:.1f} s: {rows.counts()}, version {version}")
    big = sum(rows.counts()[spec.type] for spec in model.RELATIONSHIPS) >= config.import_min_relationships
    server = neo4j.local_server() if config.method == "import" or (config.method == "auto" and big) else None
    if config.method == "import" and server is None:
        raise dg.Failure(f"method 'import' needs the project's own local Neo4j; {neo4j.uri} is not one "
                         "(set method 'online' or 'auto')")
    previous_stage = staged_version(context, context.asset_key) or ""
    keep = Registry.in_lake(lake.base_dir).retained_versions(context.asset_key.to_user_string())
    root = stages.stages_root(neo4j.local_home) if neo4j.local_home else None
    clear_rows, log = config.clear_batch_rows, context.log.info
    # a server down longer than the driver's retries: Dagster retries the step; refused credentials fail once
    with retry_step_on((Neo4jUnavailableError, ServiceUnavailable, SessionExpired), permanent=(Neo4jAuthError,)):
        dropped = discard_slots(neo4j.client, keep | {previous_stage}, clear_rows, log, stage_root=root)
        if server is not None:
            report = import_graph(neo4j.client, server, rows, version, root, neo4j.password, force=config.force_reload)
        else:
            report = load_graph(neo4j.client, rows, version, batch_rows=neo4j.batch_rows, clear_batch_rows=clear_rows,
                                force=config.force_reload, concurrency=neo4j.write_concurrency)
        # the earlier stage, superseded by this one and never published
        dropped += discard_slots(neo4j.client, keep | {report.slot}, clear_rows, log, only={previous_stage},
                                 stage_root=root)
    nodes = {spec.label: report.counts[spec.label] for spec in model.NODES}
    relationships = {spec.type: report.counts[spec.type] for spec in model.RELATIONSHIPS}
    metadata: dict[str, object] = {
        VERSION: version,
        STAGED: report.slot,
        "served_slot": slots.served_slot(neo4j.client) or "",
        "staged_in": "a store of its own (import tool), audited on its own server" if server is not None
        else "the live database, under the slot's labels",
        "dropped_slots": dg.MetadataValue.json(dropped),
        "skipped_unchanged": report.skipped,
        "node_counts": dg.MetadataValue.json(nodes),
        "relationship_counts": dg.MetadataValue.json(relationships),
        "nodes": sum(nodes.values()),
        "relationships": sum(relationships.values()),
        **{f"nodes/{label}": n for label, n in nodes.items()},
        **{f"relationships/{rel}": n for rel, n in relationships.items()},
        "uri": neo4j.uri,
        "batch_rows": neo4j.batch_rows,
        "write_concurrency": neo4j.write_concurrency,
        "method": "import tool (offline rebuild of the local server)" if server is not None else "online (UNWIND)",
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    if not report.skipped:
        metadata["rows_per_s"] = dg.MetadataValue.json({k: round(v) for k, v in report.rows_per_s.items()})
        metadata["seconds"] = dg.MetadataValue.json({k: round(v, 2) for k, v in report.seconds.items()})
        metadata["rated_rows_per_s"] = round(report.rows_per_s[model.RATED.type])
        metadata["retries"] = report.retries
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(version))


assets = [graph]
