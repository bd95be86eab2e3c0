"""Publishing an arrival day to the served stores: journal, apply, audit, publish (no Dagster here).

A day changes a few thousand users, so it is not staged as whole new store versions (a collection copy, a graph
slot, an 850 MB AgentDB file): it is applied to what readers are served, user by user, under a journal.

1. **Journal.** The journal `<lake>/days/journal/<day>/` opens (`state.json`: `applying`) with the day's own rows
   and the touched ids before any store changes. Each store's own journal (the served rows of the touched users and
   movies: each collection's entities, the graph's User nodes, RATED counts and Media, AgentDB's rows; the pairs'
   old values travel in the day's changes) is written whole, just before that store is: so no store waits for
   another's journal, and a restore puts back exactly the stores that have one.
2. **Apply and audit, every store at once.** The graph in one transaction audited before it commits (RATED counts,
   the changed pairs' values, the users' nodes, the day's movies), run by the Neo4j server; AgentDB's rows in one
   SQLite transaction, read back by AgentDB (SQLite and Node, a thread waiting); meanwhile this process upserts and
   deletes the day's movies and touched users in the collections, reads them back (every vector equal within 1e-6,
   deleted ids gone) and searches them back (a sample found first by its own vector). The day's blocking checks
   have audited every row before this step runs.
3. **Publish.** `state.json` says `applied`, then `served_days.publish_day` makes the day part of the served
   state (its ratings, erasures, movies and its people: its draws of the users it touched, its earlier version's
   of the others; later days' users keep them), then the journal is removed.

A failed audit or write restores every store from the journal and fails the run: the stores are on the previous
state. A run killed midway leaves the journal: the next day run restores it first (`applying`), or finishes its
publication (`applied`), before it applies its own delta, which was computed against the served days and so
equals the killed run's. Every write sets the touched users' rows to a value, so a repeat changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date
from pathlib import Path

import polars as pl

from tv5_assets.agentdb import day_rows as agentdb_day
from tv5_assets.agentdb.node import NodeRuntime
from tv5_assets.graph_store import day_delta as graph_day
from tv5_assets.graph_store.resources import Neo4jClient
from tv5_assets.ingestion import day_catalogue, served_days
from tv5_assets.ingestion.days import LEDGER_SCHEMA, LOG_SCHEMA, MOVIES_SCHEMA, empty_movies
from tv5_assets.synthetic.day_people import kept_with_day, people_of
from tv5_assets.vector_store import day_upsert
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets.vector_store.rows import media_rows
from tv5_assets.vector_store.schema import HYBRID_MEDIA, HYBRID_USERS, MEDIA, USERS, CollectionSpec

JOURNAL = ("days", "journal")
STATE_FILE = "state.json"
GRAPH_JOURNAL, AGENTDB_JOURNAL = "graph", "agentdb.sqlite"  # a store's own journal, written before it changes
APPLYING, APPLIED = "applying", "applied"
COLLECTIONS: tuple[CollectionSpec, ...] = (USERS, HYBRID_USERS)
MEDIA_COLLECTIONS: tuple[CollectionSpec, ...] = (MEDIA, HYBRID_MEDIA)
SEARCH_SAMPLE = 200
# AgentDB's search scans and parses every episode in JavaScript (3.3 s a query at 162K users on 2 cores): one user
# searched back through AgentDB (its reader and ranking), every touched row's id and embedding compared through SQLite
AGENTDB_SEARCH_SAMPLE = 1
GIL_SWITCH_INTERVAL_S = 0.0005  # CPython's default is 0.005: see `_short_gil_turns`


class DayReleaseError(RuntimeError):
    """A store did not take the day as audited: every store was restored from the journal."""


@dataclass(frozen=True)
class DayInputs:
    """One day's rows for the stores, from the day assets."""

    day: date
    changes: pl.DataFrame  # day_rating_changes
    current: pl.DataFrame  # day_user_ratings (the scope's current rows)
    vectors: pl.DataFrame  # day_user_vectors (null vector: delete)
    hybrid_vectors: pl.DataFrame  # day_hybrid_user_vectors
    profiles: pl.DataFrame  # demographics of the touched users: their served persons and the day's new people
    episodes: pl.DataFrame  # day_episodes
    policies: pl.DataFrame  # day_policies
    ratings: pl.DataFrame  # day_ratings (published as the day's version)
    erasures: pl.DataFrame  # day_erasures
    movies: DayMovies | None = None  # the movies the day brings in, sets and withdraws
    people: pl.DataFrame | None = None  # day_demographics: the people the day drew (published: `with_kept_people`)

    @cached_property
    def users(self) -> pl.Series:
        return self.changes["user_id"].cast(pl.Int64).unique().sort()

    @cached_property
    def day_movies(self) -> DayMovies:
        return self.movies or DayMovies.none()

    @property
    def rows_added(self) -> int:
        """Current rows the day adds: an insert adds one, an erasure or withdrawal takes one away."""
        kinds = self.changes["change"]
        return int((kinds == "inserted").sum() - (kinds == "erased").sum() - (kinds == "withdrawn").sum())


