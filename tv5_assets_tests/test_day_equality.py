"""The comparisons `benchmarks.day_week` makes after a sequence of day runs (`benchmarks.day_equality`), on small
frames built here: the captured runs rebuild the served state (latest capture wins, removed users go), that state
equals the full build's functions over the same current ratings (steps, collaborative vectors, AgentDB rows of a
SQLite file loaded by the project's writer and updated by the day's own row functions), and each comparison
notices a changed, missing or extra row."""

from __future__ import annotations

import os
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks import day_equality as eq
from tv5_assets.agentdb import day_rows
from tv5_assets.agentdb.writer import load_rows
from tv5_assets.embeddings import day_vectors
from tv5_assets.embeddings.user_vectors import user_vectors
from tv5_assets.rl import transitions as tr
from tv5_assets.rl.day_episodes import touched_episodes
from tv5_assets.rl.day_policies import as_episodes
from tv5_assets.rl.policies import build_policies
from tv5_assets.synthetic import archetypes as arc
from tv5_assets.taste import day_movies, factors, hybrid
from tv5_assets.taste.assets import SETTINGS

T0 = datetime(2020, 1, 1, tzinfo=timezone.utc)
DAY_1, DAY_2 = date(2024, 3, 1), date(2024, 3, 2)
MOVIES = list(range(1, 41))  # the full build's; day 2 brings movie 41
CONTENT_DIM, PER_USER = 8, 3
ARCHETYPES = [arc.CASUAL, arc.CINEPHILE, arc.FAMILY, arc.YOUNG_ADULT, arc.INTERNATIONAL, arc.GENRE_SPECIALIST]
# AgentDB's own DDL of the tables a build writes (as AgentDB 1.6.1 creates them; read from a built file)
AGENTDB_DDL = """
CREATE TABLE episodes (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
  session_id TEXT NOT NULL, task TEXT NOT NULL, input TEXT, output TEXT, critique TEXT, reward REAL DEFAULT 0.0,
  success BOOLEAN DEFAULT 0, latency_ms INTEGER, tokens_used INTEGER, tags TEXT, metadata JSON,
  created_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')));
CREATE TABLE episode_embeddings (episode_id INTEGER PRIMARY KEY, embedding BLOB NOT NULL,
  embedding_model TEXT DEFAULT 'all-MiniLM-L6-v2', FOREIGN KEY(episode_id) REFERENCES episodes(id) ON DELETE CASCADE);
CREATE TABLE learning_experiences (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
  state TEXT NOT NULL, action TEXT NOT NULL, reward REAL NOT NULL, next_state TEXT,
  success INTEGER NOT NULL DEFAULT 0, timestamp INTEGER NOT NULL DEFAULT (strftime('%s', 'now')), metadata JSON);
CREATE TABLE learning_sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, session_type TEXT NOT NULL,
  config JSON NOT NULL, start_time INTEGER NOT NULL DEFAULT (strftime('%s', 'now')), end_time INTEGER,
  status TEXT NOT NULL DEFAULT 'active', metadata JSON);
CREATE TABLE learning_policies (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
  state_action_pairs TEXT NOT NULL, q_values TEXT NOT NULL, visit_counts TEXT NOT NULL, avg_rewards TEXT NOT NULL,
  version INTEGER NOT NULL, created_at INTEGER DEFAULT (strftime('%s', 'now')),
  FOREIGN KEY (session_id) REFERENCES learning_sessions(id) ON DELETE CASCADE);
CREATE TABLE learning_state_embeddings (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
  state TEXT NOT NULL, embedding BLOB NOT NULL,
  FOREIGN KEY (session_id) REFERENCES learning_sessions(id) ON DELETE CASCADE);
"""


def _ratings(rows: list[tuple[int, int, float, float]]) -> pl.DataFrame:
    """(user, movie, stars, day offset) rows in the `ratings` asset's columns and order."""
    frame = pl.DataFrame([(u, m, r, T0 + timedelta(days=d)) for u, m, r, d in rows], orient="row",
                         schema={"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32,
                                 "timestamp": pl.Datetime("us", "UTC")})
    return frame.unique(["user_id", "movie_id"], keep="last").sort("user_id", "timestamp", "movie_id")


