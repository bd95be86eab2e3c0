"""Seven days published to the served stores at ml-25m shape, then the stores against a full build.

The seven days of `benchmarks.days_merge` (`data/bench/days_merge/week`: 100,000 ratings from 20,000 users a day,
1,000 new; day 4 arrives before day 3, day 2 is re-delivered corrected after the others, the last day erases 200
users) each go through the `daily` job, `day_release` included, on the stores of `benchmarks.whole_graph` (used in
place, as `benchmarks.day_release` does). Before and after: the served `user_vectors` collection's search latency
(single queries) and recall@10 against an exact search over the vectors it serves (Milvus keeps deleted and
replaced entities until compaction). After: the full build's own functions over the whole current ratings (the
base folded with the published days) give every touched user's content vector and current ratings; the served
collection, graph and AgentDB are compared with them user by user, and the entity and session counts with the
full build's user count.

Each run's day partitions are captured right after it (`day_equality.capture`, under `<work-dir>/captures`: a
re-delivered day overwrites its partition files), and the served state rebuilt from the base and the captures
(`day_equality.incremental`) is compared with the full build's functions over the same current ratings, each
comparison in its own process: the steps on natural keys (every user), the collaborative user vectors with a
full fold-in against the same movie factors (1e-5), the served AgentDB file's rows on natural keys, and the served
hybrid vectors' recall@20 on `recommendation_quality`'s split next to a full refit's over the same ratings (ALS and
every vector refitted by the full build's functions, scored alike), within 2 %; `--refit-lake` or `--refit-recall`
add a separately run refit's figure. The served graph is compared whole too: every label's and type's count with
the full build's sources and the whole RATED set, user range by user range; and every entity of the four Milvus
collections with the full build's vector (1e-6).

With `--week-start DAY` a fresh week of the same shape is generated instead, with `--new-movies` new movies a day,
its new ids above the served lake's (for stores whose `ratings` folds days_merge's week in already); day 3's movies
come with day 2's, since day 4, applied before day 3, rates them (`movies_before_the_jump`).

    python -m benchmarks.day_week [--label session16] [--week-start 2019-12-08] [--refit-lake DIR | --refit-recall R]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks import day_equality as eq
from benchmarks.common import BENCH_DIR, measure, report
from benchmarks.day_release import WHOLE_GRAPH, _lake, daily_run, generate_days, served_graph_rated, served_milvus
from benchmarks.days_merge import CORRECTED, ORDER, _corrected, _deliveries

WEEK = BENCH_DIR / "days_merge" / "week"
RESULTS = Path(__file__).resolve().parent / "results"


def movies_before_the_jump(week: Path) -> None:
    """The day delivered early (ORDER: day 4 before day 3) rates the movies day 3 brings, which a run may not before
    they are delivered (`unknown_movie`: the day would be refused); so day 3's movies file comes a day early, in
    day 2's. The ratings stay as generated, and the full build sees the same movies."""
    import polars as pl

    jump = next(i for i, day in enumerate(ORDER) if day != i)  # ORDER[jump] is applied before day index `jump`
    files = sorted(week.glob("movies-*.csv"))
    if len(files) < jump + 1:
        return
    late, before = files[jump], files[jump - 1]
    pl.concat([pl.read_csv(before, infer_schema=False), pl.read_csv(late, infer_schema=False)]).write_csv(
        before, line_terminator="\n", quote_style="necessary")
    late.unlink()


def served_search(lake: str, queries: int = 500, timed: int = 200, seed: int = 0) -> dict:
    """Recall@10 of the served user_vectors against exact search over its own vectors, and single-query latency."""
    import polars as pl

    from tv5_assets.vector_store.schema import USERS

    milvus = served_milvus(lake)
    with milvus.connected():
        name = milvus.alias_target(milvus.alias_name(USERS.alias))
        milvus.ensure_searchable(name)
        served = milvus.values_where(name, "id >= 0", "vector").sort("id")
        matrix = np.asarray(served["vector"].to_list(), dtype=np.float32)
        unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        rng = np.random.default_rng(seed)
        picked = rng.choice(len(unit), size=queries, replace=False)
        exact = np.argsort(-(unit[picked] @ unit.T), axis=1)[:, :10]
        ids = served["id"].to_numpy()
        hits = milvus.search(name, matrix[picked], limit=10, spec=USERS)
        recall = float(np.mean([len(set(ids[e]) & {h["id"] for h in found}) / 10 for e, found in zip(exact, hits)]))
        times = []
        for row in picked[:timed]:
            started = time.perf_counter()
            milvus.search(name, matrix[row:row + 1], limit=10, spec=USERS)
            times.append((time.perf_counter() - started) * 1000)
        entities = milvus.count(name)
    return {"entities": entities, "recall_at_10": recall, "p50_ms": float(np.percentile(times, 50)),
            "p95_ms": float(np.percentile(times, 95)), "distinct_ids": int(pl.Series(ids).n_unique())}


