"""Asset checks of the graph: they query Neo4j through the `neo4j` resource.

Each check stands alone (`@asset_check(asset="graph")`) and takes the resource plus the *source*
assets it compares against, never `graph` itself (the asset returns no value; a parameter named
after it would make Dagster load it through the IO manager). Everything blocks except the
explanation latency, which warns.
"""

import functools

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.core.checking import RuleResult, check_result, latest_metadata
from tv5_assets.core.pools import GRAPH_POOL
from tv5_assets.graph_store import cypher, model, rules
from tv5_assets.graph_store.assets import VERSION
from tv5_assets.graph_store.loader import live_counts, time_explanation
from tv5_assets.graph_store.resources import Neo4jResource

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


@graph_check(name=LOAD_COMPLETE, blocking=True,
             description="the (:LoadState {key: 'graph'}) marker says complete, for the data version the last "
                         "materialization reported (a half-loaded or replaced graph fails)")
def load_complete(context: dg.AssetCheckExecutionContext, neo4j: Neo4jResource) -> dg.AssetCheckResult:
    records = neo4j.read(cypher.READ_LOAD_STATE, {"key": model.LOAD_STATE_KEY})
    return _result(LOAD_COMPLETE, rules.load_complete(records[0] if records else None,
                                                      _materialized_version(context)))


@graph_check(name=NODE_COUNTS, blocking=True, additional_ins=_SOURCES,
             description="nodes per label equal their sources: Media = movies, User = distinct users of "
                         "demographics and ratings, Genre = distinct genres, Tag = distinct genome tags, "
                         "Platform = distinct availability platforms")
def node_counts(neo4j: Neo4jResource, movies: pl.LazyFrame, ratings: pl.LazyFrame, genome: pl.LazyFrame,
                demographics: pl.LazyFrame, availability: pl.LazyFrame) -> dg.AssetCheckResult:
    expected = rules.expected_counts(movies, ratings, genome, demographics, availability)
    return _result(NODE_COUNTS, rules.counts_match("node", [s.label for s in model.NODES], expected,
                                                   live_counts(neo4j.client)))


@graph_check(name=RELATIONSHIP_COUNTS, blocking=True, additional_ins=_SOURCES,
             description="relationships per type equal their source rows: RATED = ratings rows, HAS_GENRE = "
                         "distinct (movie, genre) pairs, HAS_TAG = genome rows, AVAILABLE_ON = availability rows")
def relationship_counts(neo4j: Neo4jResource, movies: pl.LazyFrame, ratings: pl.LazyFrame, genome: pl.LazyFrame,
                        demographics: pl.LazyFrame, availability: pl.LazyFrame) -> dg.AssetCheckResult:
    expected = rules.expected_counts(movies, ratings, genome, demographics, availability)
    return _result(RELATIONSHIP_COUNTS, rules.counts_match("relationship", [s.type for s in model.RELATIONSHIPS],
                                                           expected, live_counts(neo4j.client)))


@graph_check(name=SCHEMA, blocking=True,
             description="a uniqueness constraint per node key (Media.id, User.id, Genre.name, Tag.id, "
                         "Platform.name, LoadState.key) and the six lookup indexes exist, on the right "
                         "label and property, and are ONLINE")
def constraints_and_indexes(neo4j: Neo4jResource) -> dg.AssetCheckResult:
    return _result(SCHEMA, rules.schema_online(neo4j.read(cypher.SHOW_SCHEMA)))


@graph_check(name=ENDPOINTS, blocking=True,
             additional_ins={k: _SOURCES[k] for k in ("movies", "ratings", "genome", "availability")},
             description="every relationship starts and ends at the labels of its type (count store), and "
                         "every node key that a source row points at exists (a missing one means the "
                         "load's MATCH dropped that row)")
def endpoints(neo4j: Neo4jResource, movies: pl.LazyFrame, ratings: pl.LazyFrame, genome: pl.LazyFrame,
              availability: pl.LazyFrame) -> dg.AssetCheckResult:
    relationship_counts = {spec.type: neo4j.read(cypher.count_relationships(spec))[0] for spec in model.RELATIONSHIPS}
    keys = rules.endpoint_keys(movies, ratings, genome, availability)
    missing = {spec.label: neo4j.read(cypher.missing_nodes(spec), {"keys": keys[spec.label]})[0]
               for spec in model.NODES}
    return _result(ENDPOINTS, rules.endpoints_correct(relationship_counts, missing))


@graph_check(name=EXPLANATION, blocking=False,
             description="'titles rated >= 4 by (up to 1,000) users who rated X >= 4, available on P' returns "
                         "titles with a median latency under 1 s over 3 runs (X: the most-rated title, P: the "
                         "platform with most titles, unless configured); latencies recorded; warns")
def explanation_latency(neo4j: Neo4jResource, config: ExplanationConfig) -> dg.AssetCheckResult:
    seed = neo4j.read(cypher.EXPLANATION_SEED)
    platform = neo4j.read(cypher.BUSIEST_PLATFORM)
    media_id = config.media_id or (seed[0]["media_id"] if seed else -1)
    platform_name = config.platform or (platform[0]["platform"] if platform else "")
    parameters = {"media_id": media_id, "platform": platform_name, "min_rating": config.min_rating,
                  "max_users": config.max_users, "limit": config.limit}
    found, latencies = time_explanation(neo4j.client, parameters, config.runs)
    rule = rules.explanation_fast(latencies, len(found), config.budget_ms)
    rule.metadata.update({"media_id": media_id, "platform": platform_name,
                          "top_titles": [r["title"] for r in found[:5]]})
    return _result(EXPLANATION, rule, warn_only=True)


asset_checks = [load_complete, node_counts, relationship_counts, constraints_and_indexes, endpoints,
                explanation_latency]
