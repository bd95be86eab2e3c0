"""The graph stage's pure logic: row frames, batch planning, statements and rules (no server)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import polars as pl
import pytest
from neo4j.exceptions import IncompleteCommit, ServiceUnavailable, TransientError

from tv5_assets.graph_store import batches, cypher, model, rules, slots
from tv5_assets.graph_store.resources import Neo4jClient, Neo4jUnavailableError
from tv5_assets.graph_store.rows import graph_rows, rated_rows
from tv5_assets.ingestion import movielens
from tv5_assets_tests.graph_support import sources


# ------------------------------------------------------------------ rows
def test_rows_have_the_model_columns_and_unique_keys() -> None:
    rows = graph_rows(**sources())
    for spec in model.NODES:
        frame = rows.nodes[spec.label]
        assert tuple(frame.columns) == spec.properties, spec.label
        assert frame[spec.key].is_unique().all() and frame[spec.key].null_count() == 0, spec.label
    for spec in model.RELATIONSHIPS:
        frame = rows.relationships[spec.type]
        assert set(frame.columns) == {spec.start_column, spec.end_column, *spec.properties}, spec.type
        assert frame[spec.start_column].is_sorted(), spec.type  # batches are cut on start-node boundaries


def test_time_of_day_hours_name_the_hours_of_each_band() -> None:
    """RATED stores the ratings' band as its UTC hours: every hour of the day maps into its own range."""
    hours = pl.DataFrame({"hour": range(24)}).with_columns((pl.col("hour") * 3600 + 59).alias("epoch"))
    bands = hours.select("hour", movielens.time_of_day(pl.col("epoch")).cast(pl.String).alias("band"))
    assert set(bands["band"]) == set(model.TIME_OF_DAY_HOURS)
    for hour, band in bands.iter_rows():
        first, last = (int(h) for h in model.TIME_OF_DAY_HOURS[band].split("-"))
        assert first <= hour <= last, (hour, band)
    with pytest.raises(pl.exceptions.InvalidOperationError):  # an unknown band is an error, not a null
        rated_rows(pl.DataFrame({"user_id": [1], "movie_id": [1], "rating": [4.0],
                                 "timestamp": [dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)],
                                 "time_of_day": ["teatime"]}))


def test_rows_follow_the_sources() -> None:
    tables = sources()
    rows = graph_rows(**tables)
    media = rows.nodes["Media"].filter(pl.col("id") == 13).row(0, named=True)
    assert media == {"id": 13, "title": "Film 13", "year": None, "imdb_id": "tt0000013", "tmdb_id": 130}
    rated = rows.relationships["RATED"]
    assert rated.height == tables["ratings"].height
    first = tables["ratings"].row(0, named=True)
    assert rated.row(0, named=True) == {
        "user_id": first["user_id"], "movie_id": first["movie_id"], "rating": first["rating"],
        "timestamp": int(first["timestamp"].timestamp()), "time_of_day": model.TIME_OF_DAY_HOURS[first["time_of_day"]]}
    assert rows.nodes["Platform"].to_dicts() == [
        {"name": "MUBI", "business_model": "subscription"}, {"name": "Netflix", "business_model": "subscription"},
        {"name": "TV5MONDE", "business_model": "free"}]
    # a rater without a profile still gets a User node (no rating is dropped)
    fewer_profiles = graph_rows(**{**tables, "demographics": tables["demographics"].head(10)})
    users = fewer_profiles.nodes["User"]
    assert users.height == 30 and users.filter(pl.col("id") > 10)["archetype"].null_count() == 20


def test_fingerprint_changes_with_content_only() -> None:
    tables = sources()
    same = graph_rows(**sources()).fingerprint("x")
    assert graph_rows(**tables).fingerprint("x") == same
    assert graph_rows(**tables).fingerprint("y") != same  # the statements' digest is part of the version
    changed = {**tables, "ratings": tables["ratings"].with_columns(pl.col("rating").reverse())}
    assert graph_rows(**changed).fingerprint("x") != same