BASE = _ratings([(u, 1 + (u * 7 + i * 3) % 40, 1.0 + ((u + i) % 9) * 0.5, 5.0 * i + (i // 3) * 40 + u)
                 for u in range(1, 7) for i in range(4 + u)])
# day 1: user 2 rates two films late (a new session), user 3 re-rates a film, user 4 is erased, user 7 is new;
# day 2: user 2 again, user 5 rates the film the day brings in (41)
DAY_1_ROWS = [(2, 33, 5.0, 400), (2, 34, 4.0, 400.5), (3, int(BASE.filter(pl.col("user_id") == 3)["movie_id"][0]),
                                                        0.5, 401), (7, 5, 3.0, 402), (7, 6, 4.5, 403), (7, 7, 2.0, 404)]
DAY_2_ROWS = [(2, 35, 3.5, 402), (5, 41, 4.0, 405)]


def _current(base: pl.DataFrame, rows: list[tuple[int, int, float, float]], erased: tuple[int, ...] = ()
             ) -> pl.DataFrame:
    """The current ratings after a day: its rows win per (user, movie), the erased users' rows go."""
    return _ratings([(u, m, r, (t - T0).total_seconds() / 86400) for u, m, r, t in base.iter_rows()
                     if u not in erased] + rows)


def _day_rows(current: pl.DataFrame) -> pl.DataFrame:
    """Current ratings in `day_user_ratings`' columns."""
    return current.select("user_id", "movie_id", "rating", pl.col("timestamp").dt.epoch("s").alias("epoch"),
                          pl.lit(DAY_1).alias("arrival"))


@pytest.fixture(scope="module")
def movies() -> dict[str, pl.DataFrame]:
    """The full build's movie side (1-40), and movie 41's vectors as a day builds them (`taste.day_movies`)."""
    rng = np.random.default_rng(3)
    content = pl.DataFrame({"movie_id": pl.Series([*MOVIES, 41], dtype=pl.Int32), "vector": pl.Series(
        rng.normal(size=(len(MOVIES) + 1, CONTENT_DIM)).astype(np.float32), dtype=pl.Array(pl.Float32, CONTENT_DIM))})
    base_factors = pl.DataFrame({
        "movie_id": pl.Series(MOVIES, dtype=pl.Int32),
        "vector": pl.Series(rng.normal(size=(len(MOVIES), SETTINGS.factors)).astype(np.float32) * 0.3,
                            dtype=pl.Array(pl.Float32, SETTINGS.factors)),
        "ratings": pl.Series([5] * len(MOVIES), dtype=pl.UInt32), "cold": [False] * len(MOVIES)})
    base_content, new_content = content.filter(pl.col("movie_id") <= 40), content.filter(pl.col("movie_id") == 41)
    cold = day_movies.cold_factors(base_content, base_factors, new_content, SETTINGS.cold_ridge)
    return {"content": base_content, "factors": base_factors, "new_content": new_content, "new_factors": cold,
            "new_hybrid": day_movies.hybrid_movies(new_content, cold.select("movie_id", "vector"), base_factors),
            "all_content": content, "all_factors": pl.concat([base_factors, cold])}


def _people(users: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"user_id": pl.Series(users, dtype=pl.Int32),
                         "archetype": [ARCHETYPES[u % 6] for u in users]})


def _full(current: pl.DataFrame, content: pl.DataFrame, movie_factors: pl.DataFrame,
          people: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """What the full build's functions give over `current`, against the given movie side."""
    steps = eq.full_episodes(current)
    return {"episodes": steps, "policies": build_policies(steps.lazy(), people),
            "user_vectors": user_vectors(current, content.select("movie_id", "vector")).frame,
            "collaborative": eq.full_fold_in(current, movie_factors)}


def _run(lake: Path, day: date, current: pl.DataFrame, touched: list[int], new_people: pl.DataFrame,
         people: pl.DataFrame, movies: dict[str, pl.DataFrame], new_movie: bool) -> None:
    """The partitions a `daily` run writes for `day`, built by the day assets' own functions; with `new_movie`
    the stores have gained movie 41 (the run's movie partitions hold it)."""
    users = pl.DataFrame({"user_id": pl.Series(sorted(touched), dtype=pl.Int32)})
    scope = _day_rows(current).join(users, on="user_id", how="semi")
    steps = touched_episodes(scope, users, tr.DEFAULT_SESSION_GAP)
    rated = day_vectors.ratings_of(scope, users)
    extra = {name: movies[name] if new_movie else movies[name].clear()
             for name in ("new_content", "new_factors", "new_hybrid")}
    content_side = pl.concat([movies["content"], extra["new_content"]])
    factor_side = pl.concat([movies["factors"], extra["new_factors"]]).select("movie_id", "vector")
    content = day_vectors.with_removed(user_vectors(rated, content_side).frame, users)
    collab = day_vectors.with_removed(factors.user_factors(rated.lazy(), factor_side, SETTINGS), users)
    ids, left, right = hybrid.aligned(content.drop_nulls("vector"), collab.drop_nulls("vector"), "user_id")
    combined = hybrid.frame("user_id", ids, hybrid.user_vectors(left, right, hybrid.CONTENT_WEIGHT))
    mixed = day_vectors.with_removed(combined, users)
    parts = {"day_rating_changes": users.with_columns(pl.lit("inserted").alias("change")),
             "day_demographics": new_people, "day_episodes": steps,
             "day_policies": build_policies(as_episodes(steps).lazy(), pl.concat([people, new_people])
                                            .unique("user_id", keep="first")),
             "day_user_vectors": content, "day_collaborative_user_vectors": collab, "day_hybrid_user_vectors": mixed,
             "day_content_vectors": extra["new_content"], "day_collaborative_movie_vectors": extra["new_factors"],
             "day_hybrid_movie_vectors": extra["new_hybrid"]}
    for asset, frame in parts.items():
        (lake / asset).mkdir(parents=True, exist_ok=True)
        frame.write_parquet(lake / asset / f"{day.isoformat()}.parquet")


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory, movies: dict[str, pl.DataFrame]) -> dict:
    """Day 1, then day 2 (which brings movie 41), then day 1 re-delivered (the same rows: it recomputes its users
    on top of day 2), each captured after its run; the base and the full build over the final current ratings."""
    lake, store = tmp_path_factory.mktemp("lake"), tmp_path_factory.mktemp("work") / "captures"
    people = _people(list(range(1, 7)))
    people.write_parquet(lake / "demographics.parquet")
    after_1 = _current(BASE, DAY_1_ROWS, erased=(4,))
    after_2 = _current(after_1, DAY_2_ROWS)
    new = _people([7]).with_columns(pl.lit(arc.FAMILY).alias("archetype"))  # drawn by the day, not by user id
    for day, current, touched, new_movie in ((DAY_1, after_1, [2, 3, 4, 7], False), (DAY_2, after_2, [2, 5], True),
                                             (DAY_1, after_2, [2, 3, 4, 7], True)):
        _run(lake, day, current, touched, new if 7 in touched else new.clear(), people, movies, new_movie)
        eq.capture(lake, day, store)
    everyone = eq.archetypes(people, eq.captures(store))
    return {"lake": lake, "store": store, "people": people, "everyone": everyone, "current": after_2,
            "base": _full(BASE, movies["content"], movies["factors"], people),
            "full": _full(after_2, movies["all_content"], movies["all_factors"], everyone)}


def test_captures_keep_every_run_in_application_order(week: dict) -> None:
    found = eq.captures(week["store"])
    assert [p.name for p in found] == ["1-2024-03-01", "2-2024-03-02", "3-2024-03-01"]
    assert {p.name for p in found[0].iterdir()} == {f"{a}.parquet" for a in eq.CAPTURED}
    assert eq.base_changed(week["lake"], week["store"]) == []


def test_served_movies_are_the_full_builds_and_the_latest_runs_new_ones(week: dict, movies: dict,
                                                                         tmp_path: Path) -> None:
    captured = eq.captures(week["store"])
    served = eq.served_movies(movies["factors"], captured, "day_collaborative_movie_vectors")
    assert served.equals(movies["all_factors"].select("movie_id", "vector").sort("movie_id"))
    assert served["movie_id"].to_list() == [*MOVIES, 41]
    assert eq.served_movies(movies["factors"], captured[:1], "day_collaborative_movie_vectors")["movie_id"] \
        .to_list() == MOVIES  # before day 2 brought 41
    withdrawn = tmp_path / "4-2024-03-02"  # a correction of day 2 without the movie: the latest run lacks it
    withdrawn.mkdir()
    movies["new_factors"].clear().write_parquet(withdrawn / "day_collaborative_movie_vectors.parquet")
    assert 41 not in eq.served_movies(movies["factors"], [*captured, withdrawn],
                                      "day_collaborative_movie_vectors")["movie_id"].to_list()
    assert eq.served_movies(movies["factors"], [tmp_path], "day_collaborative_movie_vectors")["movie_id"] \
        .to_list() == MOVIES  # a run from before days brought movies


def test_base_changed_names_a_table_replaced_since_the_captures(week: dict, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    week["people"].write_parquet(lake / "demographics.parquet")
    eq.capture(week["lake"], DAY_2, tmp_path / "store")  # stamps week's lake, not this one
    assert eq.base_changed(lake, tmp_path / "store") == ["demographics.parquet"]
    path = week["lake"] / "demographics.parquet"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    try:
        assert eq.base_changed(week["lake"], tmp_path / "store") == ["demographics.parquet"]
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_incremental_takes_each_users_latest_capture_and_drops_removed_users(tmp_path: Path) -> None:
    def vectors(rows: dict[int, float | None]) -> pl.DataFrame:
        return pl.DataFrame({"user_id": pl.Series(list(rows), dtype=pl.Int32), "vector": pl.Series(
            [None if v is None else [v, v] for v in rows.values()], dtype=pl.Array(pl.Float32, 2))})

    base = vectors({1: 1.0, 2: 2.0, 5: 5.0})
    runs = [vectors({1: 10.0, 2: None}), vectors({1: 20.0, 3: 30.0}), vectors({1: 11.0})]
    folders = []
    for n, frame in enumerate(runs, start=1):
        folder = tmp_path / f"{n}-2024-03-0{n}"
        folder.mkdir()
        frame.write_parquet(folder / "day_user_vectors.parquet")
        folders.append(folder)
    state = eq.incremental(base, folders, "day_user_vectors")
    assert state["user_id"].to_list() == [1, 3, 5]  # 2 removed (null vector), 3 new, 5 untouched
    assert [v[0] for v in state["vector"].to_list()] == [11.0, 30.0, 5.0]  # 1: the latest run that touched it
    assert eq.incremental(base, [], "day_user_vectors").equals(base)


def test_archetypes_keep_the_person_of_the_day_that_drew_the_user(tmp_path: Path) -> None:
    """A day that touches a user another day brought in draws no person for them (`day_people`): the user keeps
    the earlier run's, and a re-delivery that draws the user again wins."""
    base = _people([1, 2])
    runs = [(7, arc.FAMILY), (None, None), (8, arc.CINEPHILE)]  # run 2 touches 7 and 1, draws nobody
    for n, (user, archetype) in enumerate(runs, start=1):
        folder = tmp_path / f"{n}-2024-03-0{n}"
        folder.mkdir()
        drawn = [] if user is None else [user]
        pl.DataFrame({"user_id": pl.Series(drawn, dtype=pl.Int32), "archetype": [archetype] * len(drawn)},
                     schema={"user_id": pl.Int32, "archetype": pl.String}).write_parquet(
            folder / "day_demographics.parquet")
        pl.DataFrame({"user_id": pl.Series([7, 1], dtype=pl.Int32)}).write_parquet(folder / f"{eq.CHANGES}.parquet")
    redrawn = tmp_path / "4-2024-03-01"  # day 1 re-delivered: draws 7 again
    redrawn.mkdir()
    pl.DataFrame({"user_id": pl.Series([7], dtype=pl.Int32), "archetype": [arc.CINEPHILE]}).write_parquet(
        redrawn / "day_demographics.parquet")
    found = eq.archetypes(base, eq.captures(tmp_path)[:3])
    assert dict(zip(found["user_id"], found["archetype"])) == {1: base["archetype"][0], 2: base["archetype"][1],
                                                               7: arc.FAMILY, 8: arc.CINEPHILE}
    found = eq.archetypes(base, eq.captures(tmp_path))
    assert dict(zip(found["user_id"], found["archetype"]))[7] == arc.CINEPHILE


def test_incremental_steps_equal_the_full_build_on_natural_keys(week: dict) -> None:
    steps = eq.incremental(week["base"]["episodes"], eq.captures(week["store"]), "day_episodes")
    assert "user_episode" in steps.columns and 4 not in steps["user_id"].to_list()  # the erased user's steps went
    figures = eq.episodes_equal(steps, week["full"]["episodes"])
    assert figures["equal"], figures
    assert figures["rows"] == week["current"].height and figures["users"] == 6
    stale = eq.episodes_equal(eq.incremental(week["base"]["episodes"], [], "day_episodes"), week["full"]["episodes"])
    assert not stale["equal"] and stale["missing"] > 0 and stale["extra"] > 0  # the days are seen


def test_episodes_equal_notices_a_changed_missing_or_renumbered_step(week: dict) -> None:
    full = week["full"]["episodes"]
    steps = eq.incremental(week["base"]["episodes"], eq.captures(week["store"]), "day_episodes")
    changed = steps.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(0.5, pl.Float32))
                                 .otherwise(pl.col("reward")).alias("reward"))
    found = eq.episodes_equal(changed, full)
    assert not found["equal"] and found["differing_rows"] == 1 and found["differing_per_column"] == {"reward": 1}
    found = eq.episodes_equal(steps.slice(1), full)
    assert not found["equal"] and found["missing"] == 1 and found["extra"] == 0
    found = eq.episodes_equal(pl.concat([steps, steps.slice(0, 1)]).sample(fraction=1.0, shuffle=True, seed=1), full)
    assert not found["equal"] and found["duplicate_keys"] == 1
    shifted = steps.with_columns(pl.col("user_episode") + 7)  # a per-user offset: the global numbering's difference
    assert eq.episodes_equal(shifted.sample(fraction=1.0, shuffle=True, seed=2), full)["equal"]
    merged = steps.with_columns(pl.when((pl.col("user_id") == 1) & (pl.col("user_episode") > 0))
                                .then(pl.col("user_episode") - 1).otherwise(pl.col("user_episode"))
                                .alias("user_episode"))
    found = eq.episodes_equal(merged, full)
    assert not found["equal"] and "episode_in_user" in found["differing_per_column"]


