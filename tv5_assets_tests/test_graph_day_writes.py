"""A day's graph transaction on the real Neo4j: new pairs are CREATEd (no look for an existing relationship), so
the audit is what stands between a wrong "new" and a doubled RATED: such a day rolls back whole."""

from __future__ import annotations

import polars as pl
import pytest

from tv5_assets.graph_store import day_delta
from tv5_assets.graph_store.resources import Neo4jClient
from tv5_assets_tests.graph_support import empty_graph

pytestmark = pytest.mark.neo4j
PROFILES = pl.DataFrame({"user_id": [1], "archetype": ["casual"], "age_band": ["25-34"], "country": ["FR"]})
RATED = "MATCH (:User {id: 1})-[r:RATED]->(m:Media) RETURN m.id AS movie_id, r.rating AS rating ORDER BY movie_id"


def _changes(rows: list[tuple[int, float | None, int | None, float, int]]) -> pl.DataFrame:
    return pl.DataFrame([(1, m, "replaced" if old is not None else "inserted", old, old_epoch, new, epoch)
                         for m, old, old_epoch, new, epoch in rows],
                        schema={"user_id": pl.Int32, "movie_id": pl.Int32, "change": pl.String,
                                "old_rating": pl.Float32, "old_epoch": pl.Int64, "rating": pl.Float32,
                                "epoch": pl.Int64}, orient="row")


@pytest.fixture
def graph(graph_client: Neo4jClient) -> Neo4jClient:
    """User 1 rated movie 10 (3.0); movies 11 and 12 unrated."""
    empty_graph(graph_client)
    graph_client.run("CREATE (u:User {id: 1, archetype: 'casual', age_band: '25-34', country: 'FR'}) "
                     "CREATE (u)-[:RATED {rating: 3.0, timestamp: 100, time_of_day: '00-05'}]->(:Media {id: 10}) "
                     "CREATE (:Media {id: 11}) CREATE (:Media {id: 12})")
    return graph_client


def test_a_day_creates_new_pairs_and_sets_rated_ones(graph: Neo4jClient) -> None:
    changes = _changes([(10, 3.0, 100, 5.0, 1_600_000_000), (11, None, None, 4.0, 1_600_000_100)])
    day = day_delta.day_graph(changes, pl.DataFrame({"user_id": [1, 1], "movie_id": [10, 11]}), PROFILES)
    assert day.rated[day_delta.CREATED].to_list() == [False, True]
    day_delta.apply(graph, day)
    assert graph.read(RATED) == [{"movie_id": 10, "rating": 5.0}, {"movie_id": 11, "rating": 4.0}]


def test_a_pair_called_new_that_the_graph_holds_rolls_the_day_back(graph: Neo4jClient) -> None:
    # the day says movie 10 was never rated (no old value), the graph has it: a CREATE would double it
    changes = _changes([(10, None, None, 5.0, 1_600_000_000), (12, None, None, 2.0, 1_600_000_100)])
    day = day_delta.day_graph(changes, pl.DataFrame({"user_id": [1, 1], "movie_id": [10, 12]}), PROFILES)
    with pytest.raises(day_delta.GraphDayError, match="another RATED count"):
        day_delta.apply(graph, day)
    assert graph.read(RATED) == [{"movie_id": 10, "rating": 3.0}]  # nothing of the day was committed


def test_a_pair_the_writes_cannot_set_rolls_the_day_back(graph: Neo4jClient) -> None:
    # movie 99 has no Media node: its write matches nothing, so the writes set one relationship for two pairs
    changes = _changes([(11, None, None, 4.0, 1_600_000_000), (99, None, None, 2.0, 1_600_000_100)])
    day = day_delta.day_graph(changes, pl.DataFrame({"user_id": [1, 1, 1], "movie_id": [10, 11, 99]}), PROFILES)
    with pytest.raises(day_delta.GraphDayError, match="the pair writes set 1 RATED relationship"):
        day_delta.apply(graph, day)
    assert graph.read(RATED) == [{"movie_id": 10, "rating": 3.0}]
