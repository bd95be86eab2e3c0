"""One day's changes applied in place to the served AgentDB file, for the users the day touched (no Dagster here).

Why in place: the served file keeps its path and its release mark, and a day rewrites only the touched users'
rows, not the ~850 MB file. The delete + insert runs in one SQLite transaction, so a reader through SQLite
sees the old rows or the new ones, never a mix; a failure rolls back and leaves the file as it was. AgentDB's
own reader (sql.js) loads the whole file with a plain read and takes no SQLite lock: one that reads during
the commit's page writes (milliseconds for a day's pages) can get a mix of old and new pages, a window a
rename never had; such a reader should re-read when `quick_check` fails. Before `apply`, `journal` copies the
touched users' rows into a separate SQLite file, so `restore` can undo a day that `read_back` (AgentDB's own
reading of the result) found wrong.

Rows are keyed by user: sessions and experiences by session id `user-<uid>`, the vector episode and its
embedding by id = user_id. LearningSystem's per-session tables (learning_policies, learning_state_embeddings:
empty in a built file) are derived from a session's experiences, so they are journaled and cleared with it.
Rows of AgentDB's other memory tables that point at an episode id keep pointing at the user's episode (the
id is the user's). Experience ids come from the caller (max(id) + 1 of the file), so they never collide.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Sequence
from itertools import chain, islice
from pathlib import Path

import numpy as np
import polars as pl

from tv5_assets.agentdb import content, rows
from tv5_assets.agentdb.node import SERVICE_DIR, AgentDBError, NodeRuntime
from tv5_assets.agentdb.writer import LOADED_TABLES, Contents, _embedding_rows
from tv5_assets.rl.day_policies import as_episodes

DAY_SCRIPT = SERVICE_DIR / "tv5-agentdb-day.mjs"  # a day's read-back through AgentDB, one process
LOGIC_FILES = (DAY_SCRIPT,)  # its text is part of day_release's code version
# table -> (its key column, the touched users' column it matches), and the short name counts are reported by
KEYS = {
    "learning_sessions": ("id", "session_id", "sessions"),
    "learning_experiences": ("session_id", "session_id", "experiences"),
    "episodes": ("id", "user_id", "episodes"),
    "episode_embeddings": ("episode_id", "user_id", "embeddings"),
    "learning_policies": ("session_id", "session_id", "policies"),
    "learning_state_embeddings": ("session_id", "session_id", "state_embeddings"),
}
ID = {"learning_sessions": "id", "learning_experiences": "id", "episodes": "id", "episode_embeddings": "episode_id"}
ROWID = "journaled_rowid"  # the row's rowid, so a restored row takes its old place (and scan order) back
SEQUENCE = "sequence"  # the journal's copy of the tables' sqlite_sequence rows (AUTOINCREMENT high-water marks)
# values bound by one INSERT (SQLite's default limit is 32,766): each statement is one GIL release, see `_insert`
VALUES_PER_STATEMENT = 30_000
# the day's connections' page cache (KiB; SQLite's default is 2,000): deleting and inserting 20,000 users' rows
# touches index pages all over the 850 MB file, which a 2 MB cache re-reads and spills to the rollback journal
# mid-transaction (measured alone on the ml-25m-shaped file, alternating: 4.3-4.6 s with the default, 3.8-4.0 s
# with this)
CACHE_KIB = 262_144
Users = Sequence[int] | pl.Series


def day_contents(episodes: pl.DataFrame, policies: pl.DataFrame, user_vectors: pl.DataFrame, per_user: int,
                 first_experience_id: int) -> Contents:
    """The touched users' rows, built by the full build's row functions; experience ids from
    `first_experience_id`; a user whose vector is null gets no episode (nor embedding). Equal to a full build's
    rows but for the experiences' ids and metadata.episode (the day's per-user episode count, `user_episode`)."""
    steps = as_episodes(episodes).lazy()
    spans = rows.user_spans(steps).collect()
    frame, vectors = content.user_vector_matrix(user_vectors.filter(pl.col("vector").is_not_null()))
    return Contents(
        sessions=rows.sessions(policies, spans, per_user),
        experiences=rows.experiences(rows.recent_steps(steps, spans, per_user), first_experience_id),
        episodes=rows.vector_episodes(frame, policies),
        vectors=vectors,
    )


def _insert(conn: sqlite3.Connection, table: str, values: Iterable[tuple], columns: Sequence[str]) -> None:
    """`values` (rows) inserted thousands to a statement. Python's sqlite3 releases the GIL around each step of a
    statement and then waits to take it back: at one row a statement, beside the day's other threads (Milvus,
    Neo4j), a row could wait the 5 ms switch interval (200,000 rows: 0.5 s alone, 271 s beside a thread spinning in
    Python; 3,000 rows a statement: 0.35 s and 3.0 s). The full build's `writer._insert` keeps `executemany`: it
    writes alone, and changing it would move `agentdb`'s code version for the same file."""
    per = max(1, VALUES_PER_STATEMENT // len(columns))
    one = f"({', '.join('?' * len(columns))})"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    rest = iter(values)
    while chunk := list(islice(rest, per)):
        conn.execute(head + ", ".join([one] * len(chunk)), tuple(chain.from_iterable(chunk)))


def _user_ids(users: Users) -> pl.Series:
    return pl.Series("user_id", users, dtype=pl.Int64).unique().sort()


def _connect(database: Path, users: Users) -> sqlite3.Connection:
    """A connection (autocommit; foreign keys off, so no cascade deletes rows unjournaled) holding the
    touched users in temp.touched."""
    conn = sqlite3.connect(database, isolation_level=None, timeout=60)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute("CREATE TEMP TABLE touched (user_id INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE)")
    ids = _user_ids(users).to_frame()
    conn.execute("BEGIN")  # one transaction (of the temp database only) for all the users
    _insert(conn, "temp.touched", ids.select("user_id", rows.session_id(pl.col("user_id"))).iter_rows(),
            ("user_id", "session_id"))
    conn.execute("COMMIT")
    return conn


def _where(table: str) -> str:
    key, touched, _ = KEYS[table]
    return f"{key} IN (SELECT {touched} FROM temp.touched)"


def _delete(conn: sqlite3.Connection) -> dict[str, int]:
    return {f"deleted_{KEYS[t][2]}": conn.execute(f"DELETE FROM main.{t} WHERE {_where(t)}").rowcount
            for t in KEYS}


def _in_transaction(conn: sqlite3.Connection, work: Callable[[], dict[str, int]]) -> dict[str, int]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work()
        conn.execute("COMMIT")
        return result
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def journal(database: Path, users: Users, journal_file: Path, replace: bool = False) -> dict[str, int]:
    """Copy the touched users' rows of the file (one consistent read) into the new SQLite file `journal_file`,
    written under a temporary name and renamed when complete. Refuses to replace a journal unless `replace`."""
    if journal_file.exists() and not replace:
        raise FileExistsError(f"{journal_file} exists: the journal of a day not yet released or undone")
    tmp = journal_file.with_name(f".{journal_file.name}.tmp")
    tmp.unlink(missing_ok=True)
    conn = _connect(database, users)
    try:
        conn.execute("ATTACH DATABASE ? AS j", (str(tmp),))
        conn.execute("BEGIN")
        counts = {}
        for table in KEYS:
            ddl = conn.execute("SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?",
                               (table,)).fetchone()[0]
            conn.execute(re.sub(rf'^CREATE TABLE\s+"?{table}"?', f"CREATE TABLE j.{table}", ddl, count=1))
            conn.execute(f"ALTER TABLE j.{table} ADD COLUMN {ROWID} INTEGER")  # learning_sessions has a hidden one
            counts[KEYS[table][2]] = conn.execute(
                f"INSERT INTO j.{table} SELECT *, rowid FROM main.{table} WHERE {_where(table)}").rowcount
        conn.execute("CREATE TABLE j.users (user_id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO j.users SELECT user_id FROM temp.touched")
        conn.execute(f"CREATE TABLE j.{SEQUENCE} (name TEXT PRIMARY KEY, seq INTEGER)")
        marks = ", ".join("?" * len(KEYS))
        conn.execute(f"INSERT INTO j.{SEQUENCE} SELECT name, seq FROM main.sqlite_sequence WHERE name IN ({marks})",
                     tuple(KEYS))
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(tmp, journal_file)
    fd = os.open(journal_file.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return counts


def _check_users(contents: Contents, users: pl.Series) -> None:
    if contents.vectors.shape[0] != contents.episodes.height:
        raise ValueError(f"{contents.vectors.shape[0]} vectors for {contents.episodes.height} vector episodes")
    sessions = users.to_frame().select(rows.session_id(pl.col("user_id")).alias("id"))["id"].implode()
    outside = {"sessions": contents.sessions.filter(~pl.col("id").is_in(sessions)).height,
               "experiences": contents.experiences.filter(~pl.col("session_id").is_in(sessions)).height,
               "episodes": contents.episodes.filter(~pl.col("id").is_in(users.implode())).height}
    if any(outside.values()):
        raise ValueError(f"contents hold rows of users outside the touched set: {outside}")


def apply(database: Path, users: Users, contents: Contents) -> dict[str, int]:
    """In one transaction: delete the touched users' rows, insert `contents` (theirs only). Idempotent."""
    ids = _user_ids(users)
    _check_users(contents, ids)
    conn = _connect(database, ids)

    def work() -> dict[str, int]:
        counts = _delete(conn)
        for table, frame, columns in (("learning_sessions", contents.sessions, rows.SESSION_COLUMNS),
                                      ("learning_experiences", contents.experiences, rows.EXPERIENCE_COLUMNS),
                                      ("episodes", contents.episodes, rows.EPISODE_COLUMNS)):
            _insert(conn, table, frame.select(columns).iter_rows(), columns)
        _insert(conn, "episode_embeddings", _embedding_rows(contents.episodes["id"].to_numpy(), contents.vectors),
                ("episode_id", "embedding"))
        counts.update(inserted_sessions=contents.sessions.height, inserted_experiences=contents.experiences.height,
                      inserted_episodes=contents.episodes.height, inserted_embeddings=contents.episodes.height)
        counts["untouched_sessions"] = conn.execute("SELECT COUNT(*) FROM learning_sessions WHERE id NOT IN "
                                                    "(SELECT session_id FROM temp.touched)").fetchone()[0]
        return counts

    try:
        return _in_transaction(conn, work)
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The table's columns, less an INTEGER PRIMARY KEY (the rowid under another name)."""
    info = conn.execute(f"PRAGMA main.table_info({table})").fetchall()
    alias = [c[1] for c in info if c[5] == 1 and c[2].upper() == "INTEGER"] if sum(c[5] > 0 for c in info) == 1 else []
    return [c[1] for c in info if c[1] not in alias]


def restore(database: Path, users: Users, journal_file: Path) -> dict[str, int]:
    """In one transaction: delete the touched users' rows and put the journal's back (with their rowids and the
    AUTOINCREMENT marks of the journaled moment), so the file holds exactly its rows from before `apply`."""
    if not journal_file.is_file():
        raise FileNotFoundError(f"no journal at {journal_file}")
    ids = _user_ids(users)
    conn = _connect(database, ids)
    try:
        conn.execute("ATTACH DATABASE ? AS j", (str(journal_file),))
        journaled = pl.Series("user_id", [r[0] for r in conn.execute("SELECT user_id FROM j.users ORDER BY 1")],
                              dtype=pl.Int64)
        if not journaled.equals(ids):
            raise ValueError(f"the journal holds {journaled.len()} users, not the {ids.len()} given")

        def work() -> dict[str, int]:
            counts = _delete(conn)
            for table, (_, _, short) in KEYS.items():
                columns = ", ".join(_columns(conn, table))
                counts[f"restored_{short}"] = conn.execute(
                    f"INSERT INTO main.{table} (rowid, {columns}) SELECT {ROWID}, {columns} FROM j.{table}").rowcount
            marks = ", ".join("?" * len(KEYS))
            conn.execute(f"DELETE FROM main.sqlite_sequence WHERE name IN ({marks}) "
                         f"AND name NOT IN (SELECT name FROM j.{SEQUENCE})", tuple(KEYS))
            conn.execute(f"UPDATE main.sqlite_sequence SET seq = (SELECT seq FROM j.{SEQUENCE} s WHERE "
                         f"s.name = sqlite_sequence.name) WHERE name IN (SELECT name FROM j.{SEQUENCE})")
            return counts

        return _in_transaction(conn, work)
    finally:
        conn.close()


def _file_ids(conn: sqlite3.Connection) -> tuple[dict[str, pl.Series], list[int], int]:
    """The touched users' row ids per table as the file holds them now (sorted), the tables' totals, and the
    touched users' steps whose session is missing (`conn`: `_connect`'s, holding the touched users)."""
    ids = {KEYS[t][2]: _one_column(conn, ID[t], t) for t in LOADED_TABLES}
    orphans = conn.execute("SELECT COUNT(*) FROM learning_experiences WHERE "
                           f"{_where('learning_experiences')} AND session_id NOT IN "
                           "(SELECT id FROM learning_sessions)").fetchone()[0]
    return ids, [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in LOADED_TABLES], orphans


def _one_column(conn: sqlite3.Connection, column: str, table: str) -> pl.Series:
    """`column` of the touched users' rows of `table`, sorted, read as one JSON array (read a row at a time, each
    row cost a GIL release and retake, see `_insert`)."""
    found = conn.execute(f"SELECT json_group_array({column}) FROM {table} WHERE {_where(table)}").fetchone()[0]
    return pl.Series(json.loads(found)).sort()


def _embeddings_differing(conn: sqlite3.Connection, contents: Contents) -> int:
    """How many of the day's embeddings the file does not hold byte for byte (missing and extra ones included),
    compared in SQLite against the day's, copied into a temp table (set at a time, see `_insert`)."""
    conn.execute("CREATE TEMP TABLE expected (episode_id INTEGER PRIMARY KEY, embedding BLOB NOT NULL)")
    try:
        _insert(conn, "temp.expected", _embedding_rows(contents.episodes["id"].to_numpy(), contents.vectors),
                ("episode_id", "embedding"))
        return conn.execute(
            "SELECT (SELECT COUNT(*) FROM temp.expected e LEFT JOIN main.episode_embeddings f "
            "ON f.episode_id = e.episode_id WHERE f.embedding IS NOT e.embedding) + (SELECT COUNT(*) FROM "
            f"main.episode_embeddings WHERE {_where('episode_embeddings')} AND episode_id NOT IN "
            "(SELECT episode_id FROM temp.expected))").fetchone()[0]
    finally:
        conn.execute("DROP TABLE temp.expected")


def _agentdb_audit(node: NodeRuntime, database: Path, session: str, queries: np.ndarray, k: int = 5) -> dict:
    """AgentDB's own reading of the file in one Node process (`DAY_SCRIPT`): the session through LearningSystem,
    the tables' totals, and ReflexionMemory's search for each query vector."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="tv5-agentdb-day-") as tmp:
        query_file = Path(tmp, "queries.f32")
        query_file.write_bytes(queries.tobytes())
        args = [str(node.service_dir / DAY_SCRIPT.name), "audit", str(Path(database).resolve()), session,
                str(query_file), str(max(queries.shape[1], 1)), str(k)]
        done = node._run(args, "day audit")  # noqa: SLF001 - the runtime's one way to run a script
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_back(database: Path, users: Users, contents: Contents, node: NodeRuntime, sample: int = 20,
              seed: int = 0) -> list[str]:
    """Problems found (empty: passed) reading the touched users' rows back: SQLite's ids per table against
    `contents`, every embedding byte for byte, no step of a touched user without its session; AgentDB (one Node
    process, `_agentdb_audit`) reads a sampled session with its step count and the same totals as SQLite, and its
    search ranks sampled users first by their vector. Scoped to the day: the whole-file scans (quick_check, orphans
    of every session) are the release's agentdb checks."""
    from tv5_assets.agentdb import rules  # imports Dagster (through core.checking): only read_back needs it

    want = {"sessions": contents.sessions["id"], "experiences": contents.experiences["id"],
            "episodes": contents.episodes["id"], "embeddings": contents.episodes["id"]}
    conn = _connect(database, users)  # one read of the file through SQLite, the touched users in temp.touched
    try:
        found, totals, orphans = _file_ids(conn)
        differing = _embeddings_differing(conn, contents)
    finally:
        conn.close()
    problems = [f"{name}: the file holds {found[name].len()} rows of the touched users, the day {ids.len()}"
                + ("" if found[name].len() != ids.len() else " with other ids")
                for name, ids in want.items() if not found[name].equals(ids.sort(), check_dtypes=False)]
    if differing:
        problems.append(f"embeddings: {differing} of the day's {contents.episodes.height} embeddings are not in the "
                        "file as the day wrote them")
    if orphans:
        problems.append(f"experiences: {orphans} step(s) of the touched users have no session")
    if not contents.sessions.height:
        return problems
    session = contents.sessions["id"][int(rules.sample_users(contents.sessions["id"].to_numpy(), 1, seed)[0])]
    ids = contents.episodes["id"].to_numpy()
    picked = rules.sample_users(ids, sample, seed) if ids.size else np.array([], dtype=np.int64)
    try:
        read = _agentdb_audit(node, database, session, np.asarray(contents.vectors)[picked].reshape(
            picked.size, -1) if picked.size else np.zeros((0, 1), np.float32))
    except AgentDBError as error:
        return [*problems, f"AgentDB could not read the file: {error}"]
    steps = contents.experiences.filter(pl.col("session_id") == session).height
    read_steps = ((read.get("session") or {}).get("metadata") or {}).get("steps_in_agentdb")
    if (read.get("session") or {}).get("id") != session or read_steps != steps:
        problems.append(f"AgentDB's LearningSystem reads session {session} "
                        f"{f'with {read_steps} steps' if read.get('session') else 'nowhere'}; the day has {steps}")
    agentdb = [read["sessions"], read["experiences"], read["episodes"], read["embeddings"]]
    if agentdb != totals:
        problems.append(f"AgentDB reads sessions/experiences/episodes/embeddings {agentdb}, SQLite {totals}")
    if picked.size:
        found_first = rules.search_finds_user([int(u) for u in ids[picked]], read["queries"])
        if not found_first.passed:
            problems.append(found_first.description)
    return problems