def test_steps_compared_in_parts_of_users_add_up_to_the_whole(week: dict) -> None:
    full, captured = week["full"]["episodes"], eq.captures(week["store"])
    whole = eq.episodes_equal(eq.incremental(week["base"]["episodes"], captured, "day_episodes"), full)
    parts = []
    for users in (pl.col("user_id") < 3, pl.col("user_id").is_between(3, 6), pl.col("user_id") > 6):
        steps = eq.incremental(week["base"]["episodes"], captured, "day_episodes", where=users)
        if users.meta.eq(pl.col("user_id") > 6):
            steps = steps.with_columns(pl.col("step") + 1)  # a difference in one part
        parts.append(eq.episodes_equal(steps, full.filter(users)))
    together = eq.combined(parts)
    assert together["rows"] == whole["rows"] and together["users"] == whole["users"] == 6
    assert not together["equal"] and together["differing_per_column"] == {"step": 3}  # user 7's three steps
    assert eq.combined(parts[:2])["equal"] and eq.combined(parts[:2])["recast"] == []


def test_keyed_diff_locates_a_difference_by_hashes_above_its_size(monkeypatch: pytest.MonkeyPatch,
                                                                  week: dict) -> None:
    monkeypatch.setattr(eq, "HASHED_ABOVE", 0)
    full = week["full"]["episodes"]
    changed = full.slice(1).with_columns(pl.when(pl.col("step") == 0).then(True).otherwise(pl.col("timeouts"))
                                         .alias("timeouts"))
    found = eq.keyed_diff(changed, full, eq.EPISODE_KEY, eq.EPISODE_FIELDS)
    starts = int((full.slice(1)["step"] == 0).sum() - (full.slice(1).filter(pl.col("step") == 0)["timeouts"]).sum())
    assert found["missing"] == 1 and found["differing_rows"] == starts > 0
    assert found["differing_per_column"] == {"timeouts": starts}
    assert [e["timeouts"] for e in found["examples"]] == [[True, False]] * min(starts, 3)  # traced to their keys
    assert all(set(e) == {*eq.EPISODE_KEY, "timeouts"} for e in found["examples"])


