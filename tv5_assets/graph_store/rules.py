"""The graph's validation rules, as plain functions of counts and query results.

Expected counts are computed here straight from the source tables, independently of `rows` (which
builds what is loaded), so a mistake in either shows up as a difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from tv5_assets.core.checking import RuleResult
from tv5_assets.graph_store import model, slots


def _count(frame: pl.LazyFrame) -> int:
    return int(frame.select(pl.len()).collect().item())


def expected_counts(movies: pl.LazyFrame, ratings: pl.LazyFrame, genome: pl.LazyFrame,
                    demographics: pl.LazyFrame, availability: pl.LazyFrame) -> dict[str, int]:
    """Nodes per label and relationships per type that the sources call for."""
    users = pl.concat([demographics.select("user_id"), ratings.select("user_id")]).unique()
    genre_pairs = movies.select("movie_id", "genres").explode("genres").drop_nulls("genres").unique()
    return {
        "Media": _count(movies.select("movie_id").unique()),
        "User": _count(users),
        "Genre": _count(genre_pairs.select("genres").unique()),
        "Tag": _count(genome.select("tag_id").unique()),
        "Platform": _count(availability.select("platform").unique()),
        "HAS_GENRE": _count(genre_pairs),
        "HAS_TAG": _count(genome),
        "AVAILABLE_ON": _count(availability),
        "RATED": _count(ratings),
    }


def counts_match(kind: str, names: Sequence[str], expected: Mapping[str, int],
                 loaded: Mapping[str, int]) -> RuleResult:
    """Each label (or type) in `names` holds exactly as many nodes (or relationships) as its source."""
    table = {name: {"expected": int(expected[name]), "loaded": int(loaded.get(name, 0))} for name in names}
    wrong = {name: row for name, row in table.items() if row["expected"] != row["loaded"]}
    if wrong:
        detail = "; ".join(f"{n}: {r['loaded']:,} loaded, {r['expected']:,} in the sources" for n, r in wrong.items())
        return RuleResult(False, f"{kind} counts differ from their sources: {detail}", {"counts": table})
    return RuleResult(True, f"every {kind} count equals its source ({sum(r['loaded'] for r in table.values()):,} "
                            "in all)", {"counts": table})


def schema_online(indexes: Sequence[Mapping[str, Any]], slot: str | None = None) -> RuleResult:
    """A uniqueness constraint per node key (and the load marker's and the release node's), the same on `slot`'s
    labels, and every lookup index, all ONLINE (publishing gives the slot's nodes the public labels, so their
    constraints and indexes must be there too).

    `indexes`: rows of `cypher.SHOW_SCHEMA` (name, state, label, property, unique).
    """
    by_name = {row["name"]: row for row in indexes}
    wanted = [(spec.constraint, spec.label, spec.key, True)
              for spec in (*model.NODES, model.LOAD_STATE, model.RELEASE)]
    if slot:
        wanted += [(slots.constraint_name(spec, slot), slots.label(spec.label, slot), spec.key, True)
                   for spec in model.NODES]
    wanted += [(spec.name, spec.label, spec.property, False) for spec in model.INDEXES]
    problems = []
    for name, label, prop, unique in wanted:
        row = by_name.get(name)
        if row is None:
            problems.append(f"{name} missing")
        elif (row["label"], row["property"], bool(row["unique"])) != (label, prop, unique):
            problems.append(f"{name} is on {row['label']}.{row['property']} (unique={row['unique']}), "
                            f"expected {label}.{prop} (unique={unique})")
        elif row["state"] != "ONLINE":
            problems.append(f"{name} is {row['state']}")
    meta = {"constraints": sum(w[3] for w in wanted), "indexes": sum(not w[3] for w in wanted)}
    if problems:
        return RuleResult(False, "schema incomplete: " + "; ".join(problems), {**meta, "problems": problems})
    return RuleResult(True, f"{meta['constraints']} uniqueness constraints and {meta['indexes']} indexes online", meta)


def endpoints_correct(relationship_counts: Mapping[str, Mapping[str, int]],
                      missing_endpoints: Mapping[str, Mapping[str, Any]]) -> RuleResult:
    """No relationship has a missing or wrong endpoint.

    `relationship_counts[type]`: total (starting at any node of the audited slot), from_start (starting at the
    type's start label), to_end (ending at its end label, in that slot).
    `missing_endpoints[label]`: {missing: n, sample: [...]}: keys the source rows point at with no
    node in the graph (their rows were dropped by the load's MATCH).
    """
    problems = []
    for spec in model.RELATIONSHIPS:
        counts = relationship_counts[spec.type]
        if counts["from_start"] != counts["total"]:
            problems.append(f"{counts['total'] - counts['from_start']:,} {spec.type} not from a {spec.start.label}")
        if counts["to_end"] != counts["total"]:
            problems.append(f"{counts['total'] - counts['to_end']:,} {spec.type} not to a {spec.end.label}")
    for label, missing in missing_endpoints.items():
        if missing["missing"]:
            problems.append(f"{missing['missing']:,} {label} keys used by source rows have no node "
                            f"(e.g. {missing['sample'][:5]})")
    meta = {"relationships": {t: dict(c) for t, c in relationship_counts.items()},
            "missing_endpoints": {label: m["missing"] for label, m in missing_endpoints.items()}}
    if problems:
        return RuleResult(False, "relationships with missing or wrong endpoints: " + "; ".join(problems), meta)
    return RuleResult(True, "every relationship joins the right labels and every source endpoint has its node", meta)


def load_complete(state: Mapping[str, Any] | None, materialized_version: str | None) -> RuleResult:
    """The load marker says complete, for the version the last materialization reported."""
    if state is None:
        return RuleResult(False, "the graph has no load marker: it was never loaded")
    meta = {"phase": state.get("phase"), "version": state.get("version"), "materialized": materialized_version}
    if not state.get("complete"):
        return RuleResult(False, f"the last load did not finish (stopped at phase {state.get('phase')!r}): "
                                 "re-materialize `graph`", meta)
    if materialized_version is not None and state.get("version") != materialized_version:
        return RuleResult(False, f"the graph holds load {state.get('version')}, but the last materialization "
                                 f"reported {materialized_version}: another load replaced it", meta)
    return RuleResult(True, f"load {state.get('version')} complete (finished {state.get('finished_at')})", meta)


def explanation_fast(latencies_ms: Sequence[float], results: int, budget_ms: float) -> RuleResult:
    """The explanation query returns something, and its median latency is within the budget."""
    median = sorted(latencies_ms)[len(latencies_ms) // 2]
    meta = {"latencies_ms": [round(x, 1) for x in latencies_ms], "median_ms": round(median, 1),
            "budget_ms": budget_ms, "results": results}
    if results == 0:
        return RuleResult(False, "the explanation query returned nothing (no fans, or nothing on the platform)", meta)
    if median > budget_ms:
        return RuleResult(False, f"the explanation query took {median:.0f} ms (median), over {budget_ms:.0f} ms", meta)
    return RuleResult(True, f"the explanation query returned {results} titles in {median:.0f} ms (median)", meta)


def endpoint_keys(movies: pl.LazyFrame, ratings: pl.LazyFrame, genome: pl.LazyFrame,
                  availability: pl.LazyFrame) -> dict[str, list]:
    """The distinct node keys the source rows of relationships point at, per label."""
    def distinct(frames: list[pl.LazyFrame]) -> list:
        return pl.concat(frames).unique().sort("key").collect()["key"].to_list()

    return {
        "Media": distinct([f.select(pl.col("movie_id").cast(pl.Int64).alias("key")) for f in (ratings, genome, availability)]),
        "User": distinct([ratings.select(pl.col("user_id").cast(pl.Int64).alias("key"))]),
        "Genre": distinct([movies.select(pl.col("genres").explode().alias("key")).drop_nulls()]),
        "Tag": distinct([genome.select(pl.col("tag_id").cast(pl.Int64).alias("key"))]),
        "Platform": distinct([availability.select(pl.col("platform").alias("key"))]),
    }