def compare_full(lake: str, touched: list[int], graph_sample: int = 5_000, seed: int = 0,
                 store: str | None = None) -> dict:
    """The full build's content vectors and current ratings, against the served stores: every touched user's
    served vector, and the RATED rows of a sample of them (reading all of theirs would move ~20M rows over Bolt).
    The movies' content vectors are the lake's and, with the runs captured in `store`, the days' new movies'."""
    import dagster as dg
    import polars as pl

    from tv5_assets.embeddings.user_vectors import user_vectors
    from tv5_assets.vector_store.schema import USERS
    from tv5_assets_tests.harness import local_neo4j

    base = Path(lake)
    started = time.perf_counter()
    full = current_ratings(lake)
    content = eq.served_movies(pl.scan_parquet(base / "content_vectors.parquet"),
                               eq.captures(Path(store)) if store else [], "day_content_vectors")
    as_ratings = full.select("user_id", "movie_id", "rating", pl.col("timestamp").dt.epoch("s").alias("timestamp"))
    vectors = user_vectors(as_ratings, content).frame
    full_s = time.perf_counter() - started
    ids = pl.Series(touched, dtype=pl.Int64)
    milvus = served_milvus(base)
    with milvus.connected():
        name = milvus.alias_target(milvus.alias_name(USERS.alias))
        milvus.ensure_searchable(name)
        served = milvus.values_where(name, "id >= 0", "vector").sort("id")
    every_user_equal = served["id"].to_list() == vectors["user_id"].cast(pl.Int64).to_list()
    mine = served.filter(pl.col("id").is_in(ids.implode()))
    expected = vectors.filter(pl.col("user_id").cast(pl.Int64).is_in(ids.implode())).sort("user_id")
    same_users = mine["id"].to_list() == expected["user_id"].cast(pl.Int64).to_list()
    gap = float(np.abs(np.asarray(mine["vector"].to_list()) - np.asarray(expected["vector"].to_list())).max()) \
        if same_users and mine.height else float("nan")
    sample = sorted(np.random.default_rng(seed).choice(touched, size=min(graph_sample, len(touched)),
                                                       replace=False).tolist())
    wanted = full.filter(pl.col("user_id").is_in(pl.Series(sample, dtype=pl.Int32).implode()))
    with dg.build_resources({"neo4j": local_neo4j()}) as resources:
        rated = resources.neo4j.read(
            "UNWIND $ids AS id MATCH (:User {id: id})-[r:RATED]->(m:Media) "
            "RETURN id, m.id AS movie, r.rating AS rating", {"ids": sample})
        counts = resources.neo4j.read(
            "RETURN COUNT { (:User) } AS users, COUNT { (:User)-[:RATED]->(:Media) } AS n")[0]
    graph = pl.DataFrame(rated, schema={"id": pl.Int64, "movie": pl.Int64, "rating": pl.Float64})
    same_rated = sorted(graph.rows()) == sorted(
        (int(u), int(m), float(r)) for u, m, r in wanted.select("user_id", "movie_id", "rating").rows())
    return {"touched_users": len(touched), "served_ids_equal_full_build_users": every_user_equal,
            "touched_vectors_equal_users": same_users, "touched_vector_max_gap": gap,
            "served_entities": served.height, "full_build_users_with_vector": vectors.height,
            "rated_equal_for_sampled_users": same_rated, "sampled_users": len(sample),
            "sampled_rated_rows": wanted.height,
            "graph_users": counts["users"], "graph_rated": counts["n"], "full_users": full["user_id"].n_unique(),
            "full_rows": full.height, "full_build_s": full_s}


