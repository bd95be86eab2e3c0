"""The pure side of a day's graph writes: what a day sets and removes, and its parts of whole users."""

from __future__ import annotations

import polars as pl

from tv5_assets.graph_store import day_delta

CHANGES = pl.DataFrame({
    "user_id": [1, 1, 2, 3, 3, 3], "movie_id": [10, 11, 10, 10, 12, 13],
    "change": ["inserted", "erased", "replaced", "withdrawn", "withdrawn", "withdrawn"],
    "old_rating": [None, 3.0, 2.0, 4.0, 4.5, 1.0], "old_epoch": [None, 100, 200, 300, 300, 300],
    "rating": [4.0, None, 5.0, None, None, None], "epoch": [1_600_000_000, None, 1_600_003_600, None, None, None],
}, schema_overrides={"user_id": pl.Int32, "movie_id": pl.Int32, "old_rating": pl.Float32, "rating": pl.Float32})
CURRENT = pl.DataFrame({"user_id": [1, 1, 2], "movie_id": [10, 20, 10]}, schema={"user_id": pl.Int32,
                                                                               "movie_id": pl.Int32})
PROFILES = pl.DataFrame({"user_id": [1, 2, 3], "archetype": ["a", "b", "c"], "age_band": ["x", "y", "z"],
                         "country": ["FR", "CA", "BE"]})


def test_a_day_sets_new_values_removes_gone_pairs_and_users_left_without_ratings() -> None:
    day = day_delta.day_graph(CHANGES, CURRENT, PROFILES)
    assert day.rated.select("user_id", "movie_id", "rating", "time_of_day").rows() == [
        (1, 10, 4.0, "12-17"), (2, 10, 5.0, "12-17")]
    assert day.unrated.rows() == [(1, 11), (3, 10), (3, 12), (3, 13)]
    assert day.counts.rows() == [(1, 2), (2, 1), (3, 0)]  # the audit's RATED count per touched user
    assert day.users["id"].to_list() == [1, 2] and day.removed_users.to_list() == [3]


def test_restoring_sets_the_old_values_back() -> None:
    before_users = pl.DataFrame({"id": [1, 3], "archetype": ["a", "c"], "age_band": ["x", "z"],
                                 "country": ["FR", "BE"]})
    back = day_delta.restoring(CHANGES, before_users, pl.DataFrame({"id": [1, 2, 3], "rated": [2, 1, 3]}))
    assert back.rated.select("user_id", "movie_id", "rating").rows() == [
        (1, 11, 3.0), (2, 10, 2.0), (3, 10, 4.0), (3, 12, 4.5), (3, 13, 1.0)]
    assert back.unrated.rows() == [(1, 10)]
    assert back.removed_users.to_list() == [2]  # user 2 had no node before the day


def test_a_large_day_is_cut_into_parts_of_whole_users() -> None:
    day = day_delta.day_graph(CHANGES, CURRENT, PROFILES)
    assert day_delta.parts(day, 10) == [day]
    pieces = day_delta.parts(day, 2)
    assert [sorted(set(p.counts["id"].to_list())) for p in pieces] == [[1], [2], [3]]  # cumulative 2, 3, 6
    for piece in pieces:
        ids = set(piece.counts["id"].to_list())
        assert set(piece.rated["user_id"]) | set(piece.unrated["user_id"]) <= ids
    assert sum(p.rated.height + p.unrated.height for p in pieces) == day.rated.height + day.unrated.height
    assert sum(p.removed_users.len() for p in pieces) == 1


def test_pairs_new_to_the_served_state_are_created_and_the_others_merged() -> None:
    day = day_delta.day_graph(CHANGES, CURRENT, PROFILES)
    assert day.rated.select("user_id", "movie_id", day_delta.CREATED).rows() == [(1, 10, True), (2, 10, False)]
    writes = [(query, params) for query, params in day_delta.statements(day, None) if ":RATED]->(m)" in query]
    assert [(" CREATE " in q, " MERGE " in q, p["user_id"]) for q, p in writes] == [
        (True, False, [1]), (False, True, [2])]
    assert all(day_delta.CREATED not in params for _, params in writes)
    back = day_delta.restoring(CHANGES, pl.DataFrame({"id": [1], "archetype": ["a"], "age_band": ["x"],
                                                      "country": ["FR"]}), day.counts)
    restores = [q for q, _ in day_delta.statements(back, None) if ":RATED]->(m)" in q]
    assert restores and all(" MERGE " in q and " CREATE " not in q for q in restores)  # a restore can run again


def test_the_values_sample_is_evenly_spaced_and_whole_when_small() -> None:
    rated = pl.DataFrame({"user_id": list(range(10)), "movie_id": [1] * 10})
    assert day_delta.values_sample(rated, 20).equals(rated)
    assert day_delta.values_sample(rated, 3)["user_id"].to_list() == [0, 4, 8]
    assert day_delta.values_sample(rated, 5)["user_id"].to_list() == [0, 2, 4, 6, 8]
    assert day_delta.values_sample(rated.clear(), 5).height == 0
