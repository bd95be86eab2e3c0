"""Asset checks of the graph: they query Neo4j through the `neo4j` resource, on the slot the latest
materialization staged (`staged_version`; see slots), never on what readers are served.

Each check stands alone (`@asset_check(asset="graph")`) and takes the resource plus the *source*
assets it compares against, never `graph` itself (the asset returns no value; a parameter named
after it would make Dagster load it through the IO manager). Everything blocks except the
explanation latency, which warns.
"""

import contextlib
import functools
from collections.abc import Iterator

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.core.checking import RuleResult, check_result, latest_metadata, staged_version
from tv5_assets.core.pools import GRAPH_POOL
from tv5_assets.graph_store import cypher, model, rules, slots, stages
from tv5_assets.graph_store.assets import VERSION
from tv5_assets.graph_store.loader import live_counts, time_explanation
from tv5_assets.graph_store.resources import Neo4jClient, Neo4jResource

ASSET = "graph"
LOAD_COMPLETE = "load_complete"
NODE_COUNTS = "node_counts_match_sources"
RELATIONSHIP_COUNTS = "relationship_counts_match_sources"
SCHEMA = "constraints_and_indexes_online"
ENDPOINTS = "no_relationship_with_missing_endpoint"
EXPLANATION = "explanation_query_under_1s"

# every check audits the graph: in its pool, so no other run loads it between the load and these audits
graph_check = functools.partial(dg.asset_check, asset=ASSET, pool=GRAPH_POOL)

_SOURCES = {name: dg.AssetIn(name) for name in ("movies", "ratings", "genome", "demographics", "availability")}


class ExplanationConfig(dg.Config):
    media_id: int = Field(default=0, description="title X to explain from; 0: the most-rated title")
    platform: str = Field(default="", description="platform P; empty: the one with the most titles")
    min_rating: float = Field(default=4.0, description="'liked' means rated at least this")
    max_users: int = Field(default=1_000, description="fans of X followed (bounds the work of one query)")
    limit: int = 10
    runs: int = Field(default=3, description="timed runs; the median is compared with the budget")
    budget_ms: float = Field(default=1_000.0, description="warn when the median latency exceeds this")


def _result(name: str, rule: RuleResult, warn_only: bool = False) -> dg.AssetCheckResult:
    return check_result(ASSET, name, rule, warn_only=warn_only)


def _materialized_version(context: dg.AssetCheckExecutionContext) -> str | None:
    return (latest_metadata(context, ASSET) or {}).get(VERSION)


@contextlib.contextmanager
def audited(context: dg.AssetCheckExecutionContext, neo4j: Neo4jResource) -> Iterator[tuple[Neo4jClient, str | None]]:
    """The server and slot to audit: the latest materialization's stage (the served slot for a graph that predates
    slots), in the live database (online load) or on its own stage's audit server (import tool, not yet swapped in)."""
    slot = staged_version(context, ASSET) or slots.served_slot(neo4j.client)
    stage = stages.Stage(stages.stages_root(neo4j.local_home), slot) if slot and neo4j.local_home else None
    if stage is None or not stage.built():
        yield neo4j.client, slot
        return
    connection = stage.serve(neo4j.password, context.log.info)
    with Neo4jClient(connection.uri, connection.user, connection.password) as client:
        yield client, slot


@graph_check(name=LOAD_COMPLETE, blocking=True,
             description="the staged slot's (:LoadState {key: 'graph/<slot>'}) marker says complete, for the data "
                         "version the last materialization reported (a half-loaded or replaced slot fails)")
def load_complete(context: dg.AssetCheckExecutionContext, neo4j: Neo4jResource) -> dg.AssetCheckResult:
    with audited(context, neo4j) as (client, slot):
        records = client.read(cypher.READ_LOAD_STATE, {"key": slots.marker_key(slot)}) if slot else []
    rule = rules.load_complete(records[0] if records else None, _materialized_version(context))
    rule.metadata["slot"] = slot or ""
    return _result(LOAD_COMPLETE, rule)


@graph_check(name=NODE_COUNTS, blocking=True, additional_ins=_SOURCES,
             description="nodes per label equal their sources: Media = movies, User = distinct users of "
                         "demographics and ratings, Genre = distinct genres, Tag = distinct genome tags, "
                         "Platform = distinct availability platforms")