def expected_graph_sources(lake: str | Path, fold: bool = True) -> dict:
    """The five sources the full build loads the graph from, over the same state: the current ratings, the base
    movies with every published day's (as `movies` folds them), the base genome, the people (the base's and the days'
    new ones, less the users with no current rating: the erased) and the base availability with each published
    day's new movies' rows."""
    import polars as pl

    from tv5_assets.ingestion import day_catalogue, served_days

    folder = served_days.published_folder(lake)
    published = served_days.read_published_movies(folder)
    movies = day_catalogue.catalogue(pl.read_parquet(table_path(lake, "movies")), published, published.head(0))
    availability = pl.read_parquet(table_path(lake, "availability"))
    day_rows = [pl.read_parquet(path).select(availability.columns).cast(dict(availability.schema))
                for day in served_days.published_days(folder)
                if (path := Path(lake) / "day_availability" / f"{day.isoformat()}.parquet").exists()]
    people = pl.concat([pl.read_parquet(table_path(lake, "demographics"), columns=["user_id"]),
                        *(pl.read_parquet(Path(lake) / "day_demographics" / f"{day.isoformat()}.parquet",
                                          columns=["user_id"])
                          for day in served_days.published_days(folder)
                          if (Path(lake) / "day_demographics" / f"{day.isoformat()}.parquet").exists())])
    ratings = current_ratings(lake, fold)
    # the full build draws a person per user with a current rating: an erased user (all their ratings gone) has none
    people = people.unique().join(ratings.select("user_id").unique(), on="user_id", how="semi")
    return {"movies": movies, "ratings": ratings, "genome": pl.read_parquet(table_path(lake, "genome")),
            "demographics": people, "availability": pl.concat([availability, *day_rows])}


def compare_graph(lake: str, store: str, fold: bool = True, parts: int = 32) -> dict:
    """The served graph against the full build's sources over the same state: every node label's and relationship
    type's count (`graph_store.rules.expected_counts`, as the graph's own checks count them), and the whole RATED
    set, read back user range by user range and compared with the rows the full load writes on (user, movie):
    rating, timestamp and time of day."""
    import dagster as dg
    import polars as pl

    from tv5_assets.graph_store import cypher, model, rows, rules
    from tv5_assets_tests.harness import local_neo4j

    started = time.perf_counter()
    sources = expected_graph_sources(lake, fold)
    demographics = sources.pop("demographics")
    expected = rules.expected_counts(**{k: v.lazy() for k, v in sources.items()}, demographics=demographics.lazy())
    want = rows.rated_rows(sources["ratings"])
    del sources
    loaded: dict[str, int] = {}
    differing: list[dict] = []
    with dg.build_resources({"neo4j": local_neo4j()}) as resources:
        client = resources.neo4j
        for spec in model.NODES:
            loaded[spec.label] = client.read(cypher.count_nodes(spec))[0]["n"]
        for spec in model.RELATIONSHIPS:
            loaded[spec.type] = client.read(cypher.count_relationships(spec))[0]["total"]
        edges = np.linspace(0, int(want["user_id"].max()) + 1, parts + 1).astype(np.int64)
        found_rows = 0
        for lo, hi in zip(edges[:-1], edges[1:]):
            got = client.read(
                "MATCH (u:User)-[r:RATED]->(m:Media) WHERE u.id >= $lo AND u.id < $hi "
                "RETURN collect(u.id) AS u, collect(m.id) AS m, collect(r.rating) AS r, collect(r.timestamp) AS t, "
                "collect(r.time_of_day) AS d", {"lo": int(lo), "hi": int(hi)})[0]
            graph = pl.DataFrame({"user_id": got["u"], "movie_id": got["m"], "rating": got["r"],
                                  "timestamp": got["t"], "time_of_day": got["d"]},
                                 schema={k: want.schema[k] for k in want.columns})
            found_rows += graph.height
            part = want.filter(pl.col("user_id").is_between(int(lo), int(hi) - 1))
            diff = eq.keyed_diff(graph, part, ["user_id", "movie_id"], ["rating", "timestamp", "time_of_day"])
            if not diff["equal"]:
                differing.append({k: diff[k] for k in ("missing", "extra", "differing_rows", "examples")} |
                                 {"users": [int(lo), int(hi)]})
    counts = rules.counts_match("graph", list(expected), expected, loaded)
    return {"counts_equal": counts.passed, "counts": {k: loaded.get(k, 0) for k in expected},
            "expected_counts": expected, "rated_rows_read": found_rows, "rated_expected": want.height,
            "rated_set_equal": not differing and found_rows == want.height, "rated_parts_differing": differing[:3],
            "seconds": round(time.perf_counter() - started, 1)}


