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

    python -m benchmarks.day_week [--label session15]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import BENCH_DIR, measure, report
from benchmarks.day_release import _lake, daily_run, served_graph_rated
from benchmarks.days_merge import CORRECTED, ORDER, _deliveries

WEEK = BENCH_DIR / "days_merge" / "week"
RESULTS = Path(__file__).resolve().parent / "results"


def served_search(lake: str, queries: int = 500, timed: int = 200, seed: int = 0) -> dict:
    """Recall@10 of the served user_vectors against exact search over its own vectors, and single-query latency."""
    import polars as pl

    from tv5_assets.vector_store.resources import MilvusResource
    from tv5_assets.vector_store.schema import USERS

    milvus = MilvusResource(uri=str(Path(lake) / "milvus.db"))
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


def compare_full(lake: str, touched: list[int], graph_sample: int = 5_000, seed: int = 0) -> dict:
    """The full build's content vectors and current ratings, against the served stores: every touched user's
    served vector, and the RATED rows of a sample of them (reading all of theirs would move ~20M rows over Bolt)."""
    import dagster as dg
    import polars as pl

    from tv5_assets.embeddings.user_vectors import user_vectors
    from tv5_assets.ingestion import days, served_days
    from tv5_assets.vector_store.resources import MilvusResource
    from tv5_assets.vector_store.schema import USERS
    from tv5_assets_tests.harness import local_neo4j

    base = Path(lake)
    started = time.perf_counter()
    folder = served_days.published_folder(base)
    full = days.fold_published(pl.read_parquet(base / "ratings.parquet"), *served_days.read_published(folder))
    content = pl.read_parquet(base / "content_vectors.parquet").select("movie_id", "vector")
    as_ratings = full.select("user_id", "movie_id", "rating", pl.col("timestamp").dt.epoch("s").alias("timestamp"))
    vectors = user_vectors(as_ratings, content).frame
    full_s = time.perf_counter() - started
    ids = pl.Series(touched, dtype=pl.Int64)
    milvus = MilvusResource(uri=str(base / "milvus.db"))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / "day_week")
    parser.add_argument("--label", help="also save the figures as benchmarks/results/day_week-<label>.md")
    parser.add_argument("--compare-only", action="store_true",
                        help="the days are applied already (an earlier run): measure and compare only")
    parser.add_argument("--withdraw", action="store_true",
                        help="re-deliver every day of an earlier run empty, which takes the stores back to the base")
    args = parser.parse_args()
    import polars as pl

    if args.withdraw:
        withdraw(args.work_dir / "lake", args.work_dir)
        return
    rows: list[tuple[str, str]] = [("served graph before", f"{served_graph_rated():,} RATED")]
    if args.compare_only:
        lake = args.work_dir / "lake"
        touched = set()
        for path in sorted((lake / "day_rating_changes").glob("*.parquet")):
            touched |= set(pl.read_parquet(path)["user_id"].to_list())
        finish(rows, lake, None, touched, args.label)
        return
    lake = _lake(args.work_dir)
    before, _, _ = measure(served_search, str(lake))
    rows.append(("user_vectors before the days", json_line(before)))
    deliveries = _deliveries(WEEK)
    steps = [deliveries[i] for i in ORDER] + [(deliveries[CORRECTED][0], BENCH_DIR / "days_merge" / "corrected"
                                               / deliveries[CORRECTED][1].name, deliveries[CORRECTED][2])]
    touched: set[int] = set()
    for day, ratings, erasures in steps:
        folder = args.work_dir / "arrivals" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for path in (ratings, erasures):
            if path is not None:
                (folder / path.name).write_bytes(path.read_bytes())
        run, _, mib = measure(daily_run, str(folder / (ratings or erasures).name), str(lake))
        if not run["success"]:
            rows.append((f"day {day}", f"FAILED after {run['seconds']:.1f} s: {run['failures']}"))
            break
        touched |= set(pl.read_parquet(lake / "day_rating_changes" / f"{day}.parquet")["user_id"].to_list())
        release = run["release"]
        rows.append((f"day {day}" + (" (corrected re-delivery)" if ratings and "corrected" in str(ratings) else ""),
                     f"{run['seconds']:.1f} s, peak RSS {mib:,.0f} MiB, day_release {run['steps'].get('day_release')}"
                     f" s, touched {release.get('touched_users'):,}, changes {release.get('changes'):,}, checks "
                     f"{run['checks_passed']}/{run['checks']}"))
    finish(rows, lake, before, touched, args.label)


def finish(rows: list[tuple[str, str]], lake: Path, before: dict | None, touched: set[int], label: str | None) -> None:
    after, _, _ = measure(served_search, str(lake))
    rows.append(("user_vectors after the days", json_line(after)))
    if before:
        rows.append(("recall@10 after / before", f"{after['recall_at_10'] / before['recall_at_10']:.4f}"))
    compared, _, _ = measure(compare_full, str(lake), sorted(touched))
    rows.append(("served stores vs the full build over the same ratings", json_line(compared)))
    report(rows)
    if label:
        RESULTS.joinpath(f"day_week-{label}.md").write_text(
            f"# seven days at ml-25m shape: {label} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n"
            + "\n".join(f"- **{k}**: {v}" for k, v in rows) + "\n")


def withdraw(lake: Path, work: Path) -> None:
    """Every published day of `lake` re-delivered with no rows (a correction withdrawing it): the stores go back to
    the base release's rows."""
    from tv5_assets.ingestion import served_days

    for day in served_days.published_days(served_days.published_folder(lake)):
        folder = work / "withdrawals" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"ratings-{day.isoformat()}.csv").write_text("userId,movieId,rating,timestamp\n")
        run, _, _ = measure(daily_run, str(folder / f"ratings-{day.isoformat()}.csv"), str(lake))
        print(f"withdrew {day}: {run.get('seconds', 0):.1f} s, success {run['success']}", flush=True)
        if not run["success"]:
            raise SystemExit(run["failures"])


def json_line(figures: dict) -> str:
    return ", ".join(f"{k} {v:,.4f}" if isinstance(v, float) else f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                     for k, v in figures.items())


if __name__ == "__main__":
    main()