def test_collaborative_state_equals_a_full_fold_in_and_a_gap_is_noticed(week: dict, movies: dict) -> None:
    captured = eq.captures(week["store"])
    state = eq.incremental(week["base"]["collaborative"], captured, "day_collaborative_user_vectors")
    full = week["full"]["collaborative"]  # against the served factors: the full build's and movie 41's
    touched = pl.col("user_id").is_in(eq.touched_users(captured)["user_id"].implode())
    assert sorted(eq.touched_users(captured)["user_id"].to_list()) == [2, 3, 4, 5, 7]
    figures = eq.collaborative_equal(state.filter(touched), full.filter(touched))
    assert figures["equal"] and figures["compared"] == 4 and figures["max_gap"] <= 1e-5, figures
    # users 1 and 6 were folded in before movie 41 arrived, and ALS's solve reads every movie's factors (its
    # Y'Y), so a full fold-in moves them a little: the comparison says so, and they equal the full build's own
    figures = eq.collaborative_equal(state, full)
    assert not figures["equal"] and figures["over_tolerance"] == 2 and figures["missing"] == figures["extra"] == 0
    before = eq.full_fold_in(week["current"], movies["factors"])
    assert eq.collaborative_equal(state.filter(~touched), before.filter(~touched))["equal"]
    moved = state.with_columns(pl.when(pl.col("user_id") == 5).then(pl.col("vector").arr.eval(pl.element() + 1e-4))
                               .otherwise(pl.col("vector")).alias("vector"))
    figures = eq.collaborative_equal(moved.filter(touched), full.filter(touched))
    assert not figures["equal"] and figures["over_tolerance"] == 1 and figures["max_gap"] > 1e-5
    figures = eq.collaborative_equal(state.filter(touched & (pl.col("user_id") != 7)), full.filter(touched))
    assert not figures["equal"] and figures["missing"] == 1
    stale = eq.incremental(week["base"]["collaborative"], [], "day_collaborative_user_vectors")
    assert not eq.collaborative_equal(stale.filter(touched), full.filter(touched))["equal"]  # the days are seen