def compare_milvus(lake: str, store: str, fold: bool = True) -> dict:
    """Every served collection's entities against the full build's vectors over the same state (1e-6): the content
    user vectors (`user_vectors` of the current ratings), the hybrid user vectors (those with a full fold-in against
    the served ALS factors), the media's content vectors and hybrid vectors (the base's and the days' new movies')."""
    import polars as pl

    from tv5_assets.embeddings.user_vectors import user_vectors
    from tv5_assets.vector_store.schema import HYBRID_MEDIA, HYBRID_USERS, MEDIA, USERS

    started = time.perf_counter()
    captured = eq.captures(Path(store))
    current = current_ratings(lake, fold)
    content = eq.served_movies(pl.scan_parquet(table_path(lake, "content_vectors")), captured, "day_content_vectors")
    taste = user_vectors(current.select("user_id", "movie_id", "rating"), content).frame
    movies = pl.read_parquet(table_path(lake, "collaborative_movie_vectors"))
    expected = {USERS: taste, HYBRID_USERS: eq.hybrid_users(current, content, movies), MEDIA: content,
                HYBRID_MEDIA: eq.served_movies(pl.scan_parquet(table_path(lake, "hybrid_movie_vectors")), captured,
                                               "day_hybrid_movie_vectors")}
    del current
    built = time.perf_counter()
    figures: dict = {}
    milvus = served_milvus(lake)
    with milvus.connected():
        for spec, want in expected.items():
            name = milvus.alias_target(milvus.alias_name(spec.alias))
            milvus.ensure_searchable(name)
            key, dim = want.columns[0], want.schema["vector"].size
            edges = np.linspace(0, int(want[key].max()) + 1, 5).astype(np.int64)  # a reply stays under 256 MB
            served = pl.concat([milvus.values_where(name, f"id >= {lo} and id < {hi}", "vector").select(
                pl.col("id").cast(want.schema[key]).alias(key),
                pl.col("vector").list.to_array(dim).cast(pl.Array(pl.Float32, dim)))
                for lo, hi in zip(edges[:-1], edges[1:])])
            beyond = milvus.values_where(name, f"id >= {edges[-1]}", "vector").height
            found = eq.vectors_equal(served, want, 1e-6, key=key)
            figures[spec.alias] = {"entities": found["users"], "expected": found["expected_users"],
                                   **{k: found[k] for k in ("missing", "extra", "max_gap", "over_tolerance", "equal")}}
            figures[spec.alias]["extra"] += beyond
            figures[spec.alias]["equal"] = found["equal"] and not beyond
    figures["equal"] = all(f["equal"] for f in figures.values())
    return {**figures, "full_build_s": round(built - started, 1), "compare_s": round(time.perf_counter() - built, 1)}


def table_path(lake: str | Path, name: str) -> Path:
    """A base table of the day's lake, else of the whole_graph lake its links come from (the day's lake links only
    what a day reads: `collaborative_user_vectors` and `user_vectors` are read there)."""
    own = Path(lake) / f"{name}.parquet"
    return own if own.exists() else WHOLE_GRAPH / "lake" / f"{name}.parquet"


def current_ratings(lake: str | Path, fold: bool = True):
    """The current ratings the stores serve: the lake's `ratings` with its published days folded in; with
    `fold=False` as they are (a lake whose `ratings` a refit has folded the days into already)."""
    import polars as pl

    from tv5_assets.ingestion import days, served_days

    ratings = pl.read_parquet(Path(lake) / "ratings.parquet")
    if not fold:
        return ratings
    return days.fold_published(ratings, *served_days.read_published(served_days.published_folder(Path(lake))))


def _served(lake: str, store: str, name: str, asset: str):
    """The served state of the base table `name` after the captured runs of `store`."""
    import polars as pl

    return eq.incremental(pl.scan_parquet(table_path(lake, name)), eq.captures(Path(store)), asset)


