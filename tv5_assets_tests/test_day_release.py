"""An arrival day reaches the served stores, on the sample, with the real engines (Milvus Lite, the local Neo4j,
AgentDB; the Milvus server too, with `-m matrix`): `day_release` journals, applies and audits the touched users'
rows and the day's new movies in every store and publishes the day; a repeat changes nothing; a corrected
re-delivery withdraws a movie it no longer brings; a failed store restores every store; a run killed mid-day leaves
a journal that the next run restores before it completes the day; a refit folds the days' ratings and movies in.

The tests of this module run in order on one lake and one persistent instance (a subprocess publishes too).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets.core.pools import apply_limits
from tv5_assets.definitions import defs
from tv5_assets.ingestion import served_days
from tv5_assets.ingestion.day_assets import ARRIVAL_DAYS, LANDING_DAYS
from tv5_assets.release import day_publish
from tv5_assets.sample.days import write_days
from tv5_assets.synthetic import day_people
from tv5_assets.vector_store import day_upsert, hosting
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets.vector_store.schema import HYBRID_MEDIA, HYBRID_USERS, MEDIA, USERS
from tv5_assets_tests.harness import SMALL_SAMPLE, lake_resources, local_neo4j, materialize, release_config
from tv5_assets_tests.milvus_support import drop_everything, make_resource

pytestmark = pytest.mark.neo4j
REPO = Path(__file__).resolve().parents[1]
DAYS = dg.AssetSelection.groups("days")
BEFORE_STORES = DAYS - dg.AssetSelection.assets("day_release")
TABLES = {"learning_sessions": "id", "learning_experiences": "session_id", "episodes": "session_id"}
# a step's natural key and values (its id is numbered per write; metadata.episode counts per user in a day's rows)
STEP = "session_id, timestamp, action, state, reward, next_state, success"


class Stack:
    def __init__(self, lake: Path, home: Path, instance: dg.DagsterInstance, days: list[str],
                 milvus: MilvusResource | None = None) -> None:
        self.lake, self.home, self.instance, self.days = lake, home, instance, days
        self.served = milvus or MilvusResource(uri=str(lake / "milvus.db"))

    def run(self, day: str, selection: dg.AssetSelection = DAYS, raise_on_error: bool = True
            ) -> dg.ExecuteInProcessResult:
        return dg.materialize([*(defs.assets or []), *(defs.asset_checks or [])], selection=selection,
                              partition_key=day, instance=self.instance,
                              resources=lake_resources(self.lake, milvus=self.served),
                              raise_on_error=raise_on_error)

    def stored(self, asset: str, day: str) -> pl.DataFrame:
        return pl.read_parquet(self.lake / asset / f"{day}.parquet")

    def milvus(self) -> MilvusResource:
        return self.served

    def movies(self, day: str) -> list[int]:
        return sorted(self.stored("day_movies", day)["movie_id"].to_list())

    def snapshot(self, users: list[int], movies: list[int] | None = None) -> dict[str, object]:
        """Every store's rows of `users` (and of `movies`), read from the stores themselves."""
        ids = pl.Series(users, dtype=pl.Int64)
        movie_ids = pl.Series(movies or [], dtype=pl.Int64)
        out: dict[str, object] = {}
        milvus = self.milvus()
        with milvus.connected():
            for spec, keys in ((USERS, ids), (HYBRID_USERS, ids), (MEDIA, movie_ids), (HYBRID_MEDIA, movie_ids)):
                name = milvus.alias_target(milvus.alias_name(spec.alias))
                milvus.ensure_searchable(name)  # Lite loads per process, as a reader does
                out[spec.alias] = day_upsert.read_rows(milvus, name, keys, spec)
        with dg.build_resources({"neo4j": local_neo4j()}) as resources:
            out["media"] = resources.neo4j.read(
                "UNWIND $ids AS id MATCH (m:Media {id: id}) RETURN m.id AS id, m.title AS title, m.year AS year, "
                "[(m)-[:HAS_GENRE]->(g:Genre) | g.name] AS genres, "
                "[(m)-[r:AVAILABLE_ON]->(p:Platform) | [p.name, r.regions, r.quality]] AS platforms ORDER BY id",
                {"ids": movie_ids.to_list()})
            for row in out["media"]:
                row["genres"], row["platforms"] = sorted(row["genres"]), sorted(row["platforms"])
            rated = resources.neo4j.read(
                "UNWIND $ids AS id MATCH (u:User {id: id})-[r:RATED]->(m:Media) "
                "RETURN u.id AS user_id, m.id AS movie_id, r.rating AS rating, r.timestamp AS timestamp, "
                "r.time_of_day AS time_of_day ORDER BY user_id, movie_id", {"ids": users})
            people = resources.neo4j.read("UNWIND $ids AS id MATCH (u:User {id: id}) RETURN u.id AS id, "
                                          "u.archetype AS archetype ORDER BY id", {"ids": users})
        out["rated"], out["users"] = rated, people
        sessions = [f"user-{u}" for u in users]
        marks = ",".join("?" * len(sessions))
        with sqlite3.connect(self.lake / "agentdb.db") as conn:
            for table, column in TABLES.items():
                out[table] = conn.execute(f"SELECT * FROM {table} WHERE {column} IN ({marks}) ORDER BY 1, 2",
                                          sessions).fetchall()
            out["steps"] = conn.execute(f"SELECT {STEP} FROM learning_experiences WHERE session_id IN ({marks}) "
                                        "ORDER BY 1, 2, 3", sessions).fetchall()
            out["episode_embeddings"] = conn.execute(
                f"SELECT * FROM episode_embeddings WHERE episode_id IN ({','.join('?' * len(users))}) ORDER BY 1",
                users).fetchall()
        return out


