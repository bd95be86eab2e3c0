"""Benchmark: a day's per-user results against the full build over the same ratings, at ml-25m shape.

Run: `python -m benchmarks.day_equality` (after `benchmarks.days_merge` and `benchmarks.whole_graph`, whose day
files and lake it reads). The `daily` job runs for one generated day of 100,000 ratings from 20,000 users (1,000
new). Then, in another process, the full build's own functions run over the whole current ratings (the base
release plus that day, 25M rows): content user vectors, the collaborative fold-in against the same movie factors,
the hybrid user vectors and the episodes. Every touched user's day result is compared with the full one: the
largest absolute vector difference per kind, and the episodes on natural keys. The full computations' seconds
are printed beside the day steps', as what refreshing those users costs either way.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.common import BENCH_DIR, measure, report
from benchmarks.day_delta import READ_BY_A_DAY, WHOLE_GRAPH_LAKE, _lake, daily_run
from benchmarks.days_merge import _deliveries


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