def compare_episodes(lake: str, store: str, fold: bool = True, parts: int = 4) -> dict:
    """The served steps (the base's, each touched user's replaced by the latest capture's) against the full build's
    `episodes` over the same current ratings: every user's, on natural keys. In `parts` ranges of user ids, one
    at a time (a user's steps depend on that user's ratings alone, and the numbering is compared per user), so
    the two 25M-step tables are never held whole (about 7 GiB at once, 12 GiB when rows differ)."""
    import polars as pl

    started = time.perf_counter()
    current = current_ratings(lake, fold)
    ids = current["user_id"].unique().sort()
    bounds = [int(ids[int(i)]) for i in np.linspace(0, ids.len(), parts + 1)[:-1]] + [int(ids[-1]) + 1]
    found, full_s = [], 0.0
    for low, high in zip(bounds, bounds[1:]):
        users = pl.col("user_id").is_between(low, high, closed="left")
        part_started = time.perf_counter()
        full = eq.full_episodes(current.filter(users))
        full_s += time.perf_counter() - part_started
        found.append(eq.episodes_equal(eq.incremental(pl.scan_parquet(table_path(lake, "episodes")),
                                                      eq.captures(Path(store)), "day_episodes", where=users), full))
        del full
    return {**eq.combined(found), "parts": parts, "full_build_s": round(full_s, 1),
            "compare_s": round(time.perf_counter() - started - full_s, 1)}


def compare_collaborative(lake: str, store: str, fold: bool = True) -> dict:
    """The served collaborative user vectors against a full fold-in of the current ratings against the served
    ALS movie factors, `collaborative_movie_vectors` (a day's fold-in leaves the movies it brought out: their
    content-predicted factors would move every user's solve, ALS reading Y'Y), within 1e-5."""
    import polars as pl

    started = time.perf_counter()
    captured = eq.captures(Path(store))
    movies = pl.read_parquet(table_path(lake, "collaborative_movie_vectors")).select("movie_id", "vector")
    full = eq.full_fold_in(current_ratings(lake, fold), movies)
    built = time.perf_counter()
    served = _served(lake, store, "collaborative_user_vectors", "day_collaborative_user_vectors")
    figures = eq.collaborative_equal(served, full)
    touched = pl.col("user_id").is_in(eq.touched_users(captured)["user_id"].implode())
    for name, users in (("touched", touched), ("untouched", ~touched)):
        figures[f"{name}_over_tolerance"] = eq.collaborative_equal(served.filter(users),
                                                                   full.filter(users))["over_tolerance"]
    return {**figures, "full_build_s": round(built - started, 1), "compare_s": round(time.perf_counter() - built, 1)}


def compare_agentdb(lake: str, store: str, fold: bool = True, sample: int | None = None, seed: int = 0) -> dict:
    """The served AgentDB file against the rows the full build's functions write from the full episodes, policies
    (the same people: `day_equality.archetypes`) and content user vectors over the current ratings: every user's
    rows, or a seeded sample of `sample` users (then users the full build lacks are not looked for)."""
    import polars as pl

    from tv5_assets.embeddings.user_vectors import user_vectors
    from tv5_assets.rl.policies import build_policies

    started = time.perf_counter()
    current = current_ratings(lake, fold)
    steps = eq.full_episodes(current)
    people = eq.archetypes(pl.scan_parquet(table_path(lake, "demographics")), eq.captures(Path(store)))
    policies = build_policies(steps.lazy(), people)
    content = eq.served_movies(pl.scan_parquet(table_path(lake, "content_vectors")), eq.captures(Path(store)),
                               "day_content_vectors")
    vectors = user_vectors(current.select("user_id", "movie_id", "rating"), content).frame
    del current
    users = None
    if sample is not None and sample < policies.height:
        ids = policies["user_id"].to_numpy()
        users = sorted(np.random.default_rng(seed).choice(ids, size=sample, replace=False).tolist())
    expected = eq.expected_agentdb(steps, policies, vectors, users=users)
    del steps
    built = time.perf_counter()
    figures = eq.agentdb_equal(Path(lake) / "agentdb.db", expected, users)
    return {**figures, "users": "all" if users is None else len(users), "full_build_s": round(built - started, 1),
            "compare_s": round(time.perf_counter() - built, 1)}


def _lake_recall(split, lake: str | Path, users, captured: list[Path]) -> dict:
    """recall@20 on `split` of a lake's served hybrid vectors (`users`, with its served movie side: the full
    build's movies and the captured runs' new ones), and of that movie side with the users folded in on their
    train ratings only."""
    import polars as pl

    def movies(name: str, asset: str) -> pl.DataFrame:
        return eq.served_movies(pl.scan_parquet(table_path(lake, name)), captured, asset)

    hybrid_movies = movies("hybrid_movie_vectors", "day_hybrid_movie_vectors")
    trained = eq.train_hybrid_users(split, movies("content_vectors", "day_content_vectors"),
                                    movies("collaborative_movie_vectors", "day_collaborative_movie_vectors"))
    return {"served_vectors": eq.served_recall(split, users, hybrid_movies),
            "train_fold_in": eq.served_recall(split, trained, hybrid_movies)}


