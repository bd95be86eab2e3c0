"""Asset checks of the vector collections: they query Milvus through the `milvus` resource.

Each check stands alone (`@asset_check`) and takes the resource plus the *source* assets it compares
against, never the collection asset itself (that would make Dagster load it through the IO manager).
The checks audit the collection the asset's latest materialization staged (`staged_version`), which no reader
searches yet, against the configuration of the resource they are given; the `release` asset publishes it only
when they passed. Everything blocks except the latency check, which warns.
"""


import functools
import time
from collections.abc import Callable

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from tv5_assets.core.checking import RuleResult, check_result, staged_version
from tv5_assets.core.pools import milvus_pool
from tv5_assets.vector_store import quality, rules
from tv5_assets.vector_store.assets import hybrid_media_vectors, hybrid_user_vectors, media_vectors, user_vectors
from tv5_assets.vector_store.resources import MILVUS_STEP_TAGS, MilvusResource
from tv5_assets.vector_store.rows import media_rows, probe_truth, user_rows, value_counts
from tv5_assets.vector_store.schema import (
    HYBRID_MEDIA,
    HYBRID_USERS,
    ID_FIELD,
    MEDIA,
    USERS,
    VECTOR_FIELD,
    CollectionSpec,
    any_of_expression,
    filter_expression,
)

ENTITY_COUNT = "entity_count_matches_source"
INDEX_AS_CONFIGURED = "index_as_configured"
LOADED = "collection_loaded"
SELF_RETRIEVAL = "self_retrieval_at_rank_1"
RECALL = "recall_at_10"
LATENCY = "search_latency"
FILTERED_SEARCH = "filtered_search_matches"
EVERY_VALUE = "every_filter_value_found"

FILTER_LIMIT = 100
_QUERY_BATCH = 100


class SelfRetrievalConfig(dg.Config):
    sample: int = Field(default=1000, description="vectors searched for themselves")
    minimum: float = Field(default=0.99, description="share that must come back at rank 1")
    seed: int = 0


class RecallConfig(dg.Config):
    queries: int = Field(default=200, description="sampled query vectors, compared with exact numpy search")
    k: int = 10
    minimum: float = 0.95
    seed: int = 1


# The serving path's budget (a Milvus server answers the recommender) and Milvus Lite's documented latency
# (its searches walk every row in Python: ~40-110 ms a query at ml-25m shape, docs/scaling.md).
SERVER_P99_BUDGET_MS = 10.0
LITE_P99_BUDGET_MS = 100.0


class LatencyConfig(dg.Config):
    queries: int = Field(default=200, description="single-vector searches timed one after the other")
    warmup: int = 5
    p99_budget_ms: float | None = Field(
        default=None, description=f"warn when the p99 latency exceeds this; default: {SERVER_P99_BUDGET_MS:.0f} ms "
        f"on a Milvus server (the serving budget), {LITE_P99_BUDGET_MS:.0f} ms on Milvus Lite")
    seed: int = 2

    def budget_ms(self, backend: str) -> float:
        if self.p99_budget_ms is not None:
            return self.p99_budget_ms
        return LITE_P99_BUDGET_MS if backend == "milvus-lite" else SERVER_P99_BUDGET_MS


def _source(frame: pl.LazyFrame, spec: CollectionSpec) -> tuple[np.ndarray, np.ndarray]:
    """Ids (sorted) and vectors of the source asset."""
    rows = (frame.select(pl.col(spec.id_column).cast(pl.Int64).alias(ID_FIELD), VECTOR_FIELD)
            .sort(ID_FIELD).collect())
    return rows[ID_FIELD].to_numpy(), np.asarray(rows[VECTOR_FIELD].to_numpy(), dtype=np.float32)


def _search_ids(milvus: MilvusResource, collection: str, queries: np.ndarray, k: int, spec: CollectionSpec) -> np.ndarray:
    found: list[list[int]] = []
    for start in range(0, len(queries), _QUERY_BATCH):
        hits = milvus.search(collection, queries[start:start + _QUERY_BATCH], limit=k, spec=spec)
        found.extend([int(h["id"]) for h in query] for query in hits)
    return quality.pad_ids(found, k)