def _same(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], pl.DataFrame):
            assert a[key].equals(b[key]), key
        elif key == "learning_experiences":  # ids are numbered per write; the rows are equal on natural keys
            assert sorted(r[1:] for r in a[key]) == sorted(r[1:] for r in b[key]), key
        else:
            assert a[key] == b[key], key


# Milvus Lite, the embedded default, in CI; the Milvus server (collections of a prefix of their own) with -m matrix
@pytest.fixture(scope="module", params=["lite", pytest.param("server", marks=pytest.mark.matrix)])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, neo4j_server) -> Stack:
    lake, home = tmp_path_factory.mktemp("day_release_lake"), tmp_path_factory.mktemp("day_release_home")
    milvus = MilvusResource(uri=str(lake / "milvus.db")) if request.param == "lite" else make_resource("server", lake)
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        apply_limits(instance)
        result = materialize("*", lake, release_config(**SMALL_SAMPLE), instance=instance, milvus=milvus)
        assert result.success
        [release] = [Path(str(e.materialization.metadata["directory"].value))
                     for e in result.get_asset_materialization_events() if e.asset_key.path == ["movielens_release"]]
        files = write_days(release, lake.joinpath(*LANDING_DAYS), 3, 60, 8, 2, seed=5, erase=2, new_movies=2)
        days = sorted({p.stem.split("-", 1)[1] for p in files})
        instance.add_dynamic_partitions(ARRIVAL_DAYS.name, days)
        hosting.install()  # the days' runs serve Milvus Lite from a child process, as the `daily` job's executor does
        yield Stack(lake, home, instance, days, milvus)
        hosting.uninstall()
    if request.param == "server":
        drop_everything(milvus)


def _touched(stack: Stack, day: str) -> list[int]:
    return sorted(stack.stored("day_rating_changes", day)["user_id"].unique().to_list())