@dataclass(frozen=True)
class DayMovies:
    """What a day changes of the stores' movies (`day_catalogue.changed`) and the rows they serve for them."""

    brought: pl.DataFrame  # day_movies: every movie of the day's file (published as the day's version)
    set: pl.DataFrame  # the movies to set (new, or brought again changed), `movies` columns
    withdrawn: pl.DataFrame  # the movies a re-delivery dropped, `movies` columns
    vectors: pl.DataFrame  # content vectors of (at least) the movies to set: movie_id, vector
    hybrid_vectors: pl.DataFrame  # their hybrid vectors
    availability: pl.DataFrame  # their availability rows

    @staticmethod
    def none() -> DayMovies:
        empty = empty_movies()
        return DayMovies(empty, empty, empty, pl.DataFrame(), pl.DataFrame(), pl.DataFrame())

    @cached_property
    def ids(self) -> pl.Series:
        """Every movie the day sets or withdraws."""
        return pl.concat([self.set["movie_id"], self.withdrawn["movie_id"]]).cast(pl.Int64).unique().sort()

    def rows(self, spec: CollectionSpec) -> day_upsert.DayRows:
        """The entities of the movies to set in a media collection (as the full load builds them), the withdrawn to
        delete."""
        vectors = (self.vectors if spec is MEDIA else self.hybrid_vectors).join(
            self.set.select("movie_id"), on="movie_id", how="semi")
        return day_upsert.DayRows(upserts=media_rows(vectors, self.set, self.availability, spec),
                                  deletes=self.withdrawn["movie_id"].cast(pl.Int64).sort())


def movies_of_day(lake_dir: str | Path, day: date, brought: pl.DataFrame, vectors: pl.DataFrame,
                  hybrid_vectors: pl.DataFrame, availability: pl.DataFrame) -> DayMovies:
    """What the day's movies (`day_movies`) change against the day's published version, with their rows."""
    before = day_catalogue.published_on(lake_dir, day)
    to_set, withdrawn = day_catalogue.changed(brought, before)
    return DayMovies(brought=brought, set=to_set,
                     withdrawn=before.filter(pl.col("movie_id").cast(pl.Int64).is_in(withdrawn.implode())),
                     vectors=vectors, hybrid_vectors=hybrid_vectors, availability=availability)


@dataclass
class DayStores:
    """The served stores a day writes."""

    milvus: MilvusResource
    graph: Neo4jClient
    agentdb: Path  # the published AgentDB file (the link's target)
    node: NodeRuntime
    recent_steps: int  # AgentDB's recent_steps_per_user, as the served file was built


@dataclass
class Published:
    day: date
    recovered: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def touched_profiles(demographics: pl.LazyFrame, changes: pl.DataFrame, elsewhere: pl.DataFrame,
                     new_people: pl.DataFrame) -> pl.DataFrame:
    """The demographics of the users `changes` touched: each one's served person (the base row, else the person
    another published day drew, `elsewhere`: `day_people.published_elsewhere`), else the day's new person
    (`day_people.people_of`; only theirs are read from the 162K-row table)."""
    return people_of(demographics, elsewhere, new_people, changes.select("user_id").unique())