@pytest.fixture
def served_agentdb(week: dict, tmp_path: Path) -> Path:
    """The base's AgentDB file (the full build's rows loaded by the writer), then each captured run's rows applied
    in place by the day's own row functions, as `day_release` does."""
    path = tmp_path / "agentdb.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(AGENTDB_DDL)
    base = week["base"]
    load_rows(path, eq.expected_agentdb(base["episodes"], base["policies"], base["user_vectors"], PER_USER))
    for folder in eq.captures(week["store"]):
        part = {a: pl.read_parquet(folder / f"{a}.parquet") for a in eq.CAPTURED}
        users = part["day_rating_changes"]["user_id"]
        with sqlite3.connect(path) as conn:
            first = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM learning_experiences").fetchone()[0]
        day_rows.apply(path, users, day_rows.day_contents(part["day_episodes"], part["day_policies"],
                                                          part["day_user_vectors"], PER_USER, first))
    return path


def _expected(week: dict, users: list[int] | None = None):
    full = week["full"]
    return eq.expected_agentdb(full["episodes"], full["policies"], full["user_vectors"], PER_USER, users)


def test_agentdb_after_the_days_equals_the_full_builds_rows_but_for_surrogate_ids(week: dict,
                                                                                  served_agentdb: Path) -> None:
    with sqlite3.connect(served_agentdb) as conn:  # the known differences are there, and left out
        ids = [r[0] for r in conn.execute("SELECT id FROM learning_experiences WHERE session_id = 'user-2'")]
        episodes = [r[0] for r in conn.execute("SELECT json_extract(metadata, '$.episode') FROM learning_experiences "
                                               "WHERE session_id = 'user-5'")]
    expected = _expected(week)
    assert min(ids) > expected.experiences.height  # the day's experience ids continue the file's
    full_episodes = expected.experiences.filter(pl.col("session_id") == "user-5")["metadata"] \
        .str.json_path_match("$.episode").cast(pl.Int64).to_list()
    assert episodes != full_episodes  # per-user count against the global episode_id
    figures = eq.agentdb_equal(served_agentdb, expected)
    assert figures["equal"], figures
    assert figures["learning_sessions"]["rows"] == 6 and figures["embedding_max_gap"] == 0.0
    assert eq.agentdb_equal(served_agentdb, _expected(week, [2, 5]), [2, 5])["equal"]


