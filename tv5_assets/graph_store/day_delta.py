"""A day's changes to the served graph: one audited transaction, and its inverse from a journal.

A day does not reload the graph: it sets the RATED relationships of the (user, movie) pairs whose current rating
changed to their new value (CREATE for a pair the served state has no rating of, MERGE and SET for one it has, or
DELETE for an erased or withdrawn rating), creates the User nodes of
new users (public label and the served slot's, so the slot stays whole for a later publish or rollback) and
deletes the nodes of users left with no rating, as a full load would not create them. The movies a day brings in
come first: their Media nodes with HAS_GENRE and AVAILABLE_ON (a Genre node MERGEd when new), and the Media of movies
a re-delivery withdrew go last, with any Genre left without a movie. All of it is one
transaction (a day past `CHANGES_PER_TRANSACTION` changed pairs: one per part of whole users), audited before it
commits: the pair writes set exactly one relationship per changed pair (their own returned count), every touched
user's RATED count equals the day's current rows and a sample of the changed pairs holds its new value, else it
rolls back and readers never saw it (a CREATE beside a relationship the graph had after all would change a count).
A repeat of a day is an empty delta; `restore` applies the journal (the pairs' old values and the touched users'
nodes as they were) with MERGE only, so it can run again, for a day that failed in another store after this one
committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
from neo4j import Transaction

from tv5_assets.graph_store import model, slots
from tv5_assets.graph_store.rows import available_on_rows, has_genre_rows, media_nodes
from tv5_assets.graph_store.resources import Neo4jClient
from tv5_assets.ingestion.movielens import time_of_day

ROWS_PER_STATEMENT = 50_000
# the pairs the served state has no rating of: CREATE skips MERGE's look for an existing relationship between the
# two nodes (100,000 new pairs in the ml-25m-shaped graph: 17-25 s with MERGE, 3-4 s with CREATE)
CREATED = "created"
# changed pairs per transaction: a 1,000,000-rating day's one transaction passed the server's 1 GiB of transaction
# memory (measured: benchmarks/results/day_release-session15.md); 300,000 stays well inside it
CHANGES_PER_TRANSACTION = 300_000
# changed pairs whose values the audit reads back (evenly spaced, all when fewer): every pair is counted by its own
# write and by its user's RATED count, and its values come from the same statement's parameters; reading all of a
# 100,000-rating day's pairs back matched each pair again in the transaction's state (7-17 s on 2 cores, the
# longest phase of the graph's 18-38 s; the whole audit takes 1.5-2.8 s with this sample)
VALUES_SAMPLE = 2_000
WRITTEN = "written"  # the count each pair write returns
USER_PROPERTIES = [p for p in model.USER.properties if p != "id"]
MEDIA_PROPERTIES = [p for p in model.MEDIA.properties if p != "id"]
AVAILABLE_PROPERTIES = list(model.AVAILABLE_ON.properties)
PAIR = ["user_id", "movie_id"]


class GraphDayError(RuntimeError):
    """The day's transaction did not leave the graph as the day says: rolled back."""


@dataclass(frozen=True)
class GraphMovies:
    """The Media a day sets or removes, with their whole HAS_GENRE and AVAILABLE_ON."""

    media: pl.DataFrame  # id + MEDIA_PROPERTIES: Media nodes that exist afterwards with these properties
    genres: pl.DataFrame  # movie_id, genre: every HAS_GENRE of those nodes afterwards
    available: pl.DataFrame  # movie_id + AVAILABLE_PROPERTIES: every AVAILABLE_ON of those nodes afterwards
    removed: pl.Series  # ids of Media nodes that do not exist afterwards
    genre_names: list[str]  # genres whose node goes when no movie has it any more

    @property
    def empty(self) -> bool:
        return not (self.media.height or self.removed.len())


