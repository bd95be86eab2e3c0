"""The validation rules of the vector collections, as plain functions returning `RuleResult`.

Each takes what was measured on Milvus and what the source or the configuration says it should be,
so it can be tested on hand-made good and bad values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from tv5_assets.core.checking import RuleResult
from tv5_assets.vector_store.quality import SelfRetrieval
from tv5_assets.vector_store.schema import VectorIndex


def entity_count(collection: str, stored: int, source_rows: int) -> RuleResult:
    passed = stored == source_rows
    verdict = "equals" if passed else "differs from"
    return RuleResult(passed, f"{collection} holds {stored} entities, which {verdict} the {source_rows} source rows",
                      {"collection": collection, "entities": stored, "source_rows": source_rows})


def index_as_configured(collection: str, reported: dict[str, Any], expected: VectorIndex) -> RuleResult:
    """Index type, metric and build parameters as the backend reports them, against the configuration."""
    wanted = {"index_type": expected.index_type, "metric_type": expected.metric_type, **expected.build_params}
    got = {"index_type": reported.get("index_type"), "metric_type": reported.get("metric_type"),
           **{k: reported.get("params", {}).get(k) for k in expected.build_params}}
    wrong = {k: {"expected": v, "reported": got[k]} for k, v in wanted.items() if got[k] != v}
    description = (f"{collection}: {expected.index_type} {expected.metric_type} {expected.build_params} as configured"
                   if not wrong else f"{collection}: index differs from the configuration: {wrong}")
    return RuleResult(not wrong, description, {"collection": collection, "reported": got, "expected": wanted})


def collection_loaded(collection: str, state: str, found: str | None = None, backend: str = "") -> RuleResult:
    """Loaded now. `found` is the state before a Milvus Lite check loaded it (Lite's load state is per process)."""
    found = found or state
    note = f" (found {found}: Milvus Lite loads per process)" if found != state else ""
    return RuleResult(state == "Loaded", f"{collection} load state is {state}{note}",
                      {"collection": collection, "load_state": state, "found_state": found, "backend": backend})


def self_retrieval(collection: str, result: SelfRetrieval, minimum: float) -> RuleResult:
    passed = result.queries > 0 and result.rate >= minimum
    return RuleResult(
        passed,
        f"{collection}: {result.rate:.2%} of {result.queries} sampled vectors return themselves (or an identical "
        f"vector) at rank 1; required {minimum:.0%}",
        {"collection": collection, "rate": round(result.rate, 4), "own_id_rate": round(result.own_id_rate, 4),
         "queries": result.queries, "minimum": minimum, "missed_ids": result.misses},
    )


def recall(collection: str, value: float, minimum: float, k: int, queries: int,
           breadth: dict[str, int]) -> RuleResult:
    """`breadth`: the search parameters ({"ef": 100}, {"nprobe": 64}); empty for an exact (FLAT) index."""
    passed = queries > 0 and value >= minimum
    where = ("at " + ", ".join(f"{k}={v}" for k, v in breadth.items())) if breadth else "with its exact (FLAT) index"
    return RuleResult(passed, f"{collection}: recall@{k} = {value:.4f} over {queries} queries {where} against "
                              f"exact numpy search; required {minimum}",
                      {"collection": collection, f"recall_at_{k}": round(value, 4), "queries": queries,
                       "search_params": breadth, "minimum": minimum})


def latency(collection: str, summary: dict[str, float], p99_budget_ms: float, planned: int | None = None) -> RuleResult:
    """`planned`: the queries the check meant to time; fewer were timed when enough of them were over the budget
    to put the p99 of all of them over it."""
    planned = summary["queries"] if planned is None else planned
    stopped = summary["queries"] < planned
    passed = summary["queries"] > 0 and summary["p99_ms"] <= p99_budget_ms and not stopped
    early = (f" (stopped after {summary['queries']} of {planned} queries: enough were over the budget to put the p99 "
             f"of all {planned} over it)" if stopped else "")
    return RuleResult(passed, f"{collection}: single-query p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} "
                              f"ms over {summary['queries']} queries; budget p99 {p99_budget_ms:.0f} ms{early}",
                      {"collection": collection, **summary, "planned_queries": planned, "stopped_early": stopped,
                       "p99_budget_ms": p99_budget_ms})


def filtered_search(collection: str, expression: str, field: str, value: str, hits: Sequence[dict[str, Any]],
                    limit: int, filtered_count: int, expected_ids: Sequence[int]) -> RuleResult:
    """A filtered search returns only matching rows (and some, when any match), and the filter counts exactly.

    Fewer hits than `limit` are reported, not failed: an HNSW graph searched with a selective filter can
    run out of candidates (Milvus Lite's FAISS search does; the server falls back to brute force).
    """
    expected = set(int(i) for i in expected_ids)

    def matches(entity: dict[str, Any]) -> bool:
        stored = entity.get(field)
        return value in stored if isinstance(stored, list) else stored == value

    not_matching = [int(h["id"]) for h in hits if not matches(h.get("entity", {}))]
    not_expected = [int(h["id"]) for h in hits if int(h["id"]) not in expected]
    problems = []
    if not_matching:
        problems.append(f"{len(not_matching)} hit(s) whose {field} lacks {value!r}: {not_matching[:10]}")
    if not_expected:
        problems.append(f"{len(not_expected)} hit(s) the source does not match: {not_expected[:10]}")
    wanted = min(limit, len(expected))
    if wanted and not hits:
        problems.append(f"no hit returned although {len(expected)} source rows match")
    if filtered_count != len(expected):
        problems.append(f"the filter counts {filtered_count} entities, the source {len(expected)}")
    description = (f"{collection}: search with `{expression}` returned {len(hits)} of {wanted} possible hits, all "
                   f"matching; the filter counts {filtered_count} entities like the source" if not problems
                   else f"{collection}: `{expression}`: " + "; ".join(problems))
    return RuleResult(not problems, description, {"collection": collection, "expression": expression,
                                                  "hits": len(hits), "hits_possible": wanted,
                                                  "filtered_count": filtered_count, "source_matches": len(expected)})


def every_value_found(collection: str, counts: pl.DataFrame) -> RuleResult:
    """Each distinct categorical value (field, value, rows expected, found by a filter) is found exactly."""
    if counts.height == 0:
        return RuleResult(False, f"{collection}: the source rows hold no categorical value to filter on", {})
    wrong = counts.filter(pl.col("rows") != pl.col("found"))
    examples = [f"{f} = {v!r}: {found} of {rows}" for f, v, rows, found in wrong.head(10).iter_rows()]
    per_field = dict(counts.group_by("field").len().sort("field").iter_rows())
    return RuleResult(
        wrong.height == 0,
        f"{collection}: {counts.height - wrong.height} of {counts.height} distinct values found exactly by a filter"
        + (f"; wrong: {'; '.join(examples)}" if examples else ""),
        {"values_per_field": per_field, "wrong": examples, "values_checked": counts.height},
    )
