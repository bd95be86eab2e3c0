"""Loading hand-made frames into the real local Neo4j: exact, typed, idempotent, recoverable; and a down server."""

from __future__ import annotations

import datetime as dt

import pytest

from tv5_assets.graph_store import cypher, model, slots
from tv5_assets.graph_store.loader import GraphLoadError, discard_slots, live_counts, load_graph, read_load_state
from tv5_assets.graph_store.resources import Neo4jClient, Neo4jUnavailableError
from tv5_assets.graph_store.rows import graph_rows
from tv5_assets_tests.graph_support import empty_graph, serve, sources
from tv5_assets_tests.services import free_port

pytestmark = pytest.mark.neo4j


@pytest.fixture
def graph_client(graph_client: Neo4jClient) -> Neo4jClient:
    """The shared server's client, its database emptied first: no slot, nothing served."""
    empty_graph(graph_client)
    return graph_client


def test_load_is_exact_and_typed(graph_client: Neo4jClient) -> None:
    tables = sources()
    rows = graph_rows(**tables)
    report = serve(graph_client, load_graph(graph_client, rows, "t-exact", batch_rows=50, force=True))
    assert not report.skipped and report.counts == rows.counts() == live_counts(graph_client)
    assert report.counts["RATED"] == tables["ratings"].height == 240
    state = read_load_state(graph_client)
    assert state.complete and state.version == "t-exact" and state.counts == rows.counts()

    first = tables["ratings"].row(0, named=True)
    [rated] = graph_client.read(
        "MATCH (:User {id: $u})-[r:RATED]->(:Media {id: $m}) RETURN r.rating AS rating, r.timestamp AS ts, "
        "r.time_of_day AS tod", {"u": first["user_id"], "m": first["movie_id"]})
    assert rated["rating"] == first["rating"] and rated["tod"] == model.TIME_OF_DAY_HOURS[first["time_of_day"]]
    assert rated["ts"] == int(first["timestamp"].timestamp())  # epoch seconds, as in ratings.csv
    [when] = graph_client.read("RETURN datetime({epochSeconds: $ts}) AS t", {"ts": rated["ts"]})
    assert when["t"].to_native() == first["timestamp"].replace(microsecond=0)
    [media] = graph_client.read("MATCH (m:Media {id: 13}) RETURN properties(m) AS p")
    assert media["p"] == {"id": 13, "title": "Film 13", "imdb_id": "tt0000013", "tmdb_id": 130}  # null year: absent
    [available] = graph_client.read(
        "MATCH (:Media {id: 1})-[a:AVAILABLE_ON]->(p:Platform {name: 'TV5MONDE'}) "
        "RETURN a.regions AS regions, a.quality AS quality, a.subtitle_languages AS subs, p.business_model AS bm")
    assert available == {"regions": ["western_europe", "north_america"], "quality": ["HD"], "subs": ["fr", "en"],
                         "bm": "free"}
    [tag] = graph_client.read("MATCH (:Media {id: 1})-[h:HAS_TAG {rank: 1}]->(t:Tag) RETURN h.relevance AS r, t.name AS n")
    assert tag == {"r": pytest.approx(0.9), "n": "tag 102"}


def test_reload_gives_identical_counts_and_unchanged_input_is_a_no_op(graph_client: Neo4jClient) -> None:
    rows = graph_rows(**sources(seed=1))
    first = serve(graph_client, load_graph(graph_client, rows, "t-idem", batch_rows=40, force=True))
    again = load_graph(graph_client, rows, "t-idem", batch_rows=40, force=True, concurrency=3)  # same graph
    assert not again.skipped and again.counts == first.counts == rows.counts()
    assert again.slot != first.slot, "a forced reload of the served version writes a slot of its own"
    unchanged = load_graph(graph_client, rows, "t-idem", batch_rows=40)
    assert unchanged.skipped and unchanged.counts == rows.counts() and unchanged.slot == first.slot  # served first
    # a slot edited since its load is not reused even for the same version
    for slot in (first.slot, again.slot):
        graph_client.write(f"MATCH (:{slots.label('User', slot)})-[r:RATED]->() WITH r LIMIT 3 DELETE r")
    rebuilt = load_graph(graph_client, rows, "t-idem", batch_rows=40)
    assert not rebuilt.skipped and rebuilt.counts == rows.counts() and rebuilt.slot not in (first.slot, again.slot)