def with_kept_people(lake_dir: str | Path, inputs: DayInputs) -> DayInputs:
    """`inputs` with the people its publication keeps (`day_people.kept_with_day`): the day's draws of the users it
    touches, and its published version's people of the others (none when it has no people)."""
    if inputs.people is None:
        return inputs
    folder = served_days.published_folder(lake_dir)
    previous = served_days.read_published_people(
        folder, [inputs.day] if inputs.day in served_days.published_days(folder) else [], inputs.people.schema)
    return dataclasses.replace(inputs, people=kept_with_day(previous, inputs.people, inputs.users.to_frame()))


def journal_folder(lake_dir: str | Path, day: date) -> Path:
    return Path(lake_dir, *JOURNAL, day.isoformat())


def _state(folder: Path) -> dict | None:
    path = folder / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _write_state(folder: Path, state: dict) -> None:
    tmp = folder / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, folder / STATE_FILE)


def served_collection(milvus: MilvusResource, spec: CollectionSpec) -> str:
    name = milvus.alias_target(milvus.alias_name(spec.alias))
    if name is None:
        raise DayReleaseError(f"no release serves {spec.alias} yet: materialize whole_graph and `release` before "
                              "publishing a day")
    milvus.ensure_searchable(name)  # Milvus Lite loads per process
    return name


def first_free_experience_id(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM learning_experiences").fetchone()[0])


def _replace_file(frame: pl.DataFrame, target: Path) -> None:
    """Write `target` whole or not at all (a killed run leaves no half file a restore would read)."""
    tmp = target.with_name(f".{target.name}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, target)


def open_journal(folder: Path, inputs: DayInputs, stores: DayStores) -> None:
    """The day's own rows and the touched ids, `applying`: no store has changed yet, and a store's own journal
    (`journal_graph`, `journal_agentdb`, `journal_collection`) is written before that store is."""
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=parent))
    inputs.users.to_frame("user_id").write_parquet(staged / "users.parquet")
    movies = inputs.day_movies
    if movies.ids.len():
        movies.ids.to_frame("movie_id").write_parquet(staged / "movies.parquet")
    movies.brought.select(list(MOVIES_SCHEMA)).write_parquet(staged / "day-movies.parquet")
    if inputs.people is not None:
        inputs.people.write_parquet(staged / "day-people.parquet")
    inputs.changes.write_parquet(staged / "changes.parquet")
    inputs.ratings.select(list(LOG_SCHEMA)).write_parquet(staged / "day-ratings.parquet")
    inputs.erasures.select(list(LEDGER_SCHEMA)).write_parquet(staged / "day-erasures.parquet")
    _write_state(staged, {"day": inputs.day.isoformat(), "phase": APPLYING, "rows_added": inputs.rows_added,
                          "agentdb": str(stores.agentdb)})
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staged, folder)


def journal_graph(folder: Path, inputs: DayInputs, stores: DayStores) -> None:
    """The touched users' User nodes and RATED counts, and the day's movies' Media, genres and platforms, as the
    graph serves them now (`graph/`, renamed into place whole)."""
    staged = Path(tempfile.mkdtemp(prefix=".graph.", dir=folder))
    graph_users, graph_counts = graph_day.journal(stores.graph, inputs.users)
    graph_users.write_parquet(staged / "graph-users.parquet")
    graph_counts.write_parquet(staged / "graph-counts.parquet")
    movies = inputs.day_movies
    if movies.ids.len():
        for name, frame in zip(("media", "genres", "available"), graph_day.journal_movies(stores.graph, movies.ids)):
            frame.write_parquet(staged / f"graph-{name}.parquet")
        (staged / "genre-names.json").write_text(json.dumps(
            graph_day.movies_graph(movies.set, movies.availability, movies.withdrawn).genre_names))
    os.replace(staged, folder / GRAPH_JOURNAL)


def journal_agentdb(folder: Path, inputs: DayInputs, stores: DayStores) -> None:
    """The touched users' AgentDB rows (a SQLite file, renamed into place whole)."""
    agentdb_day.journal(stores.agentdb, inputs.users, folder / AGENTDB_JOURNAL)


