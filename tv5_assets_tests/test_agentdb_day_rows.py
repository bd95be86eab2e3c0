"""A day's rows applied in place to a real AgentDB file (created by AgentDB's own Node script, loaded by the
writer): the touched users' rows become the day's, nobody else's change, twice is once, the journal undoes
it exactly, and AgentDB's own reading confirms it (or names what is wrong)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tv5_assets.agentdb import content, day_rows, rows
from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets.agentdb.writer import Contents, write_database
from tv5_assets.rl import policies as po
from tv5_assets.rl import transitions as tr
from tv5_assets.rl.day_episodes import with_user_episodes
from tv5_assets.synthetic import archetypes as arc

T0 = datetime(2020, 1, 1, tzinfo=timezone.utc)
DIM, PER_USER = 8, 4
USERS = list(range(1, 13))
TOUCHED = [2, 5, 9, 13]  # 9 loses its vector; 13 is new on the day
ARCHETYPES = [arc.CASUAL, arc.CINEPHILE, arc.FAMILY, arc.YOUNG_ADULT, arc.INTERNATIONAL, arc.GENRE_SPECIALIST]
TABLES = ["learning_sessions", "learning_experiences", "episodes", "episode_embeddings", "learning_policies",
          "learning_state_embeddings"]


def _ratings(users: list[int], day: bool) -> pl.DataFrame:
    """Users with 3..9 ratings each; on the day the touched users rate two more films (13 rates its first)."""
    data = [(u, 100 + (u * 7 + i) % 50, 1.0 + ((u + i) % 9) * 0.5, T0 + timedelta(days=10 * i + u))
            for u in users if u != 13 for i in range(3 + u % 7)]
    if day:
        data += [(u, 300 + u + i, 4.0, T0 + timedelta(days=400 + i)) for u in TOUCHED for i in range(2 + u % 3)]
    return pl.DataFrame(data, schema={"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32,
                                      "timestamp": pl.Datetime("us", "UTC")}, orient="row")


def _policies(episodes: pl.DataFrame) -> pl.DataFrame:
    users = episodes["user_id"].unique().sort()
    demographics = pl.DataFrame({"user_id": users, "archetype": [ARCHETYPES[u % 6] for u in users]})
    return po.build_policies(episodes.lazy(), demographics)


def _vectors(users: list[int], seed: int, missing: tuple[int, ...] = ()) -> pl.DataFrame:
    matrix = np.random.default_rng(seed).normal(size=(len(users), DIM)).astype(np.float32)
    values = [None if u in missing else row.tolist() for u, row in zip(users, matrix)]
    return pl.DataFrame({"user_id": pl.Series(users, dtype=pl.Int32),
                         "vector": pl.Series(values, dtype=pl.Array(pl.Float32, DIM))})


def _table(path: Path, table: str, where: str = "1") -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT rowid, * FROM {table} WHERE {where} ORDER BY rowid").fetchall()


def _all(path: Path) -> dict[str, list[tuple]]:
    return {t: _table(path, t) for t in [*TABLES, "sqlite_sequence"]}


def _untouched(path: Path) -> dict[str, list[tuple]]:
    users = ", ".join(map(str, TOUCHED))
    sessions = ", ".join(f"'user-{u}'" for u in TOUCHED)
    keys = {"learning_sessions": f"id NOT IN ({sessions})", "learning_experiences": f"session_id NOT IN ({sessions})",
            "episodes": f"id NOT IN ({users})", "episode_embeddings": f"episode_id NOT IN ({users})"}
    return {t: _table(path, t, where) for t, where in keys.items()}


@pytest.fixture(scope="module")
def node() -> NodeRuntime:
    return NodeRuntime.locate()  # required: CI installs the npm package (the other AgentDB tests need it too)


@pytest.fixture(scope="module")
def before_file(tmp_path_factory: pytest.TempPathFactory, node: NodeRuntime) -> Path:
    """The served file before the day: the full build of all users, written by the project's writer."""
    episodes = tr.episodes_frame(_ratings(USERS, day=False).lazy(), tr.DEFAULT_SESSION_GAP).collect()
    built = content.build(_policies(episodes), episodes.lazy(), _vectors(USERS, seed=1), PER_USER)
    path = tmp_path_factory.mktemp("agentdb") / "agentdb.db"
    write_database(path, built.contents, node)
    return path


@pytest.fixture(scope="module")
def day(before_file: Path) -> dict:
    """The day's inputs for the touched users, the full tables after the day, and the day's contents."""
    ratings = _ratings(USERS, day=True)
    full = tr.episodes_frame(ratings.lazy(), tr.DEFAULT_SESSION_GAP).collect()
    touched = pl.col("user_id").is_in(TOUCHED)
    steps = tr.episodes_frame(ratings.filter(touched).lazy(), tr.DEFAULT_SESSION_GAP)  # the day's, per user
    episodes = with_user_episodes(steps.collect())
    policies = _policies(full)
    vectors = _vectors([*USERS, 13], seed=2, missing=(9,))
    with sqlite3.connect(before_file) as conn:
        first_id = conn.execute("SELECT MAX(id) + 1 FROM learning_experiences").fetchone()[0]
    contents = day_rows.day_contents(episodes, policies.filter(touched), vectors.filter(touched), PER_USER,
                                     first_experience_id=first_id)
    return {"contents": contents, "full": full, "policies": policies, "vectors": vectors, "first_id": first_id}


