"""Benchmark: a day's per-user results against the full build over the same ratings, at ml-25m shape.

Run: `python -m benchmarks.day_equality` (after `benchmarks.days_merge` and `benchmarks.whole_graph`, whose day
files and lake it reads). The `daily` job runs for one generated day of 100,000 ratings from 20,000 users (1,000
new). Then, in another process, the full build's own functions run over the whole current ratings (the base
release plus that day, 25M rows): content user vectors, the collaborative fold-in against the same movie factors,
the hybrid user vectors and the episodes. Every touched user's day result is compared with the full one: the
largest absolute vector difference per kind, and the episodes on natural keys. The full computations' seconds
are printed beside the day steps', as what refreshing those users costs either way.

The module also holds the pure comparisons `benchmarks.day_week` makes after a sequence of day runs (polars and
numpy, no Dagster run): `capture` keeps each run's partitions (a re-delivered day overwrites its partition
files), `incremental` rebuilds the served state of a lake-backed table from the base and the captures, and
`episodes_equal`, `collaborative_equal`, `agentdb_equal` and `served_recall` compare that state with what the
full build's functions give over the same current ratings. Each returns a dict of figures.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.common import BENCH_DIR, measure, report
from benchmarks.day_delta import READ_BY_A_DAY, WHOLE_GRAPH_LAKE, _lake, daily_run
from benchmarks.days_merge import _deliveries


# ---- the served state after a sequence of day runs (no Dagster here) ----------------------------------------------

KEY = "user_id"
# what each day run writes to `<lake>/<asset>/<YYYY-MM-DD>.parquet` and the comparisons read: the changes (whose
# users a run touched), the new people (their archetypes feed the policies), the steps, policies and user vectors,
# and the vectors of the movies beyond the full build (a lake from before days brought movies has none)
MOVIE_ASSETS = ("day_content_vectors", "day_collaborative_movie_vectors", "day_hybrid_movie_vectors")
CAPTURED = ("day_rating_changes", "day_demographics", "day_episodes", "day_policies", "day_user_vectors",
            "day_collaborative_user_vectors", "day_hybrid_user_vectors", *MOVIE_ASSETS)
CHANGES = "day_rating_changes"
EPISODES_ASSET = "day_episodes"
BASE_STAMPS = "base.json"
_CAPTURE = re.compile(r"(\d+)-(\d{4}-\d{2}-\d{2})")


def captures(store: Path) -> list[Path]:
    """The runs captured in `store`, in application order."""
    if not Path(store).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(store).iterdir() if p.is_dir() and (m := _CAPTURE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def base_stamps(lake: Path) -> dict[str, list[int]]:
    """(size, mtime_ns) of each table file in the lake (links resolved): which base the captures were applied to."""
    stamps = {}
    for path in sorted(Path(lake).glob("*.parquet")):
        stat = path.resolve().stat()
        stamps[path.name] = [stat.st_size, stat.st_mtime_ns]
    return stamps


def base_changed(lake: Path, store: Path) -> list[str]:
    """The lake's tables whose file changed, appeared or went since the first capture (a refit replaces the base,
    and the captures no longer apply to it)."""
    path = Path(store) / BASE_STAMPS
    if not path.exists():
        return [f"{path} (missing)"]
    then, now = json.loads(path.read_text()), base_stamps(lake)
    return sorted(name for name in set(then) | set(now) if then.get(name) != now.get(name))


def capture(lake: Path, day: date, store: Path) -> Path:
    """Copy the run's partitions (CAPTURED; MOVIE_ASSETS where the run wrote them) to
    `store/<n>-<day>/<asset>.parquet`, n the run's place in application order. Call it right after the run: a
    re-delivered day overwrites its partition files, so the lake alone does not say what each run served. The
    first capture also stamps the lake's base tables (`base_changed`)."""
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    if not (store / BASE_STAMPS).exists():
        (store / BASE_STAMPS).write_text(json.dumps(base_stamps(lake), indent=1, sort_keys=True))
    done = captures(store)
    n = int(_CAPTURE.fullmatch(done[-1].name).group(1)) + 1 if done else 1
    folder = store / f"{n}-{day.isoformat()}"
    tmp = store / f".{folder.name}.tmp"  # renamed when complete: a killed copy is not a capture
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for asset in CAPTURED:
        source = Path(lake) / asset / f"{day.isoformat()}.parquet"
        if not source.exists() and asset in MOVIE_ASSETS:
            continue
        if not source.exists():
            shutil.rmtree(tmp)
            raise FileNotFoundError(f"{source}: the run of {day} left no {asset} partition to capture")
        shutil.copyfile(source, tmp / f"{asset}.parquet")
    tmp.rename(folder)
    return folder


def _touched(path: Path, key: str) -> pl.DataFrame:
    """The users a captured run touched: those of its changes (a user left with no step has no row) and of its
    partition at `path` (only the key column is read)."""
    users = [pl.read_parquet(path, columns=[key])]
    changes = path.parent / f"{CHANGES}.parquet"
    if key == KEY and changes.exists():
        users.append(pl.read_parquet(changes, columns=[KEY]))
    return pl.concat(users, how="vertical_relaxed").unique()