def journal_collection(folder: Path, stores: DayStores, spec: CollectionSpec, ids: pl.Series) -> tuple[str, int]:
    """The entities the collection serves for `ids` now; returns the served collection's name and how many entities
    it serves for other ids (untouched: counted before the writes, when a strong count needs no wait for them)."""
    name = served_collection(stores.milvus, spec)
    before = day_upsert.read_rows(stores.milvus, name, ids, spec)
    _replace_file(before, folder / f"milvus-{spec.alias}.parquet")
    return name, stores.milvus.count(name) - before.height


def _graph_journal(folder: Path) -> Path | None:
    """Where the graph's journal is (`graph/`; a journal written before per-store journals kept it at the top)."""
    for place in (folder / GRAPH_JOURNAL, folder):
        if (place / "graph-users.parquet").exists():
            return place
    return None


def restore(folder: Path, stores: DayStores, log: Callable[[str], None]) -> None:
    """Put every store the day reached back to the journalled rows (a store without its journal was not changed;
    each step sets values: safe to repeat)."""
    users = pl.read_parquet(folder / "users.parquet")["user_id"]
    movie_ids = pl.read_parquet(folder / "movies.parquet")["movie_id"] if (folder / "movies.parquet").exists() \
        else None
    restored = []
    if (graph := _graph_journal(folder)) is not None:
        back = graph_day.restoring(pl.read_parquet(folder / "changes.parquet"),
                                   pl.read_parquet(graph / "graph-users.parquet"),
                                   pl.read_parquet(graph / "graph-counts.parquet"))
        if movie_ids is not None:
            journalled = (pl.read_parquet(graph / f"graph-{part}.parquet") for part in ("media", "genres", "available"))
            back = dataclasses.replace(back, movies=graph_day.restoring_movies(
                movie_ids, *journalled, json.loads((graph / "genre-names.json").read_text())))
        graph_day.apply(stores.graph, back)
        restored.append("the graph")
    for spec, ids in [(spec, users) for spec in COLLECTIONS] + [(spec, movie_ids) for spec in MEDIA_COLLECTIONS]:
        journalled = folder / f"milvus-{spec.alias}.parquet"
        if ids is not None and journalled.exists():
            day_upsert.restore(stores.milvus, served_collection(stores.milvus, spec), pl.read_parquet(journalled),
                               ids, spec)
            restored.append(spec.alias)
    if (folder / AGENTDB_JOURNAL).exists():
        agentdb_day.restore(Path(_state(folder)["agentdb"]), users, folder / AGENTDB_JOURNAL)
        restored.append("AgentDB")
    log(f"day {folder.name}: {users.len()} touched users and {0 if movie_ids is None else movie_ids.len()} movies "
        f"restored from the journal in {', '.join(restored) or 'no store (none had been reached)'}")


def _publish_journalled(folder: Path, published: Path) -> None:
    state = _state(folder)
    day = date.fromisoformat(state["day"])
    people = folder / "day-people.parquet"
    served_days.publish_day(published, day, pl.read_parquet(folder / "day-ratings.parquet"),
                            pl.read_parquet(folder / "day-erasures.parquet"), int(state["rows_added"]),
                            pl.read_parquet(folder / "day-movies.parquet"),
                            pl.read_parquet(people) if people.exists() else None)


def recover(lake_dir: str | Path, stores: DayStores, log: Callable[[str], None]) -> list[str]:
    """Finish what killed day runs left: a journal still applying is restored, one applied is published."""
    root, outcomes = Path(lake_dir, *JOURNAL), []
    if not root.is_dir():
        return outcomes
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        state = _state(folder)
        if state is None:
            shutil.rmtree(folder)  # never complete: nothing was applied under it
            continue
        if state["phase"] == APPLYING:
            log(f"day {folder.name}: an interrupted run left its journal while applying: restoring the stores")
            restore(folder, stores, log)
            outcomes.append(f"{folder.name}: restored")
        else:
            log(f"day {folder.name}: an interrupted run had applied and audited every store: publishing it")
            _publish_journalled(folder, served_days.published_folder(lake_dir))
            outcomes.append(f"{folder.name}: published")
        shutil.rmtree(folder)
    for leftover in (p for p in root.iterdir() if p.name.startswith(".")):
        shutil.rmtree(leftover, ignore_errors=True)
    return outcomes