def checks_for(asset: dg.AssetsDefinition, spec: CollectionSpec) -> list[dg.AssetChecksDefinition]:
    """The eight checks of one collection."""
    vectors_in = {"source_vectors": dg.AssetIn(spec.source)}
    # every check opens the `milvus` resource: tagged so a multiprocess run can hold them to one at a time, and
    # in the collection's pool so that no other run writes it between its build and these audits
    milvus_check = functools.partial(dg.asset_check, asset=asset, op_tags=MILVUS_STEP_TAGS,
                                     pool=milvus_pool(spec.alias))
    probe = spec.probe.value or "its most frequent value"

    def on_staged_collection(context: dg.AssetCheckExecutionContext, milvus: MilvusResource, name: str,
                             rule: Callable[[str], RuleResult], searchable: bool = True,
                             warn_only: bool = False) -> dg.AssetCheckResult:
        """Check `name` on the collection the asset's latest materialization staged: `rule(collection)`, after
        making it searchable if asked. None staged, or the staged one gone: the check fails (ERROR) saying so."""
        staged = staged_version(context, asset.key)
        if not staged:
            return check_result(asset.key, name, RuleResult(
                False, f"{asset.key.to_user_string()} has no staged collection: materialize the asset", {}))
        if not milvus.has_collection(staged):
            return check_result(asset.key, name, RuleResult(
                False, f"the staged collection {staged} is not on {milvus.describe()} (dropped, or another server)",
                {"collection": staged}))
        if searchable:
            milvus.ensure_searchable(staged)
        return check_result(asset.key, name, rule(staged), warn_only=warn_only)

    @milvus_check(name=ENTITY_COUNT, blocking=True, additional_ins=vectors_in,
                    description=f"the collection holds exactly one entity per row of {spec.source}")
    def entity_count(context: dg.AssetCheckExecutionContext, milvus: MilvusResource, source_vectors: pl.LazyFrame) -> dg.AssetCheckResult:
        def rule(collection: str) -> RuleResult:
            source_rows = int(source_vectors.select(pl.len()).collect().item())
            return rules.entity_count(collection, milvus.count(collection), source_rows)

        return on_staged_collection(context, milvus, ENTITY_COUNT, rule, searchable=False)

    @milvus_check(name=INDEX_AS_CONFIGURED, blocking=True,
                    description="index type, metric, M and efConstruction as the backend reports them equal the "
                                "`milvus` resource's configuration (both Milvus Lite and the server report them)")
    def index_as_configured(context: dg.AssetCheckExecutionContext, milvus: MilvusResource) -> dg.AssetCheckResult:
        def rule(collection: str) -> RuleResult:
            return rules.index_as_configured(collection, milvus.describe_index(collection), milvus.index_for(spec))

        return on_staged_collection(context, milvus, INDEX_AS_CONFIGURED, rule, searchable=False)

    @milvus_check(name=LOADED, blocking=True,
                    description="the collection is loaded (searchable). On the server it must be loaded as found; "
                                "Milvus Lite keeps load state per process, so there it must load (found state in "
                                "metadata)")
    def collection_loaded(context: dg.AssetCheckExecutionContext, milvus: MilvusResource) -> dg.AssetCheckResult:
        def rule(collection: str) -> RuleResult:
            found = milvus.ensure_searchable(collection)
            return rules.collection_loaded(collection, milvus.load_state(collection), found, milvus.backend)

        return on_staged_collection(context, milvus, LOADED, rule, searchable=False)

    @milvus_check(name=SELF_RETRIEVAL, blocking=True, additional_ins=vectors_in,
                    description="at least 99% of 1,000 sampled source vectors find themselves (or an identical "
                                "vector) at rank 1")
    def self_retrieval(context: dg.AssetCheckExecutionContext, milvus: MilvusResource, config: SelfRetrievalConfig,
                       source_vectors: pl.LazyFrame) -> dg.AssetCheckResult:
        def rule(collection: str) -> RuleResult:
            ids, vectors = _source(source_vectors, spec)
            sample = quality.sample_positions(len(ids), config.sample, config.seed)
            top1 = _search_ids(milvus, collection, vectors[sample], 1, spec)[:, 0]
            measured = quality.self_retrieval(ids[sample], vectors[sample], top1, ids, vectors,
                                              milvus.index_for(spec).metric_type)
            return rules.self_retrieval(collection, measured, config.minimum)

        return on_staged_collection(context, milvus, SELF_RETRIEVAL, rule)

    @milvus_check(name=RECALL, blocking=True, additional_ins=vectors_in,
                    description="recall@10 at the configured search breadth (HNSW ef 100; IVF_FLAT nprobe 64) against exact numpy search, over 200 "
                                "sampled queries, is at least 0.95 (ties at the 10th score count as found)")
    def recall_at_10(context: dg.AssetCheckExecutionContext, milvus: MilvusResource, config: RecallConfig, source_vectors: pl.LazyFrame) -> dg.AssetCheckResult:
        def rule(collection: str) -> RuleResult:
            ids, vectors = _source(source_vectors, spec)
            queries = vectors[quality.sample_positions(len(ids), config.queries, config.seed)]
            found = _search_ids(milvus, collection, queries, config.k, spec)
            value = quality.recall_at_k(found, queries, ids, vectors, config.k, milvus.index_for(spec).metric_type)
            index = milvus.index_for(spec)
            return rules.recall(collection, value, config.minimum, config.k, len(queries), index.breadth())

        return on_staged_collection(context, milvus, RECALL, rule)

    @milvus_check(name=LATENCY, blocking=False, additional_ins=vectors_in,
                    description="single-query search latency p50/p99 (top 10, configured ef); warns when p99 "
                                "exceeds the budget (default 10 ms on a Milvus server, 100 ms on Milvus Lite)")
    def search_latency(context: dg.AssetCheckExecutionContext, milvus: MilvusResource, config: LatencyConfig,
                       source_vectors: pl.LazyFrame) -> dg.AssetCheckResult:
        def rule(collection: str) -> RuleResult:
            _, vectors = _source(source_vectors, spec)
            queries = vectors[quality.sample_positions(len(vectors), config.queries + config.warmup, config.seed)]
            seconds: list[float] = []
            budget_ms = config.budget_ms(milvus.backend)
            decisive = quality.over_budget_to_decide_p99(config.queries)
            for position, query in enumerate(queries):
                started = time.perf_counter()
                milvus.search(collection, query[None, :], limit=10, spec=spec)
                if position >= config.warmup:
                    seconds.append(time.perf_counter() - started)
                    if sum(s * 1000 > budget_ms for s in seconds) >= decisive:
                        break  # the p99 of all planned queries is over the budget already (Lite: ~0.5 s a search)
            summary = quality.latency_summary(seconds)
            return rules.latency(collection, summary, budget_ms, planned=config.queries)

        return on_staged_collection(context, milvus, LATENCY, rule, warn_only=True)

    @milvus_check(name=FILTERED_SEARCH, blocking=True,
                    additional_ins={**vectors_in, "attributes": dg.AssetIn(spec.attributes)},
                    description=f"a search filtered on {spec.probe.field} ({probe}) returns matching entities only "
                                f"(at least one), and the filter counts exactly the source rows that match "
                                f"({spec.attributes})")
    def filtered_search(context: dg.AssetCheckExecutionContext, milvus: MilvusResource, source_vectors: pl.LazyFrame,
                        attributes: pl.DataFrame) -> dg.AssetCheckResult:
        def rule(collection: str) -> RuleResult:
            ids, vectors = _source(source_vectors, spec)
            value, truth = probe_truth(pl.Series(ids), attributes, spec.id_column, spec.probe.column,
                                       spec.probe.value)
            if value is None:
                return RuleResult(False, f"{spec.attributes} has no {spec.probe.column} value to filter on")
            expression = filter_expression(spec, spec.probe.field, value)
            hits = milvus.search(collection, vectors[:1], limit=FILTER_LIMIT, expression=expression, spec=spec,
                                 output_fields=[spec.probe.field])[0]
            return rules.filtered_search(collection, expression, spec.probe.field, value, hits, FILTER_LIMIT,
                                         milvus.count_where(collection, expression), truth.to_list())

        return on_staged_collection(context, milvus, FILTERED_SEARCH, rule)

    categorical = [f.name for f in spec.scalars if f.categorical]

    @milvus_check(name=EVERY_VALUE, blocking=True,
                    additional_ins={**vectors_in, "attributes": dg.AssetIn(spec.attributes), "movies": dg.AssetIn("movies")},
                    description=f"for every distinct value of {', '.join(categorical)} in the source rows, a filtered "
                                "query finds exactly the entities that hold it (a cut or altered value is found 0 "
                                "times, or fewer times than the source holds it): one query per collection naming "
                                "every value of every field (the fields' filters joined by `or`), each value's "
                                "holders counted from the values that query returns")
    def every_filter_value(context: dg.AssetCheckExecutionContext, milvus: MilvusResource, source_vectors: pl.DataFrame, attributes: pl.DataFrame,
                           movies: pl.DataFrame) -> dg.AssetCheckResult:
        def rule(collection: str) -> RuleResult:
            rows = (media_rows(source_vectors, movies, attributes, spec) if spec.id_column == "movie_id"
                    else user_rows(source_vectors, attributes, spec))
            expected = value_counts(rows.frame, categorical)
            clauses = {field: any_of_expression(spec, field, values) for field in categorical
                       if (values := expected.filter(pl.col("field") == field)["value"].to_list())}
            counts = expected.with_columns(pl.lit(0, pl.UInt32).alias("found"))
            if clauses:  # one query for all fields: Milvus Lite evaluates a filter and builds each row in Python
                stored = milvus.values_where(collection, " or ".join(f"({c})" for c in clauses.values()), *clauses)
                found = value_counts(stored, list(clauses)).rename({"rows": "found"})
                counts = expected.join(found, on=["field", "value"], how="left").with_columns(
                    pl.col("found").fill_null(0))
            return rules.every_value_found(collection, counts.select("field", "value", "rows", "found"))

        return on_staged_collection(context, milvus, EVERY_VALUE, rule)

    return [entity_count, index_as_configured, collection_loaded, self_retrieval, recall_at_10, search_latency,
            filtered_search, every_filter_value]


asset_checks = [*checks_for(media_vectors, MEDIA), *checks_for(user_vectors, USERS),
                *checks_for(hybrid_media_vectors, HYBRID_MEDIA), *checks_for(hybrid_user_vectors, HYBRID_USERS)]