def touched_users(captured: Sequence[Path]) -> pl.DataFrame:
    """user_id of every user a captured run touched (its `day_rating_changes`)."""
    frames = [pl.read_parquet(Path(folder) / f"{CHANGES}.parquet", columns=[KEY]) for folder in captured]
    return pl.concat(frames).unique().sort(KEY) if frames else pl.DataFrame(schema={KEY: pl.Int32})


def incremental(base: pl.DataFrame | pl.LazyFrame, captured: Sequence[Path], asset: str, key: str = KEY,
                where: pl.Expr | None = None) -> pl.DataFrame:
    """The served state of a lake-backed table after the captured runs: each touched user's rows are those of
    the latest capture that touched them (its `<asset>.parquet`), every other user keeps the base's. A touched
    user with no row there, or a null vector, is removed, as the stores delete them. For the steps, the base's
    global `episode_id` becomes the per-user `user_episode` the days write. Sorted by key, each key's rows in
    their stored order (the steps' time order). A capture's rows are read only for the users it is the latest
    for, so the memory is about one copy of the state; `where` (on the key, e.g. a range of user ids) keeps only
    the matching users, to build a large state in parts."""
    from tv5_assets.rl.day_episodes import USER_EPISODE, with_user_episodes

    def numbered(frame: pl.LazyFrame) -> pl.LazyFrame:
        names = frame.collect_schema().names()
        return with_user_episodes(frame) if asset == EPISODES_ASSET and USER_EPISODE not in names \
            and "episode_id" in names else frame

    base = numbered(base.lazy())
    if where is not None:
        base = base.filter(where)
    schema = base.collect_schema()
    paths = [Path(folder) / f"{asset}.parquet" for folder in captured]
    kept, chosen = base, []
    if paths:
        latest = pl.concat([_touched(path, key).cast({key: schema[key]}).with_columns(pl.lit(n).alias("_run"))
                            for n, path in enumerate(paths)]).group_by(key).agg(pl.col("_run").max()).lazy()
        if where is not None:
            latest = latest.filter(where)
        kept = base.join(latest, on=key, how="anti", maintain_order="left")
        chosen = [numbered(pl.scan_parquet(path)).select(schema.names()).cast(dict(schema))
                  .join(latest.filter(pl.col("_run") == n).select(key), on=key, how="semi", maintain_order="left")
                  for n, path in enumerate(paths)]
    state = pl.concat([kept, *chosen])
    if "vector" in schema.names():
        state = state.filter(pl.col("vector").is_not_null())
    return state.sort(key, maintain_order=True).collect()


def served_movies(base: pl.DataFrame | pl.LazyFrame, captured: Sequence[Path], asset: str) -> pl.DataFrame:
    """movie_id, vector of the served movie side: the full build's movies (`base`) and the movies beyond it as the
    latest captured run has them (`asset`, one of MOVIE_ASSETS). Each run's partition holds every movie the
    published days and the day itself brought in, so the latest is the whole set (a movie a correction withdrew
    is no longer in it), and a movie's vectors come from the fixed global models, the same in every run."""
    movies = base.lazy().select("movie_id", "vector").collect()
    extra = Path(captured[-1]) / f"{asset}.parquet" if captured else None
    if extra is None or not extra.exists():
        return movies
    beyond = pl.read_parquet(extra, columns=["movie_id", "vector"]).cast(dict(movies.schema))
    return pl.concat([movies, beyond.join(movies, on="movie_id", how="anti")]).sort("movie_id")


def archetypes(demographics: pl.DataFrame | pl.LazyFrame, captured: Sequence[Path]) -> pl.DataFrame:
    """user_id, archetype as the served state's policies were built with them: the base's person, else (a user the
    base lacks) the person drawn by the latest capture whose `day_demographics` has one for the user. A day keeps
    the people it drew and a later day does not draw them again (`day_people`), so only the day that brought the
    user in (or a re-delivery of it that touched them) has a row. The people input of the full build's
    `build_policies` for the same users."""
    base = demographics.lazy().select(KEY, "archetype").collect()
    frames = [pl.read_parquet(path, columns=[KEY, "archetype"]).cast(base.schema).with_columns(pl.lit(n).alias("_run"))
              for n, folder in enumerate(captured) if (path := Path(folder) / "day_demographics.parquet").exists()]
    drawn = (pl.concat(frames).sort("_run").unique(KEY, keep="last", maintain_order=True).drop("_run")
             if frames else base.clear())
    return pl.concat([base, drawn.join(base, on=KEY, how="anti")]).sort(KEY)


# ---- comparisons ---------------------------------------------------------------------------------------------------