@pytest.mark.parametrize("change, table", [
    ("UPDATE learning_experiences SET reward = reward + 0.1 WHERE id = (SELECT MIN(id) FROM learning_experiences)",
     "learning_experiences"),
    ("UPDATE learning_experiences SET metadata = json_set(metadata, '$.step', 99) WHERE id = "
     "(SELECT MAX(id) FROM learning_experiences)", "learning_experiences"),
    ("DELETE FROM learning_sessions WHERE id = 'user-3'", "learning_sessions"),
    ("UPDATE learning_sessions SET metadata = json_set(metadata, '$.archetype', 'Nobody') WHERE id = 'user-7'",
     "learning_sessions"),
    ("UPDATE episodes SET reward = 0.0 WHERE id = 2", "episodes"),
    ("UPDATE episode_embeddings SET embedding = zeroblob(length(embedding)) WHERE episode_id = 5",
     "episode_embeddings"),
    ("INSERT INTO learning_sessions (id, user_id, session_type, config) VALUES ('user-4', '4', 'DQN', '{}')",
     "learning_sessions"),
])
def test_agentdb_equal_notices_a_changed_missing_or_extra_row(week: dict, served_agentdb: Path, change: str,
                                                              table: str) -> None:
    with sqlite3.connect(served_agentdb) as conn:
        conn.execute(change)
    figures = eq.agentdb_equal(served_agentdb, _expected(week))
    assert not figures["equal"] and not figures[table]["equal"]
    assert [t for t in eq.AGENTDB_KEYS if not figures[t]["equal"]] == [table]