@pytest.fixture
def served(before_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "agentdb.db"
    shutil.copy(before_file, path)
    return path


def _touched_rows(path: Path) -> dict[str, list[tuple]]:
    sessions = ", ".join(f"'user-{u}'" for u in TOUCHED)
    users = ", ".join(map(str, TOUCHED))
    queries = {
        "sessions": f"SELECT {', '.join(rows.SESSION_COLUMNS)} FROM learning_sessions WHERE id IN ({sessions})",
        "experiences": f"SELECT {', '.join(rows.EXPERIENCE_COLUMNS)} FROM learning_experiences "
                       f"WHERE session_id IN ({sessions})",
        "episodes": f"SELECT {', '.join(rows.EPISODE_COLUMNS)} FROM episodes WHERE id IN ({users})",
        "embeddings": f"SELECT episode_id, embedding FROM episode_embeddings WHERE episode_id IN ({users})",
    }
    with sqlite3.connect(path) as conn:
        return {name: conn.execute(f"{sql} ORDER BY 1").fetchall() for name, sql in queries.items()}


def _contents_rows(contents: Contents) -> dict[str, list[tuple]]:
    return {"sessions": contents.sessions.sort("id").rows(), "experiences": contents.experiences.sort("id").rows(),
            "episodes": contents.episodes.sort("id").rows(),
            "embeddings": [(int(i), v.tobytes()) for i, v in zip(contents.episodes["id"], contents.vectors)]}


def test_apply_writes_the_days_rows_and_leaves_every_other_user_as_it_was(served: Path, day: dict) -> None:
    untouched = _untouched(served)
    counts = day_rows.apply(served, TOUCHED, day["contents"])
    assert _touched_rows(served) == _contents_rows(day["contents"])
    assert _untouched(served) == untouched  # same rowids, same bytes
    assert counts["untouched_sessions"] == len(USERS) - 3 and counts["deleted_sessions"] == 3  # 13 was not there
    assert counts["inserted_sessions"] == 4 and counts["inserted_embeddings"] == 3  # 9 has no vector any more
    with sqlite3.connect(served) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # as the writer left it
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_apply_twice_is_apply_once(served: Path, day: dict) -> None:
    day_rows.apply(served, TOUCHED, day["contents"])
    once = _all(served)
    day_rows.apply(served, pl.Series(TOUCHED), day["contents"])
    assert _all(served) == once


def test_journal_apply_restore_gives_back_every_row(served: Path, day: dict, tmp_path: Path) -> None:
    with sqlite3.connect(served) as conn:  # LearningSystem's per-session rows, for a touched and an untouched user
        conn.executemany("INSERT INTO learning_policies (session_id, state_action_pairs, q_values, visit_counts, "
                         "avg_rewards, version) VALUES (?, '[]', '{}', '{}', '{}', 1)", [("user-5",), ("user-3",)])
    before = _all(served)
    journal = tmp_path / "day.journal.db"
    counts = day_rows.journal(served, TOUCHED, journal)
    assert counts == {"sessions": 3, "experiences": sum(min(3 + u % 7, PER_USER) for u in (2, 5, 9)),
                      "episodes": 3, "embeddings": 3, "policies": 1, "state_embeddings": 0}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    applied = day_rows.apply(served, TOUCHED, day["contents"])
    assert applied["deleted_policies"] == 1 and _all(served) != before
    restored = day_rows.restore(served, TOUCHED, journal)
    assert _all(served) == before  # all tables and the AUTOINCREMENT marks
    assert restored["restored_sessions"] == 3 and restored["deleted_sessions"] == 4
    with pytest.raises(FileExistsError):
        day_rows.journal(served, TOUCHED, journal)
    with pytest.raises(ValueError, match="holds 4 users, not the 2 given"):
        day_rows.restore(served, [2, 5], journal)


def test_failed_apply_changes_nothing(served: Path, day: dict) -> None:
    before = _all(served)
    clashing = day_rows.day_contents(
        with_user_episodes(day["full"].filter(pl.col("user_id").is_in(TOUCHED))),
        day["policies"].filter(pl.col("user_id").is_in(TOUCHED)),
        day["vectors"].filter(pl.col("user_id").is_in(TOUCHED)), PER_USER, first_experience_id=1)
    with pytest.raises(sqlite3.IntegrityError, match="learning_experiences.id"):  # ids of untouched users' steps
        day_rows.apply(served, TOUCHED, clashing)
    assert _all(served) == before
    with pytest.raises(ValueError, match="outside the touched set"):
        day_rows.apply(served, [2, 5], day["contents"])


def test_read_back_passes_after_apply_and_names_what_is_wrong(served: Path, day: dict, tmp_path: Path,
                                                              node: NodeRuntime) -> None:
    journal = tmp_path / "day.journal.db"
    day_rows.journal(served, TOUCHED, journal)
    day_rows.apply(served, TOUCHED, day["contents"])
    assert day_rows.read_back(served, TOUCHED, day["contents"], node) == []
    with sqlite3.connect(served) as conn:
        conn.execute("DELETE FROM learning_experiences WHERE id = ?", (day["first_id"] + 1,))
    problems = day_rows.read_back(served, TOUCHED, day["contents"], node)
    assert any(p.startswith("experiences: the file holds") for p in problems), problems
    with sqlite3.connect(served) as conn:  # one float of one embedding changed: its id is still there
        blob = conn.execute("SELECT embedding FROM episode_embeddings WHERE episode_id = ?",
                            (TOUCHED[0],)).fetchone()[0]
        conn.execute("UPDATE episode_embeddings SET embedding = ? WHERE episode_id = ?",
                     (bytes(4 * [0x7F]) + blob[4:], TOUCHED[0]))
    problems = day_rows.read_back(served, TOUCHED, day["contents"], node)
    assert any(p.startswith("embeddings: 1 of the day's") for p in problems), problems
    day_rows.restore(served, TOUCHED, journal)
    problems = day_rows.read_back(served, TOUCHED, day["contents"], node)
    assert any(p.startswith("sessions: the file holds 3 rows") for p in problems), problems
    assert any("random users first" in p for p in problems), problems  # the old vectors are served again


def test_user_without_a_vector_loses_the_episode_and_embedding(served: Path, day: dict) -> None:
    assert _table(served, "episodes", "id = 9") and _table(served, "episode_embeddings", "episode_id = 9")
    day_rows.apply(served, TOUCHED, day["contents"])
    assert not _table(served, "episodes", "id = 9") and not _table(served, "episode_embeddings", "episode_id = 9")
    assert _table(served, "learning_sessions", "id = 'user-9'")  # the user is still served, without a vector


def _without_episode(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("metadata").str.replace(r'^\{"episode":\d+,', "{"))


def test_day_contents_equal_the_full_builds_rows_of_those_users(day: dict) -> None:
    vectors = day["vectors"].filter(pl.col("vector").is_not_null())
    full = content.build(day["policies"], day["full"].lazy(), vectors, PER_USER).contents
    mine = day["contents"]
    touched, sessions = pl.col("user_id").is_in(TOUCHED), [f"user-{u}" for u in TOUCHED]
    assert mine.sessions.sort("id").equals(full.sessions.filter(pl.col("id").is_in(sessions)).sort("id"))
    assert mine.episodes.sort("id").equals(full.episodes.filter(pl.col("id").is_in(TOUCHED)).sort("id"))
    at = [int(np.flatnonzero(full.episodes["id"].to_numpy() == i)[0]) for i in mine.episodes["id"]]
    assert np.array_equal(mine.vectors, full.vectors[at])
    key = ["session_id", "timestamp", "action"]
    theirs = full.experiences.filter(pl.col("session_id").is_in(sessions))
    assert mine.experiences["id"].to_list() == list(range(day["first_id"], day["first_id"] + theirs.height))
    assert _without_episode(mine.experiences.drop("id")).sort(key).equals(
        _without_episode(theirs.drop("id")).sort(key))
    # the step's episode is counted per user in a day's rows, over the whole table in a full build
    first = day["full"].filter(touched).group_by("user_id").agg(pl.col("episode_id").min().alias("first"))
    episode = pl.col("metadata").str.json_path_match("$.episode").cast(pl.Int64)
    ours = mine.experiences.select(*key, episode.alias("ours"))
    global_ = (theirs.with_columns(pl.col("session_id").str.strip_prefix("user-").cast(pl.Int32).alias("user_id"))
               .join(first, on="user_id").select(*key, (episode - pl.col("first")).alias("ours")))
    assert ours.sort(key).equals(global_.sort(key))


def test_the_module_needs_no_dagster() -> None:
    code = "import sys, tv5_assets.agentdb.day_rows; assert 'dagster' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_rows_are_inserted_many_to_a_statement_in_order_and_none_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(day_rows, "VALUES_PER_STATEMENT", 6)  # 3 rows of 2 values a statement: 10 rows in 4
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (a INTEGER, b BLOB)")
    values = [(i, bytes([i]) if i % 3 else None) for i in range(10)]
    statements = []
    conn.set_trace_callback(statements.append)
    day_rows._insert(conn, "t", iter(values), ("a", "b"))
    conn.set_trace_callback(None)
    assert conn.execute("SELECT a, b FROM t ORDER BY rowid").fetchall() == values
    assert [s.count("(") - 1 for s in statements if s.startswith("INSERT")] == [3, 3, 3, 1]