def test_a_day_reaches_every_store_as_its_rows_and_a_repeat_changes_nothing(stack: Stack) -> None:
    day = stack.days[0]
    delivered = set(pl.read_csv(stack.lake.joinpath(*LANDING_DAYS, f"ratings-{day}.csv"))["userId"].to_list())
    untouched_probe = sorted(set(pl.read_parquet(stack.lake / "ratings.parquet")["user_id"].to_list()) - delivered)[:3]
    before_untouched = stack.snapshot(untouched_probe)
    result = stack.run(day)
    assert result.success
    assert [e.passed for e in result.get_asset_check_evaluations()] and all(
        e.passed for e in result.get_asset_check_evaluations())
    users, movies = _touched(stack, day), stack.movies(day)
    assert set(users).isdisjoint(untouched_probe)
    after = stack.snapshot(users, movies)
    # Milvus: each touched user's entity is the day's vector
    vectors = stack.stored("day_user_vectors", day).filter(pl.col("vector").is_not_null()).sort("user_id")
    served = after["user_vectors"]
    assert served["id"].to_list() == vectors["user_id"].to_list()
    assert np.abs(np.stack(served["vector"].to_numpy()) - np.stack(vectors["vector"].to_numpy())).max() <= 1e-6
    hybrid = stack.stored("day_hybrid_user_vectors", day).filter(pl.col("vector").is_not_null())
    assert after["hybrid_user_vectors"]["id"].to_list() == sorted(hybrid["user_id"].to_list())
    # Neo4j: the touched users' RATED set is their current ratings
    current = stack.stored("day_user_ratings", day).filter(pl.col("user_id").is_in(users)).sort("user_id", "movie_id")
    assert [(r["user_id"], r["movie_id"], r["rating"], r["timestamp"]) for r in after["rated"]] == [
        (u, m, float(r), e) for u, m, r, e in current.select("user_id", "movie_id", "rating", "epoch").rows()]
    new_people = stack.stored("day_demographics", day)
    assert new_people.height == 2 and {p["id"] for p in after["users"]} >= set(new_people["user_id"].to_list())
    # AgentDB: a session per touched user, read by AgentDB itself
    assert len(after["learning_sessions"]) == len(users)
    new_session = f"user-{new_people['user_id'][0]}"
    assert NodeRuntime.locate().stats(stack.lake / "agentdb.db", new_session)["sessions"] >= 1
    # the day's new movies: Media with their genres and platforms, and an entity in both media collections
    brought = stack.stored("day_movies", day).sort("movie_id")
    assert len(movies) == 2 and [m["id"] for m in after["media"]] == movies
    assert [m["genres"] for m in after["media"]] == [sorted(g) for g in brought["genres"].to_list()]
    available = stack.stored("day_availability", day)
    assert [len(m["platforms"]) for m in after["media"]] == [
        available.filter(pl.col("movie_id") == m).height for m in movies] and available.height >= 2
    content = stack.stored("day_content_vectors", day).filter(pl.col("movie_id").is_in(movies)).sort("movie_id")
    assert after["media_vectors"]["id"].to_list() == movies == after["hybrid_media_vectors"]["id"].to_list()
    assert np.abs(np.stack(after["media_vectors"]["vector"].to_numpy())
                  - np.stack(content["vector"].to_numpy())).max() <= 1e-6
    rated_new = current.filter(pl.col("movie_id").is_in(movies))
    assert rated_new.height > 0  # the day's users rated a movie the same day brought (in the RATED set above)
    meta = result.asset_materializations_for_node("day_release")[0].metadata
    assert meta["touched_users"].value == len(users) and meta["user_vectors_untouched"].value > 0
    assert meta["movies_set"].value == 2 and meta["media_vectors_upserted"].value == 2
    assert served_days.published_days(served_days.published_folder(stack.lake)) == [date.fromisoformat(day)]
    assert not day_publish.journal_folder(stack.lake, date.fromisoformat(day)).exists()
    _same(stack.snapshot(untouched_probe), before_untouched)  # untouched users: not rewritten

    again = stack.run(day)  # applied twice: the delta is empty and no store changes
    assert stack.stored("day_rating_changes", day).is_empty()
    repeat = again.asset_materializations_for_node("day_release")[0].metadata
    assert repeat["changes"].value == 0 and repeat["movies_set"].value == 0
    _same(stack.snapshot(users, movies), after)