# ------------------------------------------------------------------ batches
def test_plan_batches_cuts_only_where_the_key_changes() -> None:
    keys = np.array([1, 1, 1, 2, 2, 3, 4, 4, 4, 4, 5])
    plan = batches.plan_batches(keys, 3)
    assert plan == [(0, 3), (3, 6), (6, 10), (10, 11)]
    for start, end in plan:  # no key on both sides of a cut
        assert end == keys.size or keys[end - 1] != keys[end]
    assert batches.plan_batches(keys, 100) == [(0, 11)]
    assert batches.plan_batches(np.array([], dtype=np.int64), 5) == []
    with pytest.raises(ValueError):
        batches.plan_batches(keys, 0)


def test_plan_batches_at_scale_covers_every_row_once() -> None:
    rng = np.random.default_rng(3)
    keys = np.sort(rng.integers(0, 5_000, 200_000))
    plan = batches.plan_batches(keys, 7_000)
    assert plan[0][0] == 0 and plan[-1][1] == keys.size
    assert all(a[1] == b[0] for a, b in zip(plan, plan[1:]))
    sizes = np.array([end - start for start, end in plan])
    assert sizes.max() < 7_000 + np.bincount(keys).max()
    starts = {keys[start] for start, _ in plan}
    assert all(keys[start - 1] != keys[start] for start, _ in plan[1:]) and len(starts) == len(plan)


def test_relationship_batches_carry_groups_and_columns() -> None:
    rows = graph_rows(**sources(users=5, ratings_per_user=4))
    frame = rows.relationships["RATED"]
    produced = list(batches.relationship_batches(frame, model.RATED, target_rows=6))
    assert sum(b.rows for b in produced) == frame.height
    first = produced[0].parameters
    assert first["group_keys"] == [1, 2] and first["group_starts"] == [0, 4, 8]
    ends = frame["movie_id"].head(8).to_list()
    assert first["end_keys"] == sorted(set(ends))  # each end node looked up once per batch
    assert [first["end_keys"][p] for p in first["end_pos"]] == ends
    assert set(first) == {"group_keys", "group_starts", "end_keys", "end_pos", "rating", "timestamp", "time_of_day"}
    genres = next(batches.relationship_batches(rows.relationships["HAS_GENRE"], model.HAS_GENRE, 1_000)).parameters
    assert all(isinstance(k, str) for k in genres["end_keys"]) and len(genres["end_pos"]) == \
        rows.relationships["HAS_GENRE"].height


# ------------------------------------------------------------------ statements
def test_statements_take_every_value_as_a_parameter() -> None:
    statements = [*(cypher.create_nodes(s) for s in model.NODES),
                  *(cypher.create_relationships(s) for s in model.RELATIONSHIPS)]
    for statement in statements:
        assert not re.search(r"'[^']*'|\"", statement), statement  # no literal strings
        assert not re.search(r"[:=]\s*\d", statement), statement  # no literal numbers as values
    rated = cypher.create_relationships(model.RATED)
    assert "MATCH (a:User {id: $group_keys[g]})" in rated and "MATCH (b:Media {id: $end_keys[j]})" in rated
    assert "{rating: $rating[i], timestamp: $timestamp[i], time_of_day: $time_of_day[i]}" in rated
    assert len([s for s in cypher.schema_statements() if "IS UNIQUE" in s]) == 7
    assert len([s for s in cypher.schema_statements("s0123456789ab") if "IS UNIQUE" in s]) == 12
    assert len([s for s in cypher.schema_statements() if "CREATE INDEX" in s]) >= 3


# ------------------------------------------------------------------ rules, both ways
def _lazy(tables: dict[str, pl.DataFrame]) -> dict[str, pl.LazyFrame]:
    return {k: v.lazy() for k, v in tables.items()}


def test_expected_counts_agree_with_rows_independently() -> None:
    tables = sources()
    assert rules.expected_counts(**_lazy(tables)) == graph_rows(**tables).counts()


def test_counts_match_both_ways() -> None:
    expected = {"Media": 3, "User": 2}
    good = rules.counts_match("node", ["Media", "User"], expected, {"Media": 3, "User": 2})
    assert good.passed and "5 in all" in good.description
    bad = rules.counts_match("node", ["Media", "User"], expected, {"Media": 3, "User": 1})
    assert not bad.passed and "User: 1 loaded, 2 in the sources" in bad.description
    assert bad.metadata["counts"]["User"] == {"expected": 2, "loaded": 1}