def test_agentdb_equal_notices_a_derived_row_and_a_renumbered_episode(week: dict, served_agentdb: Path) -> None:
    with sqlite3.connect(served_agentdb) as conn:
        conn.execute("UPDATE learning_experiences SET metadata = json_set(metadata, '$.episode', "
                     "json_extract(metadata, '$.episode') + 5) WHERE session_id = 'user-1'")  # an offset: allowed
    assert eq.agentdb_equal(served_agentdb, _expected(week))["equal"]
    with sqlite3.connect(served_agentdb) as conn:
        conn.execute("UPDATE learning_experiences SET metadata = json_set(metadata, '$.episode', "  # a new episode
                     "json_extract(metadata, '$.episode') + 1) "
                     "WHERE id = (SELECT MAX(id) FROM learning_experiences WHERE session_id = 'user-6')")
        conn.execute("INSERT INTO learning_policies (session_id, state_action_pairs, q_values, visit_counts, "
                     "avg_rewards, version) VALUES ('user-2', '[]', '[]', '[]', '[]', 1)")
    figures = eq.agentdb_equal(served_agentdb, _expected(week))
    assert not figures["equal"] and figures["derived_rows"]["learning_policies"] == 1
    assert figures["learning_experiences"]["differing_per_column"] == {eq.EPISODE_IN_SESSION: 1}