@dataclass(frozen=True)
class GraphDay:
    """What a day sets in the graph, or what a restore sets back."""

    rated: pl.DataFrame  # user_id, movie_id, rating, timestamp (epoch s), time_of_day: pairs set to this value;
    # `created` (a day's only): True where the served state has no rating of the pair
    unrated: pl.DataFrame  # user_id, movie_id: pairs with no RATED afterwards
    users: pl.DataFrame  # id + USER_PROPERTIES: User nodes that exist afterwards with these properties
    removed_users: pl.Series  # ids of User nodes that do not exist afterwards
    counts: pl.DataFrame  # id, rated: every touched user's RATED count afterwards (the audit)
    movies: GraphMovies | None = None  # the day's movies (in the first transaction of a day cut in parts)


# a User's RATED relationships all end at Media of its slot (slots.py), so its degree counts them: read from the
# node's degree, not by visiting each relationship's end node (half the audit's counting time at 20,000 users)
_COUNTS = ("UNWIND $ids AS id OPTIONAL MATCH (u:User {id: id}) "
           "RETURN id, CASE WHEN u IS NULL THEN 0 ELSE COUNT { (u)-[:RATED]->() } END AS rated")


def _counted(records: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(records, schema={"id": pl.Int64, "rated": pl.Int64}).sort("id")


def _rated(changes: pl.DataFrame, rating: str, epoch: str, created: pl.Expr | None = None
           ) -> tuple[pl.DataFrame, pl.DataFrame]:
    present = pl.col(epoch).is_not_null()
    rated = changes.filter(present).select(
        pl.col("user_id").cast(pl.Int64), pl.col("movie_id").cast(pl.Int64),
        pl.col(rating).cast(pl.Float64).alias("rating"),
        pl.col(epoch).cast(pl.Int64).alias("timestamp"),
        time_of_day(pl.col(epoch)).replace_strict(model.TIME_OF_DAY_HOURS, return_dtype=pl.String).alias("time_of_day"),
        *([created.alias(CREATED)] if created is not None else []),
    )
    unrated = changes.filter(~present).select(pl.col(c).cast(pl.Int64) for c in PAIR)
    return rated.sort(PAIR), unrated.sort(PAIR)


def _profiles(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.col("user_id").cast(pl.Int64).alias("id"), *USER_PROPERTIES).unique("id").sort("id")


def day_graph(changes: pl.DataFrame, current: pl.DataFrame, profiles: pl.DataFrame) -> GraphDay:
    """The day's graph writes from `day_rating_changes`, `day_user_ratings` (the scope's current rows) and the
    touched users' demographics (served and the day's new people)."""
    rated, unrated = _rated(changes, "rating", "epoch", created=pl.col("old_epoch").is_null())
    touched = changes.select(pl.col("user_id").cast(pl.Int64).alias("id")).unique().sort("id")
    counts = touched.join(current.group_by(pl.col("user_id").cast(pl.Int64).alias("id")).agg(pl.len().alias("rated")),
                          on="id", how="left").with_columns(pl.col("rated").fill_null(0).cast(pl.Int64))
    keep = counts.filter(pl.col("rated") > 0).select("id")
    users = keep.join(_profiles(profiles), on="id", how="left").select("id", *USER_PROPERTIES)
    return GraphDay(rated=rated, unrated=unrated, users=users,
                    removed_users=counts.filter(pl.col("rated") == 0)["id"], counts=counts)


def movies_graph(movies: pl.DataFrame, availability: pl.DataFrame, withdrawn: pl.DataFrame) -> GraphMovies:
    """The day's Media writes: `movies` (the `movies` columns) set with their genres and `availability` rows, the
    movies of `withdrawn` (the same columns) removed."""
    gone = withdrawn["movie_id"].cast(pl.Int64).sort()
    names = pl.concat([movies.select(pl.col("genres").explode()), withdrawn.select(pl.col("genres").explode())])
    return GraphMovies(
        media=media_nodes(movies), genres=has_genre_rows(movies),
        available=available_on_rows(availability.join(movies.select("movie_id"), on="movie_id", how="semi")),
        removed=gone, genre_names=sorted(set(names["genres"].drop_nulls().to_list())))


_MEDIA_SCHEMA = {"id": pl.Int64, "title": pl.String, "year": pl.Int64, "imdb_id": pl.String, "tmdb_id": pl.Int64}
_AVAILABLE_SCHEMA = {"movie_id": pl.Int64, "platform": pl.String, "regions": pl.List(pl.String),
                     "quality": pl.List(pl.String), "subtitle_languages": pl.List(pl.String)}


def journal_movies(client: Neo4jClient, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What the graph serves for the movies a day sets or removes: their Media nodes, HAS_GENRE and AVAILABLE_ON."""
    wanted = {"ids": ids.cast(pl.Int64).to_list()}
    media = client.read("UNWIND $ids AS id MATCH (m:Media {id: id}) RETURN m.id AS id, "
                        + ", ".join(f"m.{p} AS {p}" for p in MEDIA_PROPERTIES), wanted)
    genres = client.read("UNWIND $ids AS id MATCH (:Media {id: id})-[:HAS_GENRE]->(g:Genre) "
                         "RETURN id AS movie_id, g.name AS genre", wanted)
    available = client.read("UNWIND $ids AS id MATCH (:Media {id: id})-[r:AVAILABLE_ON]->(p:Platform) "
                            "RETURN id AS movie_id, p.name AS platform, "
                            + ", ".join(f"r.{p} AS {p}" for p in AVAILABLE_PROPERTIES), wanted)
    return (pl.DataFrame(media, schema=_MEDIA_SCHEMA).sort("id"),
            pl.DataFrame(genres, schema={"movie_id": pl.Int64, "genre": pl.String}).sort("movie_id", "genre"),
            pl.DataFrame(available, schema=_AVAILABLE_SCHEMA).sort("movie_id", "platform"))


def restoring_movies(ids: pl.Series, media: pl.DataFrame, genres: pl.DataFrame, available: pl.DataFrame,
                     genre_names: list[str]) -> GraphMovies:
    """The Media writes that put the journalled movies back (`ids`: every movie the day set or removed)."""
    gone = ids.cast(pl.Int64).filter(~ids.cast(pl.Int64).is_in(media["id"].implode())).sort()
    return GraphMovies(media=media, genres=genres, available=available, removed=gone,
                       genre_names=sorted(set(genre_names) | set(genres["genre"].to_list())))


def journal(client: Neo4jClient, ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What the graph serves for the touched users now: their User nodes with properties, and their RATED counts
    (what a restore puts back, and how its audit knows it did)."""
    wanted = ids.cast(pl.Int64).to_list()
    records = client.read("UNWIND $ids AS id MATCH (u:User {id: id}) RETURN u.id AS id, "
                          + ", ".join(f"u.{p} AS {p}" for p in USER_PROPERTIES), {"ids": wanted})
    schema = {"id": pl.Int64, **{p: pl.String for p in USER_PROPERTIES}}
    users = pl.DataFrame(records, schema=schema).sort("id")
    return users, _counted(client.read(_COUNTS, {"ids": wanted}))


def restoring(changes: pl.DataFrame, before_users: pl.DataFrame, before_counts: pl.DataFrame) -> GraphDay:
    """The writes that put the journalled state back: the pairs' old values, the users' nodes as they were."""
    rated, unrated = _rated(changes, "old_rating", "old_epoch")
    gone = before_counts.select("id").join(before_users.select("id"), on="id", how="anti")["id"]
    return GraphDay(rated=rated, unrated=unrated, users=before_users, removed_users=gone, counts=before_counts)


def _columns(frame: pl.DataFrame) -> dict[str, list[Any]]:
    return {c: frame[c].to_list() for c in frame.columns if c != CREATED}


_SET_RATED = (" SET r.rating = $rating[i], r.timestamp = $timestamp[i], r.time_of_day = $time_of_day[i] "
              f"RETURN count(r) AS {WRITTEN}")


def _chunks(frame: pl.DataFrame) -> list[pl.DataFrame]:
    return [frame.slice(s, ROWS_PER_STATEMENT) for s in range(0, frame.height, ROWS_PER_STATEMENT)]


def statements(day: GraphDay, slot: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The transaction's statements, in order: movies set, users, then pairs set (new ones created, the others
    merged), pairs removed, users removed, movies removed."""
    slot_label = f", u:{slots.label(model.USER.label, slot)}" if slot else ""
    props = ", ".join(f"u.{p} = ${p}[i]" for p in USER_PROPERTIES)
    out: list[tuple[str, dict[str, Any]]] = _movie_statements(day.movies, slot) if day.movies else []
    for part in _chunks(day.users):
        out.append((f"UNWIND range(0, size($id) - 1) AS i MERGE (u:User {{id: $id[i]}}) SET {props}{slot_label}",
                    _columns(part)))
    new = day.rated[CREATED] if CREATED in day.rated.columns else pl.repeat(False, day.rated.height, eager=True)
    for verb, pairs in (("CREATE", day.rated.filter(new)), ("MERGE", day.rated.filter(~new))):
        for part in _chunks(pairs):
            out.append(("UNWIND range(0, size($user_id) - 1) AS i "
                        f"MATCH (u:User {{id: $user_id[i]}}), (m:Media {{id: $movie_id[i]}}) {verb} (u)-[r:RATED]->(m)"
                        + _SET_RATED, _columns(part)))
    for part in _chunks(day.unrated):
        out.append(("UNWIND range(0, size($user_id) - 1) AS i "
                    "MATCH (:User {id: $user_id[i]})-[r:RATED]->(:Media {id: $movie_id[i]}) DELETE r",
                    _columns(part)))
    if day.removed_users.len():
        out.append(("UNWIND $ids AS id MATCH (u:User {id: id}) DETACH DELETE u",
                    {"ids": day.removed_users.cast(pl.Int64).to_list()}))
    if day.movies and not day.movies.empty:
        out.append(("UNWIND $ids AS id MATCH (m:Media {id: id}) DETACH DELETE m",
                    {"ids": day.movies.removed.cast(pl.Int64).to_list()}))
        out.append(("UNWIND $names AS name MATCH (g:Genre {name: name}) WHERE NOT EXISTS { (g)<-[:HAS_GENRE]-() } "
                    "DELETE g", {"names": day.movies.genre_names}))
    return out


def _movie_statements(movies: GraphMovies, slot: str | None) -> list[tuple[str, dict[str, Any]]]:
    """Media set with their properties and the served slot's label; their HAS_GENRE and AVAILABLE_ON replaced."""
    if not movies.media.height:
        return []
    media_label = f", m:{slots.label(model.MEDIA.label, slot)}" if slot else ""
    genre_label = f" ON CREATE SET g:{slots.label(model.GENRE.label, slot)}" if slot else ""
    props = ", ".join(f"m.{p} = ${p}[i]" for p in MEDIA_PROPERTIES)
    ids = {"ids": movies.media["id"].to_list()}
    return [
        (f"UNWIND range(0, size($id) - 1) AS i MERGE (m:Media {{id: $id[i]}}) SET {props}{media_label}",
         _columns(movies.media)),
        ("UNWIND $ids AS id MATCH (:Media {id: id})-[r:HAS_GENRE|AVAILABLE_ON]->() DELETE r", ids),
        (f"UNWIND range(0, size($movie_id) - 1) AS i MATCH (m:Media {{id: $movie_id[i]}}) "
         f"MERGE (g:Genre {{name: $genre[i]}}){genre_label} CREATE (m)-[:HAS_GENRE]->(g)", _columns(movies.genres)),
        ("UNWIND range(0, size($movie_id) - 1) AS i MATCH (m:Media {id: $movie_id[i]}), (p:Platform {name: "
         "$platform[i]}) CREATE (m)-[r:AVAILABLE_ON]->(p) SET "
         + ", ".join(f"r.{p} = ${p}[i]" for p in AVAILABLE_PROPERTIES), _columns(movies.available)),
    ]


_VALUES = ("UNWIND range(0, size($user_id) - 1) AS i "
           "MATCH (:User {id: $user_id[i]})-[r:RATED]->(:Media {id: $movie_id[i]}) "
           "WHERE r.rating = $rating[i] AND r.timestamp = $timestamp[i] AND r.time_of_day = $time_of_day[i] "
           "RETURN count(r) AS n")


def values_sample(rated: pl.DataFrame, size: int = VALUES_SAMPLE) -> pl.DataFrame:
    """The changed pairs whose values the audit reads back: evenly spaced over the sorted pairs (all when fewer)."""
    return rated.gather_every(max(1, -(-rated.height // size)))


def audit(run: Callable[[str, dict[str, Any]], list[dict[str, Any]]], day: GraphDay, written: int) -> list[str]:
    """Problems between the graph (as `run` reads it) and the day: the relationships the pair writes set (`written`,
    their returned counts: one per changed pair), RATED counts per touched user, a sample's values, and which
    touched users have a node (empty: as the day says)."""
    problems = []
    if written != day.rated.height:
        problems.append(f"the pair writes set {written} RATED relationship(s) for the day's {day.rated.height} "
                        "changed pair(s)")
    counted = _counted(run(_COUNTS, {"ids": day.counts["id"].to_list()}))
    wrong = day.counts.join(counted, on="id", how="left", suffix="_graph").filter(
        pl.col("rated").ne_missing(pl.col("rated_graph")))
    if wrong.height:
        first = wrong.row(0, named=True)
        problems.append(f"{wrong.height} touched user(s) have another RATED count than the day's current ratings, "
                        f"e.g. user {first['id']}: {first['rated_graph']} in the graph, {first['rated']} expected")
    sample = values_sample(day.rated)
    held = run(_VALUES, _columns(sample))[0]["n"] if sample.height else 0
    if held != sample.height:
        problems.append(f"{sample.height - held} of {sample.height} sampled changed pair(s) do not hold the day's "
                        "value")
    present = run("UNWIND $ids AS id MATCH (u:User {id: id}) RETURN count(u) AS n",
                  {"ids": day.users["id"].to_list()})[0]["n"]
    if present != day.users.height:
        problems.append(f"{day.users.height - present} touched user(s) with ratings have no User node")
    return problems + (audit_movies(run, day.movies) if day.movies else [])


def audit_movies(run: Callable[[str, dict[str, Any]], list[dict[str, Any]]], movies: GraphMovies) -> list[str]:
    """Problems between the graph and the day's movies: each set Media with its genres and platforms, each removed
    one gone."""
    problems = []
    expected = movies.media.select(pl.col("id").alias("movie_id")).join(
        movies.genres.group_by("movie_id").len("genres"), on="movie_id", how="left").join(
        movies.available.group_by("movie_id").len("platforms"), on="movie_id", how="left").fill_null(0)
    found = pl.DataFrame(run(
        "UNWIND $ids AS id MATCH (m:Media {id: id}) RETURN id AS movie_id, COUNT { (m)-[:HAS_GENRE]->(:Genre) } AS "
        "genres, COUNT { (m)-[:AVAILABLE_ON]->(:Platform) } AS platforms", {"ids": expected["movie_id"].to_list()}),
        schema={"movie_id": pl.Int64, "genres": pl.Int64, "platforms": pl.Int64})
    wrong = expected.cast({"genres": pl.Int64, "platforms": pl.Int64}).join(
        found, on=["movie_id", "genres", "platforms"], how="anti")
    if wrong.height:
        problems.append(f"{wrong.height} of the day's movie(s) lack their Media node, genres or platforms, e.g. "
                        f"{wrong['movie_id'].head(5).to_list()}")
    left = run("UNWIND $ids AS id MATCH (m:Media {id: id}) RETURN count(m) AS n",
               {"ids": movies.removed.cast(pl.Int64).to_list()})[0]["n"]
    if left:
        problems.append(f"{left} withdrawn movie(s) still have a Media node")
    return problems


def parts(day: GraphDay, max_changes: int = CHANGES_PER_TRANSACTION) -> list[GraphDay]:
    """`day` cut into parts of whole users with at most about `max_changes` changed pairs each (one part when it
    fits): every part is audited on its own users."""
    changed = pl.concat([day.rated.select("user_id"), day.unrated.select("user_id")])
    if changed.height <= max_changes:
        return [day]
    per_user = changed.group_by("user_id").len().sort("user_id")
    part = per_user.select(pl.col("user_id").alias("id"), ((pl.col("len").cum_sum() - 1) // max_changes).alias("part"))

    def of(frame: pl.DataFrame, column: str, number: int) -> pl.DataFrame:
        return frame.join(part.filter(pl.col("part") == number).select(pl.col("id").alias(column)), on=column,
                          how="semi")

    removed = day.removed_users.to_frame("id")
    return [GraphDay(rated=of(day.rated, "user_id", n), unrated=of(day.unrated, "user_id", n),
                     users=of(day.users, "id", n), removed_users=of(removed, "id", n)["id"],
                     counts=of(day.counts, "id", n), movies=day.movies if n == 0 else None)
            for n in range(int(part["part"].max()) + 1)]


def apply(client: Neo4jClient, day: GraphDay, log: Callable[[str], None] = lambda _: None,
          max_changes: int = CHANGES_PER_TRANSACTION) -> dict[str, int]:
    """Write `day` in one audited transaction (or, past `max_changes`, one per part of whole users: readers may
    then see part of the day until the last commits); each commits only when its audit passes (else
    GraphDayError, and the parts already committed are for the caller's journal to restore)."""
    slot = slots.served_slot(client)
    pieces = parts(day, max_changes)
    spent = {"write_ms": 0, "audit_ms": 0, "commit_ms": 0}
    for number, piece in enumerate(pieces, start=1):
        for phase, ms in _apply_one(client, piece, slot, f"{number}/{len(pieces)}").items():
            spent[phase] += ms
    media_set, media_removed = (day.movies.media.height, day.movies.removed.len()) if day.movies else (0, 0)
    log(f"graph: {day.rated.height} RATED set, {day.unrated.height} removed, {day.users.height} users set, "
        f"{day.removed_users.len()} removed, {media_set} Media set, {media_removed} removed (slot {slot or 'none'}, "
        f"{len(pieces)} transaction(s))")
    return {"rated_set": day.rated.height, "rated_removed": day.unrated.height, "users_set": day.users.height,
            "users_removed": day.removed_users.len(), "media_set": media_set, "media_removed": media_removed,
            "transactions": len(pieces), **spent}


def write_and_audit(tx: Transaction, work: list[tuple[str, dict[str, Any]]], day: GraphDay
                    ) -> tuple[list[str], float, float]:
    """`work` (the day's `statements`) run in `tx` and audited there, nothing committed: the audit's problems and
    the `perf_counter` marks after the writes and after the audit."""
    written = sum(record.get(WRITTEN, 0) for query, parameters in work for record in tx.run(query, parameters).data())
    wrote = time.perf_counter()
    problems = audit(lambda q, p: [r.data() for r in tx.run(q, p)], day, written)
    return problems, wrote, time.perf_counter()


def _apply_one(client: Neo4jClient, day: GraphDay, slot: str | None, label: str) -> dict[str, int]:
    """One audited transaction; the milliseconds its writes, audit and commit took (of the attempt that ran)."""
    work = statements(day, slot)

    def transaction() -> tuple[list[str], dict[str, int]]:
        marks = [time.perf_counter()]
        with client._driver.session(database=client.database) as session:  # noqa: SLF001 - one audited transaction
            with session.begin_transaction() as tx:
                problems, *audit_marks = write_and_audit(tx, work, day)
                marks += audit_marks
                if problems:
                    tx.rollback()
                    return problems, {}
                tx.commit()
                marks.append(time.perf_counter())
        return [], {phase: round(1000 * (b - a)) for phase, a, b in zip(("write_ms", "audit_ms", "commit_ms"),
                                                                          marks, marks[1:])}

    problems, spent = client._retrying(f"the day's graph transaction {label} ({len(work)} statements)",  # noqa: SLF001
                                       transaction)[0]
    if problems:
        raise GraphDayError(f"the day's graph transaction {label} was rolled back, readers never saw it: "
                            + "; ".join(problems))
    return spent