def test_a_corrected_day_withdraws_a_movie_it_no_longer_brings(stack: Stack) -> None:
    day = stack.days[0]
    movies = stack.movies(day)
    landing = stack.lake.joinpath(*LANDING_DAYS)
    original, original_ratings = ((landing / f"{kind}-{day}.csv").read_bytes() for kind in ("movies", "ratings"))
    ratings = pl.read_csv(landing / f"ratings-{day}.csv")
    dropped = [m for m in movies if m in ratings["movieId"].to_list()][:1]
    assert dropped, "the day rates one of its movies (test_a_day_reaches_every_store...)"
    before = stack.snapshot([], movies)
    # dropping a movie the day's own ratings still rate is refused whole, naming the ratings file and the rule
    kept = pl.read_csv(landing / f"movies-{day}.csv").filter(~pl.col("movieId").is_in(dropped))
    kept.write_csv(landing / f"movies-{day}.csv")
    refused = stack.run(day, raise_on_error=False)
    assert not refused.success
    message = " ".join(e.event_specific_data.error.to_string() for e in refused.get_step_failure_events())
    assert f"ratings-{day}.csv" in message and "unknown_movie" in message
    _same(stack.snapshot([], movies), before)
    # with the day's ratings of it withdrawn too, the correction removes the movie from every store
    ratings.filter(~pl.col("movieId").is_in(dropped)).write_csv(landing / f"ratings-{day}.csv")
    assert stack.run(day).success
    gone = stack.snapshot([], movies)
    assert [m["id"] for m in gone["media"]] == sorted(set(movies) - set(dropped))
    assert gone["media_vectors"]["id"].to_list() == sorted(set(movies) - set(dropped))
    published = served_days.read_published_movies(served_days.published_folder(stack.lake))
    assert sorted(published["movie_id"].to_list()) == sorted(set(movies) - set(dropped))
    # delivered again as it first was: the movie and its ratings are back, as before
    (landing / f"movies-{day}.csv").write_bytes(original)
    (landing / f"ratings-{day}.csv").write_bytes(original_ratings)
    assert stack.run(day).success
    _same(stack.snapshot([], movies), before)


def _inputs(stack: Stack, day: str) -> day_publish.DayInputs:
    changes, people = stack.stored("day_rating_changes", day), stack.stored("day_demographics", day)
    demographics = pl.scan_parquet(stack.lake / "demographics.parquet")
    profiles = day_publish.touched_profiles(demographics, changes, day_people.published_elsewhere(
        stack.lake, date.fromisoformat(day), demographics), people)
    return day_publish.DayInputs(
        date.fromisoformat(day), changes, stack.stored("day_user_ratings", day), stack.stored("day_user_vectors", day),
        stack.stored("day_hybrid_user_vectors", day), profiles,
        stack.stored("day_episodes", day), stack.stored("day_policies", day), stack.stored("day_ratings", day),
        stack.stored("day_erasures", day), day_publish.movies_of_day(
            stack.lake, date.fromisoformat(day), stack.stored("day_movies", day),
            stack.stored("day_content_vectors", day), stack.stored("day_hybrid_movie_vectors", day),
            stack.stored("day_availability", day)), people)


def test_a_store_failing_mid_day_restores_every_store_and_publishes_nothing(stack: Stack) -> None:
    day = stack.days[1]
    assert stack.run(day, BEFORE_STORES).success
    users, movies = _touched(stack, day), stack.movies(day)
    before = stack.snapshot(users, movies)
    assert movies and not before["media"] and before["media_vectors"].is_empty()  # not served yet

    def fail_after(store: str) -> None:
        if store == "user_vectors":  # one collection changed, the graph's transaction running beside it
            raise ConnectionError("Milvus went away")

    milvus = stack.milvus()
    with milvus.connected(), dg.build_resources({"neo4j": local_neo4j()}) as resources:
        stores = day_publish.DayStores(milvus, resources.neo4j.client, (stack.lake / "agentdb.db").resolve(),
                                       NodeRuntime.locate(), 10)
        with pytest.raises(ConnectionError):
            day_publish.publish(stack.lake, _inputs(stack, day), stores, print, after_store=fail_after)
    _same(stack.snapshot(users, movies), before)
    assert date.fromisoformat(day) not in served_days.published_days(served_days.published_folder(stack.lake))
    assert not day_publish.journal_folder(stack.lake, date.fromisoformat(day)).exists()