def compare_recall(lake: str, store: str, refit: str | float | None = None, fold: bool = True) -> dict:
    """recall@20 on `recommendation_quality`'s split of the current ratings of the served (incremental) hybrid
    state against a full refit's over the same ratings (`day_equality.full_refit`: ALS and every vector refitted by
    the full build's functions), both scored alike, as `drift.day_recall` scores served vectors (the issue's 2 %,
    relative): the served user vectors as they are against the refit's (both fitted on the held-out ratings too),
    and, without that leak, the split's users folded in on train only against the served movie side and against the
    refit's. Beside them the base release's `recommendation_quality` figure and, given, a separately run refit's
    (`refit`: a figure, or its lake, whose vectors are then scored alike too)."""
    import gc

    import polars as pl

    started = time.perf_counter()
    current = current_ratings(lake, fold)
    split = eq.evaluation_split(current)
    captured = eq.captures(Path(store))
    served = _lake_recall(split, lake, _served(lake, store, "hybrid_user_vectors", "day_hybrid_user_vectors"),
                          captured)
    content = eq.served_movies(pl.scan_parquet(table_path(lake, "content_vectors")), captured, "day_content_vectors")
    refitting = time.perf_counter()
    full = eq.full_refit(current, content)
    refit_s = time.perf_counter() - refitting
    trained = eq.train_hybrid_users(split, content, full.collaborative_movie_vectors)
    theirs = {"served_vectors": eq.served_recall(split, full.hybrid_user_vectors, full.hybrid_movie_vectors),
              "train_fold_in": eq.served_recall(split, trained, full.hybrid_movie_vectors)}
    del full
    gc.collect()
    # the evaluation's protocol: the refit never sees the held-out pairs (nor do the users' own vectors)
    refitting = time.perf_counter()
    collab, hybrid_movies = eq.refit_movie_side(eq.without_held_out(current, split), content)
    protocol = eq.served_recall(split, eq.train_hybrid_users(split, content, collab), hybrid_movies)
    protocol_s = time.perf_counter() - refitting
    del current, collab, hybrid_movies
    gc.collect()
    figures: dict = {
        "served_vs_full_refit": eq.recall_equal(served["served_vectors"]["recall"],
                                                theirs["served_vectors"]["recall"]),
        "train_fold_in_vs_full_refit": eq.recall_equal(served["train_fold_in"]["recall"],
                                                       theirs["train_fold_in"]["recall"]),
        "train_fold_in_vs_refit_without_held_out": eq.recall_equal(served["train_fold_in"]["recall"],
                                                                   protocol["recall"]),
        "held_out_seen_by_the_served_movie_side": eq.held_out_seen(
            split, pl.scan_parquet(Path(lake) / "ratings.parquet")),
        "users": served["served_vectors"]["users"], "refit_users": theirs["served_vectors"]["users"],
        "train_fold_in_users": served["train_fold_in"]["users"],
        "base_recommendation_quality": eq.refit_recall(table_path(lake, "recommendation_quality")),
        "refit_s": round(refit_s, 1), "refit_without_held_out_s": round(protocol_s, 1)}
    if refit is not None:
        figure = eq.refit_recall(refit if isinstance(refit, float) else Path(refit))
        figures["refit_recommendation_quality"] = figure
        if not isinstance(refit, float) and (Path(refit) / "hybrid_user_vectors.parquet").exists():
            lake_refit = _lake_recall(split, refit, pl.read_parquet(Path(refit) / "hybrid_user_vectors.parquet"), [])
            figures["served_vs_refit_lake"] = eq.recall_equal(served["served_vectors"]["recall"],
                                                              lake_refit["served_vectors"]["recall"])
            figures["train_fold_in_vs_refit_lake"] = eq.recall_equal(served["train_fold_in"]["recall"],
                                                                     lake_refit["train_fold_in"]["recall"])
    # the served vectors against the refit's (the 2 %) and, stricter, the users folded in on train against a
    # refit that never saw the held-out pairs
    figures["within"] = (figures["served_vs_full_refit"]["within"]
                         and figures["train_fold_in_vs_refit_without_held_out"]["within"])
    return {**figures, "seconds": round(time.perf_counter() - started, 1)}