def test_served_recall_scores_held_out_positives_and_compares_with_the_refit(tmp_path: Path) -> None:
    from tv5_assets.evaluation.evaluate import SERVED
    from tv5_assets.evaluation.split import SplitSettings

    # users 1-3 rate films 1-10 in order; the last two (held out, >= 4.0) are what a scorer must find
    ratings = _ratings([(u, m, 5.0 if m > 8 else 3.0, m) for u in (1, 2, 3) for m in range(1, 11)])
    split = eq.evaluation_split(ratings, SplitSettings(max_users=10))
    movies = pl.DataFrame({"movie_id": pl.Series(range(1, 41), dtype=pl.Int32),
                           "vector": pl.Series(np.eye(40, dtype=np.float32), dtype=pl.Array(pl.Float32, 40))})
    aim = np.zeros((3, 40), np.float32)
    aim[:, 8:10] = 1.0  # users 1 and 2 rank films 9 and 10 first
    aim[2] = 0.0
    aim[2, 20:40] = 1.0  # user 3 ranks twenty other films first
    users = pl.DataFrame({"user_id": pl.Series([1, 2, 3], dtype=pl.Int32),
                          "vector": pl.Series(aim, dtype=pl.Array(pl.Float32, 40))})
    figures = eq.served_recall(split, users, movies, k=2)
    assert figures["users"] == 3 and figures["recall"] == pytest.approx(2 / 3)
    table = pl.DataFrame({"scorer": [SERVED, "most popular"], "segment": ["all users"] * 2, "users": [3.0, 3.0],
                          "recall@20": [0.25, 0.1]})
    table.write_parquet(tmp_path / "recommendation_quality.parquet")
    assert eq.refit_recall(tmp_path) == 0.25 and eq.refit_recall(0.3) == 0.3
    assert eq.recall_equal(0.2475, 0.25)["within"] and not eq.recall_equal(0.2425, 0.25)["within"]


def test_train_fold_in_uses_the_train_ratings_only(week: dict, movies: dict[str, pl.DataFrame]) -> None:
    from tv5_assets.evaluation.split import SplitSettings

    split = eq.evaluation_split(week["current"], SplitSettings(max_users=100))
    trained = eq.train_hybrid_users(split, movies["content"], movies["factors"])
    assert trained["user_id"].to_list() == sorted(split.train["user_id"].unique().to_list())
    moved = eq.train_hybrid_users(eq.evaluation_split(week["current"], SplitSettings(holdout=0.5, max_users=100)),
                                  movies["content"], movies["factors"])
    assert not eq.vectors_equal(trained, moved, 1e-6)["equal"]


def test_the_refit_without_held_out_never_sees_what_it_is_scored_on() -> None:
    from tv5_assets.evaluation.split import SplitSettings

    # users 1-3 rate films 1-10 in order: films 9 and 10 are each user's held-out 20 %
    ratings = _ratings([(u, m, 4.0, m) for u in (1, 2, 3) for m in range(1, 11)])
    split = eq.evaluation_split(ratings, SplitSettings(max_users=10))
    unseen = eq.without_held_out(ratings, split)
    assert unseen.height == 24 and unseen["movie_id"].max() == 8
    assert unseen.equals(split.train.select(unseen.columns))  # every user is sampled: what remains is the train part
    base = ratings.filter(~((pl.col("user_id") == 3) & (pl.col("movie_id") >= 9)))  # user 3's last two came in a day
    seen = eq.held_out_seen(split, base)
    assert seen == {"held_out_pairs": 6, "in_base_release": 4, "share_in_base_release": round(4 / 6, 4)}


def test_full_refit_fits_every_current_rating_and_serves_every_user(week: dict, movies: dict) -> None:
    current = week["current"]
    refit = eq.full_refit(current, movies["all_content"])
    built = factors.movie_factors(current.lazy(), movies["all_content"], SETTINGS).frame
    assert refit.collaborative_movie_vectors.equals(built.select("movie_id", "vector"))  # the build's own fit
    # movie 41, which the day brought and user 5 rated, is fitted now, not predicted from its content as a day does
    assert not built.filter(pl.col("movie_id") == 41)["cold"].item()
    assert refit.hybrid_movie_vectors["movie_id"].to_list() == [*MOVIES, 41]
    users = refit.hybrid_user_vectors
    assert users["user_id"].to_list() == sorted(current["user_id"].unique().to_list())  # erased user 4 is gone
    norms = np.linalg.norm(np.asarray(users["vector"].to_numpy()), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)  # unit queries, as hybrid_user_vectors serves them
    served = movies["all_factors"].select("movie_id", "vector").sort("movie_id")
    assert not np.allclose(np.asarray(served["vector"].to_numpy()),
                           np.asarray(refit.collaborative_movie_vectors["vector"].to_numpy()))  # a refit moves them