def combined(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one comparison made in parts (disjoint ranges of users), as one: flags all true, counts
    summed, largest floats kept, per-column counts summed, lists joined (the first three examples); anything else
    kept when the parts agree, else listed."""
    whole: dict[str, Any] = {}
    for name in parts[0] if parts else []:
        values = [part[name] for part in parts]
        if all(isinstance(v, bool) for v in values):
            whole[name] = all(values)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            whole[name] = sum(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            whole[name] = max(values)
        elif all(isinstance(v, dict) for v in values):
            whole[name] = {k: sum(v.get(k, 0) for v in values) for v in values for k in v}
        elif name == "examples":
            whole[name] = [item for value in values for item in value][:3]
        elif all(isinstance(v, list) for v in values):
            whole[name] = sorted({item for value in values for item in value})
        else:
            whole[name] = values[0] if all(v == values[0] for v in values) else values
    return whole


HASHED_ABOVE = 2_000_000  # rows: above it differing rows are found by row hashes before a join of columns


def _strictly_sorted(frame: pl.DataFrame, key: list[str]) -> bool:
    """Sorted by `key` with no key repeated (one cheap pass): then no sort and no duplicate count is needed."""
    if frame.height < 2:
        return True
    after: pl.Expr | None = None
    for name in reversed(key):
        now, before = pl.col(name), pl.col(name).shift(1)
        after = now > before if after is None else (now > before) | ((now == before) & after)
    return bool(frame.select(after.fill_null(True).all()).item())


def keyed_diff(actual: pl.DataFrame, expected: pl.DataFrame, key: list[str], columns: list[str]) -> dict[str, Any]:
    """How `actual` differs from `expected` on a natural key: rows only one of them has, keys repeated, and rows
    whose `columns` differ (exact; null equals null), per column. `actual` is cast to `expected`'s types (the
    columns recast are named). Frames already in key order are compared row by row, without a join; larger
    frames that are not locate their differing rows by a hash of each row first and join only those."""
    actual, expected = actual.select(*key, *columns), expected.select(*key, *columns)
    recast = [c for c in actual.columns if actual.schema[c] != expected.schema[c]]
    if recast:
        actual = actual.cast({c: expected.schema[c] for c in recast}, strict=False)
    duplicates = []
    frames = []
    for frame in (actual, expected):
        if _strictly_sorted(frame, key):
            duplicates.append(0)
        else:
            duplicates.append(frame.height - frame.n_unique(subset=key))
            frame = frame.sort(key)
        frames.append(frame)
    actual, expected = frames
    if actual.height == expected.height and all(actual[k].equals(expected[k]) for k in key):
        missing = extra = 0
        flags = {c: actual[c].ne_missing(expected[c]) for c in columns}
        both = actual.hstack(expected.select([pl.col(c).alias(f"{c}_expected") for c in columns]))
    else:
        keys = (actual.select(key), expected.select(key))
        missing = keys[1].join(keys[0], on=key, how="anti").height
        extra = keys[0].join(keys[1], on=key, how="anti").height
        if max(actual.height, expected.height) > HASHED_ABOVE:  # a join of every column would double the memory
            hashed = [f.select(*key, pl.struct(columns).hash(seed=0).alias("_row")) for f in (actual, expected)]
            suspects = (hashed[0].join(hashed[1], on=key, how="inner", suffix="_expected")
                        .filter(pl.col("_row") != pl.col("_row_expected")).select(key))
            actual, expected = (f.join(suspects, on=key, how="semi") for f in (actual, expected))
        both = actual.join(expected, on=key, how="inner", suffix="_expected")
        flags = {c: both[c].ne_missing(both[f"{c}_expected"]) for c in columns}
    differing = int(pl.select(pl.any_horizontal(list(flags.values()))).to_series().sum()) if flags else 0
    examples = _examples(both, flags, key) if differing else []
    return {"rows": frames[0].height, "expected_rows": frames[1].height, "missing": missing, "extra": extra,
            "duplicate_keys": duplicates[0], "expected_duplicate_keys": duplicates[1], "differing_rows": differing,
            "differing_per_column": {c: n for c, f in flags.items() if (n := int(f.sum()))}, "recast": recast,
            "examples": examples,
            "equal": missing == 0 and extra == 0 and differing == 0 and duplicates == [0, 0]}


def _examples(both: pl.DataFrame, flags: dict[str, pl.Series], key: list[str], limit: int = 3) -> list[dict]:
    """The first `limit` differing rows: their key and, per differing column, the value found and the one expected
    (so a mismatch can be traced to its user)."""
    mask = pl.select(pl.any_horizontal(list(flags.values()))).to_series()
    rows = both.filter(mask).head(limit)
    return [{**{k: row[k] for k in key},
             **{c: [row[c], row[f"{c}_expected"]] for c in flags if row[c] != row[f"{c}_expected"]}}
            for row in rows.iter_rows(named=True)]


# a step's natural key (rl.day_episodes.NATURAL_KEY: the user's rating of a movie at a time) and its other fields
EPISODE_KEY = ["user_id", "timestamp", "action"]
EPISODE_FIELDS = ["step", "state", "reward", "next_state", "terminals", "timeouts"]
NUMBERING = ("user_episode", "episode_id")
EPISODE_IN_USER = "episode_in_user"


def full_episodes(current: pl.DataFrame, gap_days: float | None = None) -> pl.DataFrame:
    """The full build's `episodes` over the current ratings (the `ratings` asset's columns), with the session gap
    of the served episodes (default: the asset's)."""
    from datetime import timedelta

    from tv5_assets.rl.transitions import DEFAULT_SESSION_GAP, episodes_frame, in_step_order

    gap = timedelta(days=gap_days) if gap_days is not None else DEFAULT_SESSION_GAP
    return episodes_frame(current, gap, presorted=in_step_order(current)).collect()


def _numbered(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with its episode number counted per user from 0 (`episode_in_user`), whichever numbering it has."""
    present = [c for c in NUMBERING if c in frame.columns]
    if not present:
        raise ValueError(f"steps without an episode number ({' or '.join(NUMBERING)}): {frame.columns}")
    episode = pl.col(present[0])
    return frame.with_columns((episode - episode.min().over(KEY)).cast(pl.Int32).alias(EPISODE_IN_USER))


def episodes_equal(incremental: pl.DataFrame, full: pl.DataFrame) -> dict[str, Any]:
    """The served steps against the full build's, on the natural key (user, timestamp, movie): every field of a
    step. The numbering itself is left out, as it differs by design (the full table's global running
    `episode_id`, a day's per-user `user_episode`); both number a user's episodes from the user's first, so
    that count (`episode_in_user`) is compared instead."""
    figures = keyed_diff(_numbered(incremental), _numbered(full), EPISODE_KEY, [*EPISODE_FIELDS, EPISODE_IN_USER])
    return {"users": incremental[KEY].n_unique(), "expected_users": full[KEY].n_unique(), **figures}


def vectors_equal(incremental: pl.DataFrame, expected: pl.DataFrame, tolerance: float,
                  key: str = KEY) -> dict[str, Any]:
    """Served vectors against expected ones: the same users with a vector, and every difference within
    `tolerance` (largest absolute difference over a user's coordinates; a NaN counts as over)."""
    have = incremental.select(key, "vector").drop_nulls("vector")
    want = expected.select(key, "vector").drop_nulls("vector")
    missing = want.join(have, on=key, how="anti").height
    extra = have.join(want, on=key, how="anti").height
    both = have.join(want, on=key, how="inner", suffix="_expected")
    gap, over, identical = 0.0, 0, both.height
    if both.height:
        per_user = np.abs(np.asarray(both["vector"].to_numpy(), np.float32)
                          - np.asarray(both["vector_expected"].to_numpy(), np.float32)).max(axis=1)
        gap, over, identical = float(per_user.max()), int((~(per_user <= tolerance)).sum()), int((per_user == 0).sum())
    return {"users": have.height, "expected_users": want.height, "missing": missing, "extra": extra,
            "compared": both.height, "max_gap": gap, "over_tolerance": over, "bit_identical": identical,
            "tolerance": tolerance, "equal": missing == 0 and extra == 0 and over == 0}


def full_fold_in(current: pl.DataFrame | pl.LazyFrame, collaborative_movie_vectors: pl.DataFrame) -> pl.DataFrame:
    """Every user's collaborative vector as `collaborative_user_vectors` computes it: ALS's exact solve on the
    whole current ratings against the given (served) movie factors."""
    from tv5_assets.taste import factors
    from tv5_assets.taste.assets import SETTINGS

    return factors.user_factors(current.lazy(), collaborative_movie_vectors.select("movie_id", "vector"), SETTINGS)


def collaborative_equal(incremental: pl.DataFrame, expected: pl.DataFrame, tolerance: float = 1e-5) -> dict[str, Any]:
    """The served collaborative user vectors against a full fold-in against the same movie factors (the issue's
    bound: 1e-5)."""
    return vectors_equal(incremental, expected, tolerance)


# AgentDB: per table, its natural key and the columns compared. Left out, and why:
# - learning_experiences.id: an AUTOINCREMENT surrogate (a full build numbers from 1, a day continues from the
#   file's max + 1), and every rowid and sqlite_sequence mark (a day deletes and re-inserts a user's rows);
# - the "episode" of learning_experiences.metadata: the full build writes the global episode_id, a day the user's
#   own count (user_episode), a per-user offset apart. What both must agree on is compared instead: the step's
#   episode minus the earliest among the user's stored steps (`episode_in_session`), and the rest of the metadata
#   as text;
# - columns the row functions never write, which AgentDB fills with its defaults (episodes.input, output,
#   critique, latency_ms, tokens_used; episode_embeddings.embedding_model).
# episodes.id and episode_embeddings.episode_id are the user id (not surrogates): they are the keys.
EPISODE_IN_SESSION = "episode_in_session"
METADATA_REST = "metadata_rest"
AGENTDB_KEYS = {"learning_sessions": ["id"], "learning_experiences": ["session_id", "timestamp", "action"],
                "episodes": ["id"], "episode_embeddings": ["episode_id"]}
AGENTDB_COLUMNS = {
    "learning_sessions": ["user_id", "session_type", "config", "start_time", "end_time", "status", "metadata"],
    "learning_experiences": ["state", "reward", "next_state", "success", METADATA_REST, EPISODE_IN_SESSION],
    "episodes": ["ts", "session_id", "task", "reward", "success", "tags", "metadata", "created_at"],
    "episode_embeddings": ["embedding"],
}
_STORED = {  # what is read from the file, with its types
    "learning_sessions": {"id": pl.String, "user_id": pl.String, "session_type": pl.String, "config": pl.String,
                          "start_time": pl.Int64, "end_time": pl.Int64, "status": pl.String, "metadata": pl.String},
    "learning_experiences": {"session_id": pl.String, "timestamp": pl.Int64, "action": pl.String, "state": pl.String,
                             "reward": pl.Float64, "next_state": pl.String, "success": pl.Int64,
                             "metadata": pl.String},
    "episodes": {"id": pl.Int64, "ts": pl.Int64, "session_id": pl.String, "task": pl.String, "reward": pl.Float64,
                 "success": pl.Int64, "tags": pl.String, "metadata": pl.String, "created_at": pl.Int64},
    "episode_embeddings": {"episode_id": pl.Int64, "embedding": pl.Binary},
}
# LearningSystem's per-session tables: empty in a built file, cleared with a touched user's session by a day
DERIVED_TABLES = ("learning_policies", "learning_state_embeddings")


def expected_agentdb(episodes: pl.DataFrame | pl.LazyFrame, policies: pl.DataFrame, user_vectors: pl.DataFrame,
                     per_user: int | None = None, users: Sequence[int] | None = None) -> Any:
    """The rows the full build's `agentdb` asset writes (`content.build` over the full episodes, policies and
    content user vectors; `per_user` recent steps, default the asset's), for every user or for `users` only (a
    user's rows depend on that user's own rows alone). Returns the writer's `Contents`."""
    from tv5_assets.agentdb import content

    if per_user is None:
        from tv5_assets.agentdb.assets import DEFAULT_RECENT_STEPS

        per_user = DEFAULT_RECENT_STEPS
    steps = episodes.lazy()
    if users is not None:
        wanted = pl.Series(KEY, list(users), dtype=pl.Int64).implode()
        steps = steps.filter(pl.col(KEY).cast(pl.Int64).is_in(wanted))
        policies = policies.filter(pl.col(KEY).cast(pl.Int64).is_in(wanted))
        user_vectors = user_vectors.filter(pl.col(KEY).cast(pl.Int64).is_in(wanted))
    return content.build(policies, steps, user_vectors.filter(pl.col("vector").is_not_null()), per_user).contents


def read_agentdb(database: Path, users: Sequence[int] | None = None) -> dict[str, Any]:
    """The AgentDB file's rows of the tables the full build writes (every user's, or `users`'), opened read-only,
    and the rows of the derived tables (DERIVED_TABLES) per table."""
    from tv5_assets.agentdb.rows import SESSION_PREFIX

    conn = sqlite3.connect(f"file:{Path(database).resolve()}?mode=ro", uri=True)
    try:
        where = dict.fromkeys([*_STORED, *DERIVED_TABLES], "1")
        if users is not None:
            conn.execute("CREATE TEMP TABLE wanted (user_id INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE)")
            conn.executemany("INSERT INTO temp.wanted VALUES (?, ?)",
                             [(int(u), f"{SESSION_PREFIX}{int(u)}") for u in sorted(set(users))])
            sessions = "IN (SELECT session_id FROM temp.wanted)"
            where = {"learning_sessions": f"id {sessions}", "learning_experiences": f"session_id {sessions}",
                     "episodes": "id IN (SELECT user_id FROM temp.wanted)",
                     "episode_embeddings": "episode_id IN (SELECT user_id FROM temp.wanted)",
                     **{t: f"session_id {sessions}" for t in DERIVED_TABLES}}
        stored: dict[str, Any] = {
            table: pl.DataFrame(conn.execute(f"SELECT {', '.join(schema)} FROM {table} WHERE {where[table]}")
                                .fetchall(), schema=schema, orient="row")
            for table, schema in _STORED.items()}
        stored["derived_rows"] = {t: conn.execute(f"SELECT COUNT(*) FROM {t} WHERE {where[t]}").fetchone()[0]
                                  for t in DERIVED_TABLES}
        return stored
    finally:
        conn.close()


def _experience_view(frame: pl.DataFrame) -> pl.DataFrame:
    """Experiences with the metadata's episode made relative to the session's earliest stored step, and the rest
    of the metadata as text (see AGENTDB_COLUMNS for why)."""
    episode = pl.col("metadata").str.json_path_match("$.episode").cast(pl.Int64)
    return frame.with_columns(pl.col("metadata").str.replace(r'"episode":-?\d+,?', "").alias(METADATA_REST),
                              (episode - episode.min().over("session_id")).alias(EPISODE_IN_SESSION))


def _expected_tables(expected: Any) -> dict[str, pl.DataFrame]:
    vectors = np.ascontiguousarray(expected.vectors, dtype=np.float32)
    return {"learning_sessions": expected.sessions, "learning_experiences": expected.experiences,
            "episodes": expected.episodes,
            "episode_embeddings": pl.DataFrame({"episode_id": expected.episodes["id"].cast(pl.Int64),
                                                "embedding": pl.Series([row.tobytes() for row in vectors],
                                                                       dtype=pl.Binary)})}


def _embedding_gap(stored: pl.DataFrame, expected: pl.DataFrame) -> float:
    """The largest absolute difference between the stored and expected float32 embeddings of the same episode."""
    both = stored.join(expected, on="episode_id", how="inner", suffix="_expected")
    if both.is_empty() or both.select(pl.col("embedding").bin.size().n_unique()).item() != 1 \
            or not both["embedding"].bin.size().equals(both["embedding_expected"].bin.size()):
        return float("nan") if both.height else 0.0
    width = both["embedding"].bin.size()[0] // 4
    left = np.frombuffer(b"".join(both["embedding"].to_list()), np.float32).reshape(-1, width)
    right = np.frombuffer(b"".join(both["embedding_expected"].to_list()), np.float32).reshape(-1, width)
    return float(np.abs(left - right).max())


def agentdb_equal(database: Path, expected: Any, users: Sequence[int] | None = None) -> dict[str, Any]:
    """The AgentDB file's rows (every user's, or `users'`) against `expected` (the writer's `Contents`, e.g. from
    `expected_agentdb` for the same users), table by table on natural keys (AGENTDB_KEYS, AGENTDB_COLUMNS: the
    surrogate ids and the experiences' absolute episode left out), the embeddings' largest float difference, and
    the derived tables' rows of these users (none expected)."""
    stored = read_agentdb(database, users)
    want = _expected_tables(expected)
    stored["learning_experiences"] = _experience_view(stored["learning_experiences"])
    want["learning_experiences"] = _experience_view(want["learning_experiences"])
    figures: dict[str, Any] = {}
    for table, key in AGENTDB_KEYS.items():
        found = keyed_diff(stored[table], want[table], key, AGENTDB_COLUMNS[table])
        figures[table] = {k: found[k] for k in ("rows", "expected_rows", "missing", "extra", "differing_rows")}
        if found["differing_rows"]:
            figures[table]["differing_per_column"] = found["differing_per_column"]
            figures[table]["examples"] = found["examples"]
        figures[table]["equal"] = found["equal"]
        if found["duplicate_keys"] or found["expected_duplicate_keys"]:
            figures[table]["duplicate_keys"] = [found["duplicate_keys"], found["expected_duplicate_keys"]]
    figures["embedding_max_gap"] = _embedding_gap(stored["episode_embeddings"], want["episode_embeddings"])
    figures["derived_rows"] = stored["derived_rows"]
    figures["equal"] = all(figures[t]["equal"] for t in AGENTDB_KEYS) and not any(stored["derived_rows"].values())
    return figures


# recall@20 of the served state on the evaluation's split

def evaluation_split(current: pl.DataFrame | pl.LazyFrame, settings: Any = None) -> Any:
    """The split `recommendation_quality` evaluates on, over the same current ratings (its defaults: each of
    10,000 seeded users' last 20 % by time held out, positives rated >= 4.0): the same users and held-out rows."""
    from tv5_assets.evaluation.split import SplitSettings, temporal_split

    return temporal_split(current.lazy(), settings or SplitSettings())


def train_hybrid_users(split: Any, content_vectors: pl.DataFrame,
                       collaborative_movie_vectors: pl.DataFrame) -> pl.DataFrame:
    """The split's users' hybrid vectors from their train ratings only, by the full build's functions against
    the given (served) movie side: the served state's scorer without the held-out ratings in the users' own
    vectors (the served vectors were fitted on them, which flatters their recall)."""
    return hybrid_users(split.train.select(KEY, "movie_id", "rating", "timestamp"), content_vectors,
                        collaborative_movie_vectors)


def hybrid_users(ratings: pl.DataFrame, content_vectors: pl.DataFrame,
                 collaborative_movie_vectors: pl.DataFrame) -> pl.DataFrame:
    """Every user's hybrid vector from `ratings` as the full build makes it (`user_vectors`, the ALS fold-in and
    `hybrid_user_vectors`) against the given movie side."""
    from tv5_assets.embeddings.user_vectors import user_vectors
    from tv5_assets.taste import factors, hybrid
    from tv5_assets.taste.assets import SETTINGS

    taste = user_vectors(ratings, content_vectors.select("movie_id", "vector")).frame
    folded = factors.user_factors(ratings.lazy(), collaborative_movie_vectors.select("movie_id", "vector"), SETTINGS)
    ids, content, collab = hybrid.aligned(taste, folded, KEY)
    return hybrid.frame(KEY, ids, hybrid.user_vectors(content, collab, hybrid.CONTENT_WEIGHT))


@dataclass(frozen=True)
class Refit:
    """A full refit's vectors over the current ratings, by the full build's functions (`collaborative_movie_vectors`,
    `hybrid_movie_vectors`, the user fold-ins, `hybrid_user_vectors`): what the weekly refit would serve."""
    collaborative_movie_vectors: pl.DataFrame
    hybrid_movie_vectors: pl.DataFrame
    hybrid_user_vectors: pl.DataFrame


def refit_movie_side(ratings: pl.DataFrame, content_vectors: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(collaborative, hybrid) movie vectors of ALS refitted on `ratings` (cold movies from content, as the build
    does), the hybrid side by its own layout."""
    from tv5_assets.taste import factors, hybrid
    from tv5_assets.taste.assets import SETTINGS

    content = content_vectors.select("movie_id", "vector")
    collab = factors.movie_factors(ratings.lazy(), content, SETTINGS).frame.select("movie_id", "vector")
    ids, content_matrix, collab_matrix = hybrid.aligned(content, collab, "movie_id")
    layout = hybrid.layout_for(content_matrix.shape[1], collab_matrix, hybrid.CONTENT_WEIGHT)
    return collab, hybrid.frame("movie_id", ids, hybrid.movie_vectors(content_matrix, collab_matrix, layout))


def full_refit(current: pl.DataFrame, content_vectors: pl.DataFrame) -> Refit:
    """ALS refitted on every current rating, the hybrid movie side, and every user's hybrid vector folded in
    against it."""
    collab, movies = refit_movie_side(current, content_vectors)
    return Refit(collab, movies, hybrid_users(current.select(KEY, "movie_id", "rating", "timestamp"),
                                              content_vectors.select("movie_id", "vector"), collab))


def without_held_out(current: pl.DataFrame, split: Any) -> pl.DataFrame:
    """The current ratings less the split's held-out pairs: what a refit fits on under the evaluation's protocol
    (a model never sees what it is scored on; `full_refit` over every current rating lets ALS's movie side learn
    the held-out pairs, which flatters the refit's recall)."""
    return current.join(split.held_out.select(KEY, "movie_id"), on=[KEY, "movie_id"], how="anti")


def held_out_seen(split: Any, base_ratings: pl.DataFrame | pl.LazyFrame) -> dict[str, Any]:
    """How many of the split's held-out pairs the base release's ratings hold (its ALS movie side was fitted on
    them: the served state's movie side has seen those, a leak in its favour) against those the days brought."""
    held = split.held_out.select(KEY, "movie_id", "timestamp")
    seen = held.lazy().join(base_ratings.lazy().select(KEY, "movie_id", "timestamp"),
                            on=[KEY, "movie_id", "timestamp"], how="semi").select(pl.len()).collect().item()
    return {"held_out_pairs": held.height, "in_base_release": seen,
            "share_in_base_release": round(seen / held.height, 4) if held.height else float("nan")}


def served_recall(split: Any, hybrid_user_vectors: pl.DataFrame | pl.LazyFrame, hybrid_movie_vectors: pl.DataFrame,
                  k: int = 20, positive_threshold: float | None = None) -> dict[str, Any]:
    """recall@k of served hybrid vectors on the evaluation's split, scored as `drift.day_recall` scores served
    vectors: every movie ranked by inner product, the user's train ratings left out, the held-out positives to
    find; hits / min(k, positives), averaged over the users with a vector and a positive."""
    from tv5_assets.evaluation import drift

    threshold = drift.POSITIVE_THRESHOLD if positive_threshold is None else positive_threshold
    recall, users = drift.day_recall(split.held_out.select(KEY, "movie_id", "rating"), hybrid_user_vectors,
                                     hybrid_movie_vectors, split.train.select(KEY, "movie_id"), k=k,
                                     positive_threshold=threshold)
    return {"recall": recall, "users": users, "k": k}


def refit_recall(source: float | str | Path) -> float:
    """The full refit's served recall@20 of `recommendation_quality`: a figure as given, or read from the refit's
    lake folder (or its recommendation_quality.parquet): the served scorer's (`rules.served_scorer`), all users."""
    if isinstance(source, (int, float)):
        return float(source)
    from tv5_assets.evaluation.rules import ALL_USERS, served_scorer

    path = Path(source)
    table = pl.read_parquet(path / "recommendation_quality.parquet" if path.is_dir() else path)
    row = table.filter((pl.col("scorer") == served_scorer(table)) & (pl.col("segment") == ALL_USERS))
    if row.is_empty():
        raise ValueError(f"{path}: no {served_scorer(table)!r} row for {ALL_USERS!r}")
    return float(row["recall@20"][0])


def recall_equal(served: float, refit: float, max_share: float = 0.02) -> dict[str, Any]:
    """The served state's recall against the refit's: within `max_share` of it, relative (the issue's 2 %)."""
    gap = (served - refit) / refit if refit else float("nan")
    return {"served": served, "refit": refit, "relative_gap": gap, "max_share": max_share,
            "within": bool(abs(gap) <= max_share)}


def _gap(day: pl.DataFrame, full: pl.DataFrame) -> tuple[int, float, bool]:
    """(users compared, largest |day - full|, same user set) over the day's users that have a vector."""
    present = day.drop_nulls("vector").sort("user_id")
    expected = full.join(day.select("user_id"), on="user_id", how="semi").sort("user_id")
    same = present["user_id"].to_list() == expected["user_id"].to_list()
    if not same or present.is_empty():
        return present.height, float("nan"), same
    diff = np.abs(np.asarray(present["vector"].to_numpy()) - np.asarray(expected["vector"].to_numpy()))
    return present.height, float(diff.max()), same


def compare(lake: str, day: str) -> dict:
    """The full build over base + the day, against the day's partitions in `lake`."""
    from tv5_assets.embeddings.user_vectors import user_vectors
    from tv5_assets.ingestion.days import base_log, current_ratings, empty_ledger, ratings_table
    from tv5_assets.rl.day_episodes import NATURAL_KEY, with_user_episodes
    from tv5_assets.rl.transitions import episodes_frame
    from tv5_assets.taste import factors, hybrid
    from tv5_assets.taste.assets import SETTINGS

    base = Path(lake)
    stored = {name: pl.read_parquet(base / name / f"{day}.parquet") for name in (
        "day_ratings", "day_user_vectors", "day_collaborative_user_vectors", "day_hybrid_user_vectors",
        "day_episodes", "day_rating_changes")}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    log = pl.concat([base_log(pl.read_parquet(base / "ratings.parquet")), stored["day_ratings"].drop("line")])
    full = current_ratings(log.lazy(), empty_ledger().lazy()).collect()
    del log
    seconds["current ratings"] = time.perf_counter() - started
    as_ratings = full.select("user_id", "movie_id", "rating", pl.col("epoch").alias("timestamp"))
    started = time.perf_counter()
    content = user_vectors(as_ratings, pl.read_parquet(base / "content_vectors.parquet").select("movie_id", "vector"))
    seconds["content user vectors"] = time.perf_counter() - started
    started = time.perf_counter()
    movie_factors = pl.read_parquet(base / "collaborative_movie_vectors.parquet").select("movie_id", "vector")
    collab = factors.user_factors(as_ratings.lazy(), movie_factors, SETTINGS)
    seconds["collaborative fold-in"] = time.perf_counter() - started
    started = time.perf_counter()
    ids, left, right = hybrid.aligned(content.frame, collab, "user_id")
    mixed = hybrid.frame("user_id", ids, hybrid.user_vectors(left, right, hybrid.CONTENT_WEIGHT))
    seconds["hybrid user vectors"] = time.perf_counter() - started
    touched = stored["day_rating_changes"].select("user_id").unique()
    started = time.perf_counter()
    steps = with_user_episodes(episodes_frame(ratings_table(full), presorted=True).collect())
    seconds["episodes"] = time.perf_counter() - started
    expected_steps = steps.join(touched, on="user_id", how="semi").sort(NATURAL_KEY)
    day_steps = stored["day_episodes"].sort(NATURAL_KEY)
    return {
        "rows": full.height, "users": content.frame.height, "touched": touched.height, "seconds": seconds,
        "content": _gap(stored["day_user_vectors"], content.frame),
        "collaborative": _gap(stored["day_collaborative_user_vectors"], collab),
        "hybrid": _gap(stored["day_hybrid_user_vectors"], mixed),
        "episodes_equal": day_steps.equals(expected_steps), "episode_steps": day_steps.height,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / "days_merge")
    args = parser.parse_args()
    missing = [n for n in READ_BY_A_DAY if not (WHOLE_GRAPH_LAKE / f"{n}.parquet").exists()]
    if missing or not (args.work_dir / "size-100000").exists():
        raise SystemExit("run `python -m benchmarks.days_merge` and `python -m benchmarks.whole_graph` first")
    [(day, path, _)] = _deliveries(args.work_dir / "size-100000")
    lake = _lake(args.work_dir)
    run, _, run_mib = measure(daily_run, str(path), str(lake))
    found, found_s, found_mib = measure(compare, str(lake), day.isoformat())
    rows = [(f"`daily` run, day {day} (100,000 ratings)", f"{run['seconds']:.2f} s, peak RSS {run_mib:,.0f} MiB, "
             f"checks {run['checks_passed']}/{run['checks']}; steps {run['steps']}"),
            ("full build over base + day", f"{found['rows']:,} current ratings, {found['users']:,} users; phase "
             f"{found_s:.1f} s, peak RSS {found_mib:,.0f} MiB; "
             f"{ {k: round(v, 2) for k, v in found['seconds'].items()} }")]
    ok = found["episodes_equal"]
    for kind, bound in (("content", 1e-6), ("collaborative", 1e-5), ("hybrid", 1e-6)):
        users, gap, same = found[kind]
        ok &= same and gap <= bound
        rows.append((f"{kind} user vectors, day vs full", f"{users:,} touched users with a vector, same users "
                     f"{same}, max |day - full| {gap:.2e} (bound {bound:g})"))
    rows.append(("episodes, day vs full on natural keys", f"equal {found['episodes_equal']}: "
                 f"{found['episode_steps']:,} steps of {found['touched']:,} touched users"))
    report(rows)
    if not ok:
        raise SystemExit("a day's result differs from the full build")


if __name__ == "__main__":
    main()