def compare_more(lake: Path, store: Path, refit: str | float | None = None,
                 agentdb_sample: int | None = None) -> list[tuple[str, str]]:
    """The served state rebuilt from the base and the captures against the full build over the same current
    ratings (episodes, collaborative vectors, AgentDB rows, recall@20), each in its own process."""
    found = eq.captures(store)
    label = "served state after the captured runs vs the full build"
    if not found:
        return [(label, f"not compared: no captures in {store} (days applied before captures were kept)")]
    changed = eq.base_changed(lake, store)
    if changed:
        named = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        return [(label, f"not compared: the lake's base changed since the captures ({named}); the captured days no "
                        "longer apply to it")]
    rows = [(label, f"{len(found)} captured runs: {', '.join(p.name for p in found)}")]
    for name, target, extra in (
            ("graph counts and the whole RATED set", compare_graph, ()),
            ("every Milvus entity vs the full build (1e-6)", compare_milvus, ()),
            ("episodes on natural keys", compare_episodes, ()),
            ("collaborative user vectors vs a full fold-in (1e-5)", compare_collaborative, ()),
            ("AgentDB rows on natural keys", compare_agentdb, (True, agentdb_sample)),
            ("served recall@20 vs a full refit (2 %)", compare_recall, (refit,))):
        figures, seconds, mib = measure(target, str(lake), str(store), *extra)
        rows.append((f"{name} ({seconds:.1f} s, peak RSS {mib:,.0f} MiB)", json_line(figures)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / "day_week")
    parser.add_argument("--label", help="also save the figures as benchmarks/results/day_week-<label>.md")
    parser.add_argument("--compare-only", action="store_true",
                        help="the days are applied already (an earlier run): measure and compare only")
    parser.add_argument("--withdraw", action="store_true",
                        help="re-deliver every day of an earlier run empty, which takes the stores back to the base")
    refit = parser.add_mutually_exclusive_group()
    refit.add_argument("--refit-lake", type=Path, help="the lake of a full refit over the same current ratings "
                       "(run separately): its recommendation_quality figure and its vectors' recall")
    refit.add_argument("--refit-recall", type=float, help="the full refit's served recall@20 (recommendation_quality)")
    parser.add_argument("--week-start", help="generate a fresh week from this day (YYYY-MM-DD) against the served "
                        "lake, with new ids above its own and --new-movies a day (when the stores already fold "
                        "days_merge's week in), instead of days_merge's week")
    parser.add_argument("--new-movies", type=int, default=10, help="new movies a day of a generated week brings")
    parser.add_argument("--agentdb-sample", type=int, help="compare the AgentDB rows of this many seeded users "
                        "(default: every user)")
    args = parser.parse_args()
    import polars as pl

    store = args.work_dir / "captures"
    more = {"store": store, "refit": args.refit_recall if args.refit_recall is not None else
            str(args.refit_lake) if args.refit_lake else None, "agentdb_sample": args.agentdb_sample}
    if args.withdraw:
        withdraw(args.work_dir / "lake", args.work_dir)
        return
    rows: list[tuple[str, str]] = [("served graph before", f"{served_graph_rated():,} RATED")]
    if args.compare_only:
        lake = args.work_dir / "lake"
        touched = set()
        for path in sorted((lake / "day_rating_changes").glob("*.parquet")):
            touched |= set(pl.read_parquet(path)["user_id"].to_list())
        finish(rows, lake, None, touched, args.label, **more)
        return
    lake = _lake(args.work_dir)
    shutil.rmtree(store, ignore_errors=True)  # an earlier week's captures: not this lake's runs
    before, _, _ = measure(served_search, str(lake))
    rows.append(("user_vectors before the days", json_line(before)))
    week, corrected_dir = WEEK, BENCH_DIR / "days_merge" / "corrected"
    if args.week_start:  # 100,000 ratings from 20,000 users a day (1,000 new), 200 erasures on the last day
        week = args.work_dir / f"week-{args.week_start}"
        if not week.exists():
            generate_days(week, 7, 100_000, 20_000, 1_000, args.new_movies, args.week_start, seed=27, erase=200)
            movies_before_the_jump(week)
        corrected_dir = args.work_dir / f"corrected-{args.week_start}"
    deliveries = _deliveries(week)
    fixed = _corrected(deliveries[CORRECTED][1], corrected_dir) if args.week_start else \
        corrected_dir / deliveries[CORRECTED][1].name
    steps = [deliveries[i] for i in ORDER] + [(deliveries[CORRECTED][0], fixed, deliveries[CORRECTED][2])]
    touched: set[int] = set()
    shutil.rmtree(args.work_dir / "arrivals", ignore_errors=True)
    for day, ratings, erasures in steps:
        folder = args.work_dir / "arrivals" / day.isoformat()
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        movies = week / f"movies-{day.isoformat()}.csv"  # a re-delivery brings the day's movies again
        for path in (ratings, erasures, movies if movies.exists() else None):
            if path is not None:
                (folder / path.name).write_bytes(path.read_bytes())
        run, _, mib = measure(daily_run, str(folder / (ratings or erasures).name), str(lake))
        if not run["success"]:
            rows.append((f"day {day}", f"FAILED after {run['seconds']:.1f} s: {run['failures']}"))
            break
        eq.capture(lake, day, store)  # before the next run: a re-delivery of the day overwrites its partitions
        touched |= set(pl.read_parquet(lake / "day_rating_changes" / f"{day}.parquet")["user_id"].to_list())
        release = run["release"]
        rows.append((f"day {day}" + (" (corrected re-delivery)" if ratings and "corrected" in str(ratings) else ""),
                     f"{run['seconds']:.1f} s, peak RSS {mib:,.0f} MiB, day_release {run['steps'].get('day_release')}"
                     f" s, touched {release.get('touched_users'):,}, changes {release.get('changes'):,}, checks "
                     f"{run['checks_passed']}/{run['checks']}"))
    finish(rows, lake, before, touched, args.label, **more)


def finish(rows: list[tuple[str, str]], lake: Path, before: dict | None, touched: set[int], label: str | None,
           store: Path | None = None, refit: str | float | None = None, agentdb_sample: int | None = None) -> None:
    after, _, _ = measure(served_search, str(lake))
    rows.append(("user_vectors after the days", json_line(after)))
    if before:
        rows.append(("recall@10 after / before", f"{after['recall_at_10'] / before['recall_at_10']:.4f}"))
    compared, _, _ = measure(compare_full, str(lake), sorted(touched), 5_000, 0, str(store) if store else None)
    rows.append(("served stores vs the full build over the same ratings", json_line(compared)))
    if store is not None:
        rows.extend(compare_more(lake, store, refit, agentdb_sample))
    report(rows)
    if label:
        RESULTS.joinpath(f"day_week-{label}.md").write_text(
            f"# seven days at ml-25m shape: {label} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n"
            + "\n".join(f"- **{k}**: {v}" for k, v in rows) + "\n")


def withdraw(lake: Path, work: Path) -> None:
    """Every published day of `lake` re-delivered with no rows (a correction withdrawing it): the stores go back to
    the base release's rows. Each run is captured after the week's, so the served state stays comparable."""
    from tv5_assets.ingestion import served_days

    # latest first: a later day may rate the movies an earlier one brought, which that one's withdrawal must not drop
    for day in reversed(served_days.published_days(served_days.published_folder(lake))):
        folder = work / "withdrawals" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"ratings-{day.isoformat()}.csv").write_text("userId,movieId,rating,timestamp\n")
        run, _, _ = measure(daily_run, str(folder / f"ratings-{day.isoformat()}.csv"), str(lake))
        print(f"withdrew {day}: {run.get('seconds', 0):.1f} s, success {run['success']}", flush=True)
        if not run["success"]:
            raise SystemExit(run["failures"])
        eq.capture(lake, day, work / "captures")  # a withdrawal is a run too: the served state follows it


def json_line(figures: dict) -> str:
    """Figures on one line: floats to 4 places (small ones in e-notation, so a 1e-5 bound does not print as 0),
    ints with separators, flags as True/False, nested figures in braces."""
    def shown(value: object) -> str:
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            return f"{value:.2e}" if value and abs(value) < 1e-3 else f"{value:,.4f}"
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, dict):
            return "{" + json_line(value) + "}"
        return str(value)

    return ", ".join(f"{k} {shown(v)}" for k, v in figures.items())


if __name__ == "__main__":
    main()