def _apply_graph(folder: Path, inputs: DayInputs, stores: DayStores,
                 log: Callable[[str], None]) -> tuple[dict[str, int], list[str], float]:
    """The graph journalled and its one audited transaction applied (an audit that fails rolls it back and raises
    GraphDayError: no problems are returned)."""
    started = time.perf_counter()
    journal_graph(folder, inputs, stores)
    journalled = time.perf_counter()
    day = graph_day.day_graph(inputs.changes, inputs.current, inputs.profiles)
    movies = inputs.day_movies
    if movies.ids.len():
        day = dataclasses.replace(day, movies=graph_day.movies_graph(movies.set, movies.availability, movies.withdrawn))
    applied = graph_day.apply(stores.graph, day, log) | {"journal_ms": round(1000 * (journalled - started))}
    return {f"graph_{k}": v for k, v in applied.items()}, [], round(time.perf_counter() - started, 3)


def _apply_agentdb(folder: Path, inputs: DayInputs, stores: DayStores) -> tuple[dict[str, int], list[str], float]:
    started = time.perf_counter()
    journal_agentdb(folder, inputs, stores)
    journalled = time.perf_counter()
    contents = agentdb_day.day_contents(inputs.episodes, inputs.policies, inputs.vectors, stores.recent_steps,
                                        first_free_experience_id(stores.agentdb))
    built = time.perf_counter()
    counts = {f"agentdb_{k}": v for k, v in agentdb_day.apply(stores.agentdb, inputs.users, contents).items()}
    applied = time.perf_counter()
    problems = [f"agentdb: {p}" for p in agentdb_day.read_back(
        stores.agentdb, inputs.users, contents, stores.node, sample=AGENTDB_SEARCH_SAMPLE)]
    done = time.perf_counter()
    counts |= {f"agentdb_{phase}_ms": round(1000 * (b - a)) for phase, a, b in (
        ("journal", started, journalled), ("rows", journalled, built), ("write", built, applied),
        ("read_back", applied, done))}
    return counts, problems, round(done - started, 3)


def _apply_collection(folder: Path, stores: DayStores, spec: CollectionSpec, rows: day_upsert.DayRows,
                      ids: pl.Series) -> tuple[dict[str, int], list[str], float]:
    """One collection journalled, upserted, read back (every vector) and searched back (a sample)."""
    started = time.perf_counter()
    name, untouched = journal_collection(folder, stores, spec, ids)
    journalled = time.perf_counter()
    counts = {f"{spec.alias}_{k}": v for k, v in day_upsert.apply(stores.milvus, name, rows, spec).items()}
    written = time.perf_counter()
    served = day_upsert.read_rows(stores.milvus, name, rows.ids, spec)
    problems = [f"{spec.alias}: {p}" for p in day_upsert.compare(served, rows.upserts.frame, rows.deletes)]
    read = time.perf_counter()
    problems += [f"{spec.alias}: {p}" for p in day_upsert.search_back(
        stores.milvus, name, rows.upserts.frame, spec, SEARCH_SAMPLE)]
    done = time.perf_counter()
    counts[f"{spec.alias}_untouched"] = untouched
    counts |= {f"{spec.alias}_{phase}_ms": round(1000 * (b - a)) for phase, a, b in (
        ("journal", started, journalled), ("write", journalled, written), ("read_back", written, read),
        ("search_back", read, done))}
    return counts, problems, round(done - started, 3)