def _schema_rows() -> list[dict]:
    rows = [{"name": s.constraint, "state": "ONLINE", "label": s.label, "property": s.key, "unique": True}
            for s in (*model.NODES, model.LOAD_STATE, model.RELEASE)]
    return rows + [{"name": i.name, "state": "ONLINE", "label": i.label, "property": i.property, "unique": False}
                   for i in model.INDEXES]


def test_schema_online_both_ways() -> None:
    assert rules.schema_online(_schema_rows()).passed
    rows = _schema_rows()
    rows = [r for r in rows if r["name"] != "media_title"]
    rows[0] = {**rows[0], "state": "POPULATING"}
    rows[1] = {**rows[1], "property": "other"}
    bad = rules.schema_online(rows)
    assert not bad.passed
    assert "media_title missing" in bad.description and "is POPULATING" in bad.description
    assert f"expected {rows[1]['label']}." in bad.description


def test_schema_of_a_slot_needs_its_own_constraints() -> None:
    slot = "s0123456789ab"
    assert not rules.schema_online(_schema_rows(), slot).passed
    assert "media_s0123456789ab_id_unique missing" in rules.schema_online(_schema_rows(), slot).description
    rows = _schema_rows() + [{"name": slots.constraint_name(s, slot), "state": "ONLINE",
                              "label": slots.label(s.label, slot), "property": s.key, "unique": True}
                             for s in model.NODES]
    assert rules.schema_online(rows, slot).passed


def test_endpoints_correct_both_ways() -> None:
    counts = {s.type: {"total": 5, "from_start": 5, "to_end": 5} for s in model.RELATIONSHIPS}
    none_missing = {s.label: {"missing": 0, "sample": []} for s in model.NODES}
    assert rules.endpoints_correct(counts, none_missing).passed
    wrong = {**counts, "RATED": {"total": 5, "from_start": 4, "to_end": 5}}
    bad = rules.endpoints_correct(wrong, {**none_missing, "Media": {"missing": 2, "sample": [7, 9]}})
    assert not bad.passed
    assert "1 RATED not from a User" in bad.description and "2 Media keys" in bad.description
    assert "[7, 9]" in bad.description


def test_load_complete_both_ways() -> None:
    state = {"complete": True, "version": "v1", "phase": "complete", "finished_at": "t"}
    assert rules.load_complete(state, "v1").passed
    assert not rules.load_complete(None, "v1").passed
    half = rules.load_complete({**state, "complete": False, "phase": "relationships:RATED"}, "v1")
    assert not half.passed and "relationships:RATED" in half.description
    replaced = rules.load_complete(state, "v2")
    assert not replaced.passed and "reported v2" in replaced.description


def test_explanation_fast_both_ways() -> None:
    good = rules.explanation_fast([40.0, 20.0, 900.0], results=10, budget_ms=1000)
    assert good.passed and good.metadata["median_ms"] == 40.0
    slow = rules.explanation_fast([1500.0, 1200.0, 1300.0], results=10, budget_ms=1000)
    assert not slow.passed and "1300 ms" in slow.description
    empty = rules.explanation_fast([5.0], results=0, budget_ms=1000)
    assert not empty.passed and "returned nothing" in empty.description


# ------------------------------------------------------------------ retries (the client's rules, no server)
def _client() -> Neo4jClient:
    return Neo4jClient("bolt://127.0.0.1:1", "neo4j", "unused", max_retries=3, retry_delay_s=0.001, log=lambda _: None)


def test_transient_failures_are_retried_then_succeed() -> None:
    failures = [TransientError("deadlock"), ServiceUnavailable("restarting")]

    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    with _client() as client:
        assert client._retrying("test", flaky) == ("done", 2)


def test_retries_are_bounded_and_unknown_commits_never_retried() -> None:
    calls = []

    def down() -> None:
        calls.append(1)
        raise ServiceUnavailable("connection refused")

    with _client() as client:
        with pytest.raises(Neo4jUnavailableError, match="bolt://127.0.0.1:1"):
            client._retrying("test", down)
        assert len(calls) == 4  # the first try and 3 retries

        def unknown_commit() -> None:
            calls.append(1)
            raise IncompleteCommit("connection lost during commit")

        calls.clear()
        with pytest.raises(IncompleteCommit):
            client._retrying("test", unknown_commit)
        assert len(calls) == 1