def node_counts(context: dg.AssetCheckExecutionContext, neo4j: Neo4jResource, movies: pl.LazyFrame,
                ratings: pl.LazyFrame, genome: pl.LazyFrame, demographics: pl.LazyFrame,
                availability: pl.LazyFrame) -> dg.AssetCheckResult:
    expected = rules.expected_counts(movies, ratings, genome, demographics, availability)
    with audited(context, neo4j) as (client, slot):
        loaded = live_counts(client, slot)
    return _result(NODE_COUNTS, rules.counts_match("node", [s.label for s in model.NODES], expected, loaded))


@graph_check(name=RELATIONSHIP_COUNTS, blocking=True, additional_ins=_SOURCES,
             description="relationships per type equal their source rows: RATED = ratings rows, HAS_GENRE = "
                         "distinct (movie, genre) pairs, HAS_TAG = genome rows, AVAILABLE_ON = availability rows")
def relationship_counts(context: dg.AssetCheckExecutionContext, neo4j: Neo4jResource, movies: pl.LazyFrame,
                        ratings: pl.LazyFrame, genome: pl.LazyFrame, demographics: pl.LazyFrame,
                        availability: pl.LazyFrame) -> dg.AssetCheckResult:
    expected = rules.expected_counts(movies, ratings, genome, demographics, availability)
    with audited(context, neo4j) as (client, slot):
        loaded = live_counts(client, slot)
    return _result(RELATIONSHIP_COUNTS, rules.counts_match("relationship", [s.type for s in model.RELATIONSHIPS],
                                                           expected, loaded))


@graph_check(name=SCHEMA, blocking=True,
             description="a uniqueness constraint per node key (Media.id, User.id, Genre.name, Tag.id, "
                         "Platform.name, LoadState.key, Release.key), the same on the staged slot's labels, and the "
                         "six lookup indexes exist, on the right label and property, and are ONLINE")
def constraints_and_indexes(context: dg.AssetCheckExecutionContext, neo4j: Neo4jResource) -> dg.AssetCheckResult:
    with audited(context, neo4j) as (client, slot):
        return _result(SCHEMA, rules.schema_online(client.read(cypher.SHOW_SCHEMA), slot))


@graph_check(name=ENDPOINTS, blocking=True,
             additional_ins={k: _SOURCES[k] for k in ("movies", "ratings", "genome", "availability")},
             description="every relationship starts and ends at the labels of its type (count store), and "
                         "every node key that a source row points at exists (a missing one means the "
                         "load's MATCH dropped that row)")
def endpoints(context: dg.AssetCheckExecutionContext, neo4j: Neo4jResource, movies: pl.LazyFrame,
              ratings: pl.LazyFrame, genome: pl.LazyFrame, availability: pl.LazyFrame) -> dg.AssetCheckResult:
    keys = rules.endpoint_keys(movies, ratings, genome, availability)
    with audited(context, neo4j) as (client, slot):
        relationship_counts = {spec.type: client.read(cypher.count_relationships(spec, slot))[0]
                               for spec in model.RELATIONSHIPS}
        missing = {spec.label: client.read(cypher.missing_nodes(spec, slot), {"keys": keys[spec.label]})[0]
                   for spec in model.NODES}
    return _result(ENDPOINTS, rules.endpoints_correct(relationship_counts, missing))


@graph_check(name=EXPLANATION, blocking=False,
             description="'titles rated >= 4 by (up to 1,000) users who rated X >= 4, available on P' returns "
                         "titles with a median latency under 1 s over 3 runs (X: the most-rated title, P: the "
                         "platform with most titles, unless configured); latencies recorded; warns")
def explanation_latency(context: dg.AssetCheckExecutionContext, neo4j: Neo4jResource,
                        config: ExplanationConfig) -> dg.AssetCheckResult:
    with audited(context, neo4j) as (client, slot):
        seed = client.read(cypher.explanation_seed(slot))
        platform = client.read(cypher.busiest_platform(slot))
        media_id = config.media_id or (seed[0]["media_id"] if seed else -1)
        platform_name = config.platform or (platform[0]["platform"] if platform else "")
        parameters = {"media_id": media_id, "platform": platform_name, "min_rating": config.min_rating,
                      "max_users": config.max_users, "limit": config.limit}
        found, latencies = time_explanation(client, parameters, config.runs, slot)
    rule = rules.explanation_fast(latencies, len(found), config.budget_ms)
    rule.metadata.update({"media_id": media_id, "platform": platform_name,
                          "top_titles": [r["title"] for r in found[:5]]})
    return _result(EXPLANATION, rule, warn_only=True)


asset_checks = [load_complete, node_counts, relationship_counts, constraints_and_indexes, endpoints,
                explanation_latency]