@contextmanager
def _short_gil_turns(interval_s: float = GIL_SWITCH_INTERVAL_S) -> Iterator[None]:
    """The interpreter's switch interval shortened while the stores' threads run (restored after). A thread that
    waits on Neo4j, SQLite or Milvus gives up the GIL at each call and then waits for it, up to the interval while
    another thread runs Python: the graph's journal (20,000 users' nodes and counts read through the driver) took
    1.5 s alone, 5.3 s beside one thread spinning in Python at CPython's 5 ms and 2.7 s at 0.5 ms; beside the
    collections' threads, 20-25 s of a 100,000-rating day at 5 ms."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(interval_s)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _apply_all(folder: Path, inputs: DayInputs, stores: DayStores, counts: dict[str, int],
               seconds: dict[str, float], log: Callable[[str], None], after_store: Callable[[str], None]) -> list[str]:
    """Every store journalled, applied and audited, at once: the graph's transaction runs on the Neo4j server and
    AgentDB's in SQLite and Node (each waited for by a thread); the day's movies go into their collections first,
    one after the other (its users' vectors may be searched for them), then both user collections at once. Each
    store is journalled just before it is written, so none waits for another's journal; a failure anywhere is
    raised once every store started is done. (Measured on 2 cores: the user collections side by side took the day
    from 61 to 55 s; every collection at once, media included, to 79 s: the threads then starve AgentDB's write.)"""
    movies = inputs.day_movies
    media = [(spec, movies.rows(spec), movies.ids) for spec in MEDIA_COLLECTIONS] if movies.ids.len() else []
    users = [(spec, day_upsert.day_rows(vectors, inputs.profiles, spec), inputs.users)
             for spec, vectors in ((USERS, inputs.vectors), (HYBRID_USERS, inputs.hybrid_vectors))]

    def then_mark(store: str, apply: Callable[..., tuple[dict[str, int], list[str], float]], *args: object
                  ) -> tuple[dict[str, int], list[str], float]:
        done = apply(*args)
        after_store(store)
        return done

    with _short_gil_turns(), ThreadPoolExecutor(max_workers=4, thread_name_prefix="day-stores") as pool:
        stores_done = {"graph": pool.submit(then_mark, "graph", _apply_graph, folder, inputs, stores, log),
                       "agentdb": pool.submit(then_mark, "agentdb", _apply_agentdb, folder, inputs, stores)}
        for spec, rows, ids in media:
            stores_done[spec.alias] = written = pool.submit(then_mark, spec.alias, _apply_collection, folder, stores,
                                                            spec, rows, ids)
            if written.exception() is not None:  # waits for it; raised below, once every store started is done
                break
        else:
            stores_done |= {spec.alias: pool.submit(then_mark, spec.alias, _apply_collection, folder, stores, spec,
                                                    rows, ids) for spec, rows, ids in users}
    problems: list[str] = []
    for store, future in stores_done.items():
        store_counts, store_problems, seconds[store] = future.result()  # the first failure, every store done
        counts |= store_counts
        problems += store_problems
    return problems


def publish(lake_dir: str | Path, inputs: DayInputs, stores: DayStores, log: Callable[[str], None],
            after_store: Callable[[str], None] = lambda _: None) -> Published:
    """Journal, apply and audit every store, publish the day (see the module docstring); `after_store(store)` runs
    after each store is applied (the tests kill the process there)."""
    started = time.perf_counter()
    result = Published(inputs.day, recovered=recover(lake_dir, stores, log))
    inputs = with_kept_people(lake_dir, inputs)  # after a recovery, which may have published the day
    folder = journal_folder(lake_dir, inputs.day)
    journalling = time.perf_counter()
    open_journal(folder, inputs, stores)
    result.seconds |= {"recover": round(journalling - started, 3),
                       "journal": round(time.perf_counter() - journalling, 3)}
    try:
        problems = _apply_all(folder, inputs, stores, result.counts, result.seconds, log, after_store)
    except graph_day.GraphDayError as error:
        problems = [str(error)]
    except Exception:
        restore(folder, stores, log)
        shutil.rmtree(folder)
        raise
    if problems:
        restore(folder, stores, log)
        shutil.rmtree(folder)
        raise DayReleaseError(f"day {inputs.day} failed its audit and was taken back in every store: "
                              + "; ".join(problems))
    state = _state(folder) | {"phase": APPLIED}
    _write_state(folder, state)
    after_store("audited")
    served_days.publish_day(served_days.published_folder(lake_dir), inputs.day, inputs.ratings.select(
        list(LOG_SCHEMA)), inputs.erasures.select(list(LEDGER_SCHEMA)), inputs.rows_added, inputs.day_movies.brought,
        inputs.people)
    shutil.rmtree(folder)
    result.counts |= {"touched_users": inputs.users.len(), "changes": inputs.changes.height,
                      "movies_set": inputs.day_movies.set.height,
                      "movies_withdrawn": inputs.day_movies.withdrawn.height}
    return result