KILL_AFTER_GRAPH_AND_ONE_COLLECTION = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import dagster as dg
    from tv5_assets.agentdb.node import NodeRuntime
    from tv5_assets.release import day_publish
    from tv5_assets.vector_store import hosting
    from tv5_assets.vector_store.resources import MilvusResource
    from tv5_assets_tests.harness import local_neo4j
    from tv5_assets_tests.test_day_release import Stack, _inputs

    lake, day, uri, prefix = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    milvus = MilvusResource(uri=uri, collection_prefix=prefix)
    stack = Stack(lake, lake, None, [day], milvus)

    def kill(store):
        if store == "user_vectors":
            os.kill(os.getpid(), signal.SIGKILL)

    hosting.install()  # as in a `daily` run: killed, its Lite server process must let the file go by itself
    with milvus.connected(), dg.build_resources({"neo4j": local_neo4j()}) as resources:
        stores = day_publish.DayStores(milvus, resources.neo4j.client, (lake / "agentdb.db").resolve(),
                                       NodeRuntime.locate(), 10)
        day_publish.publish(lake, _inputs(stack, day), stores, print, after_store=kill)
""")


def test_a_run_killed_mid_day_is_restored_then_completed_by_the_next_run(stack: Stack) -> None:
    day = stack.days[1]
    assert stack.run(day, BEFORE_STORES).success
    users, movies = _touched(stack, day), stack.movies(day)
    before = stack.snapshot(users, movies)
    milvus = stack.milvus()
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_GRAPH_AND_ONE_COLLECTION, str(stack.lake), day,
                             milvus.uri, milvus.collection_prefix],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    journal = day_publish.journal_folder(stack.lake, date.fromisoformat(day))
    assert journal.exists()
    # a mixed state: the movies' collections and user_vectors written; hybrid_user_vectors, the graph's and AgentDB's
    # transactions run beside user_vectors, written (committed) or not when the process died
    half = stack.snapshot(users, movies)
    assert not half["user_vectors"].equals(before["user_vectors"])
    assert half["media_vectors"]["id"].to_list() == movies  # the day's movies went in before its users
    milvus = stack.milvus()
    with milvus.connected(), dg.build_resources({"neo4j": local_neo4j()}) as resources:
        stores = day_publish.DayStores(milvus, resources.neo4j.client, (stack.lake / "agentdb.db").resolve(),
                                       NodeRuntime.locate(), 10)
        assert day_publish.recover(stack.lake, stores, print) == [f"{day}: restored"]  # what the next run does first
    _same(stack.snapshot(users, movies), before)
    rerun = stack.run(day)
    assert rerun.success
    assert rerun.asset_materializations_for_node("day_release")[0].metadata["touched_users"].value == len(users)
    assert date.fromisoformat(day) in served_days.published_days(served_days.published_folder(stack.lake))
    assert not journal.exists()
    completed = stack.snapshot(users, movies)
    assert completed["user_vectors"].equals(half["user_vectors"])
    assert not completed["hybrid_user_vectors"].equals(before["hybrid_user_vectors"])
    assert any(half["hybrid_user_vectors"].equals(state["hybrid_user_vectors"]) for state in (before, completed))
    assert [m["id"] for m in completed["media"]] == movies and completed["media_vectors"].equals(half["media_vectors"])
    current = stack.stored("day_user_ratings", day).filter(pl.col("user_id").is_in(users)).sort("user_id", "movie_id")
    assert [(r["user_id"], r["movie_id"], r["rating"]) for r in completed["rated"]] == [
        (u, m, float(r)) for u, m, r in current.select("user_id", "movie_id", "rating").rows()]


def test_a_refit_folds_the_published_days_in_and_a_release_without_them_is_refused(stack: Stack) -> None:
    published = served_days.published_days(served_days.published_folder(stack.lake))
    assert published == [date.fromisoformat(d) for d in stack.days[:2]]
    users = sorted(set(_touched(stack, stack.days[0])) | set(_touched(stack, stack.days[1])))
    movies = stack.movies(stack.days[0]) + stack.movies(stack.days[1])
    served_before = stack.snapshot(users, movies)
    refused = materialize("release", stack.lake, instance=stack.instance, raise_on_error=False,
                          milvus=stack.milvus())
    assert not refused.success
    message = " ".join(str(e.event_specific_data.error.message) for e in refused.get_step_failure_events())
    assert "not folded into the `ratings`" in message and stack.days[0] in message and stack.days[1] in message
    _same(stack.snapshot(users, movies), served_before)  # nothing published

    refit = materialize("*", stack.lake, release_config(**SMALL_SAMPLE), instance=stack.instance,
                        milvus=stack.milvus())
    assert refit.success
    meta = refit.asset_materializations_for_node("ratings")[0].metadata
    assert meta["folded_days"].value == stack.days[:2]
    ratings = pl.read_parquet(stack.lake / "ratings.parquet")
    current = stack.stored("day_user_ratings", stack.days[1])  # the second day's scope, after both days
    mine = ratings.filter(pl.col("user_id").is_in(current["user_id"].unique().implode()))
    assert mine.select("user_id", "movie_id", "rating").sort("user_id", "movie_id").rows() == \
        current.select("user_id", "movie_id", "rating").sort("user_id", "movie_id").rows()
    assert refit.asset_materializations_for_node("movies")[0].metadata["folded_day_movies"].value == len(movies)
    assert set(movies) <= set(pl.read_parquet(stack.lake / "movies.parquet")["movie_id"].to_list())
    refitted = stack.snapshot(users, movies)  # the refit serves what the days served, user by user
    assert refitted["rated"] == served_before["rated"]
    # the days' movies: the same Media and genres; their content vectors equal the days' (one encoder, one text)
    assert [(m["id"], m["title"], m["year"], m["genres"]) for m in refitted["media"]] == [
        (m["id"], m["title"], m["year"], m["genres"]) for m in served_before["media"]]
    a, b = refitted["media_vectors"], served_before["media_vectors"]
    assert a["id"].to_list() == movies and np.abs(np.stack(a["vector"].to_numpy())
                                                  - np.stack(b["vector"].to_numpy())).max() <= 1e-6
    # the same users; archetypes are a global model (quotas over everyone's behaviour), redrawn by a refit
    assert [u["id"] for u in refitted["users"]] == [u["id"] for u in served_before["users"]]
    for alias in ("user_vectors", "hybrid_user_vectors"):
        assert refitted[alias]["id"].to_list() == served_before[alias]["id"].to_list()
    a, b = refitted["user_vectors"], served_before["user_vectors"]  # hybrid ones move: the refit refits ALS
    assert np.abs(np.stack(a["vector"].to_numpy()) - np.stack(b["vector"].to_numpy())).max() <= 1e-6
    with sqlite3.connect(stack.lake / "agentdb.db") as conn:
        sessions = conn.execute("SELECT COUNT(*) FROM learning_sessions").fetchone()[0]
    assert sessions == ratings["user_id"].n_unique()
    # AgentDB: the touched users' recent steps equal on natural keys, their vectors' embeddings within 1e-6
    assert refitted["steps"] == served_before["steps"] and refitted["steps"]
    embedded = {row[0]: np.frombuffer(row[1], np.float32) for row in refitted["episode_embeddings"]}
    assert embedded.keys() == {row[0] for row in served_before["episode_embeddings"]}
    assert max(np.abs(embedded[row[0]] - np.frombuffer(row[1], np.float32)).max()
               for row in served_before["episode_embeddings"]) <= 1e-6

    last = stack.days[2]  # a day after the refit: its delta is taken against the folded base alone
    result = stack.run(last)
    assert result.success
    changes = result.asset_materializations_for_node("day_changes")[0].metadata
    assert changes["folded_days"].value == 2 and changes["published_days"].value == 0
    assert date.fromisoformat(last) in served_days.published_days(served_days.published_folder(stack.lake))