def test_a_load_is_staged_beside_the_served_graph_and_publishing_switches_readers(graph_client: Neo4jClient) -> None:
    big = graph_rows(**sources(users=40, movies=50))
    small = graph_rows(**sources(users=10, movies=12))
    served = serve(graph_client, load_graph(graph_client, big, "t-big", batch_rows=64))
    explain = {"media_id": 1, "platform": "TV5MONDE", "min_rating": 0.5, "max_users": 100, "limit": 50}
    answer = graph_client.read(cypher.EXPLANATION, explain)
    staged = load_graph(graph_client, small, "t-small", batch_rows=64)
    assert live_counts(graph_client) == big.counts(), "readers still see the served graph, whole"
    assert graph_client.read(cypher.EXPLANATION, explain) == answer
    assert live_counts(graph_client, staged.slot) == small.counts()
    assert slots.served(graph_client)["slot"] == served.slot

    serve(graph_client, staged)  # one transaction
    assert live_counts(graph_client) == small.counts()
    release = slots.served(graph_client)
    assert release["slot"] == staged.slot and release["previous_slot"] == served.slot
    assert release["version"] == "t-small" and release["release_id"] == "test-t-small"
    assert live_counts(graph_client, served.slot) == big.counts(), "the previous release is kept, whole"
    serve(graph_client, served)  # roll back: the same move
    assert live_counts(graph_client) == big.counts() and graph_client.read(cypher.EXPLANATION, explain) == answer

    with pytest.raises(RuntimeError, match="is served"):
        slots.drop(graph_client, served.slot)
    assert discard_slots(graph_client, set(), 1_000, print) == [staged.slot]  # neither served nor kept
    assert slots.existing(graph_client) == {served.slot}
    assert graph_client.read("MATCH (s:LoadState) RETURN count(s) AS n") == [{"n": 1}]
    assert live_counts(graph_client) == big.counts()


class FailingAfter:
    """The real client, except that relationship writes fail after `batches` batches (a crash mid-load)."""

    def __init__(self, client: Neo4jClient, batches: int) -> None:
        self.client, self.left = client, batches

    def __getattr__(self, name: str):
        return getattr(self.client, name)

    def write_batches(self, query, batches, what, total_rows, concurrency=1):
        def limited():
            for batch in batches:
                if self.left == 0:
                    raise ConnectionResetError("injected failure mid-load")
                self.left -= 1
                yield batch
        return self.client.write_batches(query, limited(), what, total_rows, concurrency)


def test_an_interrupted_load_is_marked_incomplete_and_a_rerun_is_exact(graph_client: Neo4jClient) -> None:
    rows = graph_rows(**sources(seed=2))
    with pytest.raises(ConnectionResetError):
        load_graph(FailingAfter(graph_client, batches=7), rows, "t-interrupted", batch_rows=30, force=True,
                   concurrency=2)
    [half] = slots.existing(graph_client)
    state = read_load_state(graph_client, half)
    assert not state.complete and state.phase.startswith("relationships:")
    assert live_counts(graph_client, half) != rows.counts()  # half a graph, and the marker says so
    assert read_load_state(graph_client) is None and live_counts(graph_client)["RATED"] == 0  # readers see none
    report = load_graph(graph_client, rows, "t-interrupted", batch_rows=30)  # no force: incomplete is reloaded
    assert not report.skipped and report.counts == rows.counts() and report.slot != half
    assert read_load_state(graph_client, report.slot).complete
    assert discard_slots(graph_client, {report.slot}, 1_000, print) == [half]


def test_rows_with_missing_endpoints_fail_the_load_and_leave_it_incomplete(graph_client: Neo4jClient) -> None:
    tables = sources(seed=3)
    rows = graph_rows(**tables)
    orphan = rows.relationships["RATED"].with_columns(movie_id=rows.relationships["RATED"]["movie_id"] + 10_000)
    broken = type(rows)(rows.nodes, {**rows.relationships, "RATED": orphan})
    with pytest.raises(GraphLoadError, match="'RATED': {'expected': 240, 'loaded': 0}"):
        load_graph(graph_client, broken, "t-broken", batch_rows=100, force=True)
    [slot] = slots.existing(graph_client)
    assert not read_load_state(graph_client, slot).complete


def test_schema_is_created_and_used_for_endpoint_lookups(graph_client: Neo4jClient) -> None:
    report = load_graph(graph_client, graph_rows(**sources()), "t-schema", force=True)
    online = {r["name"]: r for r in graph_client.read(cypher.SHOW_SCHEMA)}
    unique = {n for n, r in online.items() if r["unique"]}
    assert {s.constraint for s in model.NODES} | {slots.constraint_name(s, report.slot) for s in model.NODES} <= unique
    assert {i.name for i in model.INDEXES} <= set(online)
    parameters = {"end_keys": [1], "end_pos": [0], "group_keys": [1], "group_starts": [0, 1], "rating": [1.0],
                  "timestamp": [0], "time_of_day": ["night"]}
    summary = graph_client.run("EXPLAIN " + cypher.create_relationships(model.RATED, report.slot), parameters)
    assert str(summary.plan).count("NodeUniqueIndexSeek") == 2  # both endpoints through the uniqueness indexes


def test_a_down_server_gives_a_clear_error_naming_the_uri() -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"
    started = dt.datetime.now()
    with Neo4jClient(uri, "neo4j", "whatever", max_retries=1, retry_delay_s=0.05, connection_timeout_s=2) as client:
        with pytest.raises(Neo4jUnavailableError, match=f"Neo4j is not reachable at {uri}.*scripts/services start neo4j"):
            client.verify()
    assert (dt.datetime.now() - started).total_seconds() < 10


def test_wrong_credentials_are_named_as_such(neo4j_server) -> None:
    with Neo4jClient(neo4j_server.uri, neo4j_server.user, neo4j_server.password + "-wrong") as client:
        with pytest.raises(Neo4jUnavailableError, match="refused the credentials"):
            client.verify(retries=0)
