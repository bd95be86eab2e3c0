"""Benchmark: a day's delta against the served state at ml-25m shape, as the `daily` job computes it.

Run: `python -m benchmarks.day_delta` (after `python -m benchmarks.days_merge`, whose cached day files it reads).
Issue 27's ingestion half of a day, before the stores: (1) seven days applied one by one against the published
days (one out of order, day 2 re-delivered corrected, one with 200 erasures), each read strictly, its delta
computed from the scope's rows only and published; the served ratings overlaid with each delta equal the full
rebuild (rows and row-hash sum). (2) the real `daily` job, in-process on a fresh instance over the lake that
`python -m benchmarks.whole_graph` left (its ml-25m-shaped `movies`, `ratings`, `content_vectors`,
`collaborative_movie_vectors`, `demographics`), for one day of 10K, 100K and 1M ratings: the run's wall time from
its start and each step's, against the full rebuild of the current ratings measured in the same invocation. Each
phase runs in a spawned process (its own peak RSS).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import polars as pl

from benchmarks.common import BENCH_DIR, measure, ml25m_tables, report
from benchmarks.days_merge import CORRECTED, ORDER, _corrected, _deliveries, _digest, full_rebuild
from tv5_assets.ingestion import day_delta, days, served_days

TABLES = BENCH_DIR / "tables"
WHOLE_GRAPH_LAKE = BENCH_DIR / "whole_graph" / "lake"
READ_BY_A_DAY = ("movies", "ratings", "content_vectors", "collaborative_movie_vectors", "demographics")


def _read(ratings: Path | None, erasures: Path | None, movie_ids: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (days.read_day_ratings(ratings, movie_ids) if ratings else pl.DataFrame(schema=days.DAY_RATINGS_SCHEMA),
            days.read_erasures(erasures) if erasures else days.empty_ledger())


def seven_days(folder: str, corrected: str, published: str) -> dict:
    """The deliveries one by one against the published days; the served ratings overlaid with each delta."""
    shutil.rmtree(published, ignore_errors=True)
    movie_ids = ml25m_tables()["movies"]["movie_id"]
    base = days.base_log(pl.scan_parquet(TABLES / "ratings.parquet"))
    current = days.current_ratings(base, days.empty_ledger().lazy()).collect()  # bookkeeping, not timed
    deliveries = _deliveries(Path(folder))
    steps = [deliveries[i] for i in ORDER]
    day, _, erasures = deliveries[CORRECTED]
    steps.append((day, Path(corrected), erasures))
    applied = []
    for day, ratings_path, erasures_path in steps:
        started = time.perf_counter()
        ratings, erasures = _read(ratings_path, erasures_path, movie_ids)
        read_s = time.perf_counter() - started
        log, ledger = served_days.read_published(Path(published))
        delta = day_delta.day_delta(base, log, ledger, day, ratings, erasures)
        delta_s = time.perf_counter() - started - read_s
        gained = delta.counts["rows_after"] - delta.counts["rows_before"]
        served_days.publish_day(Path(published), day, ratings.drop("line"), erasures, gained)
        total_s = time.perf_counter() - started
        current = pl.concat([current.join(delta.users, on="user_id", how="anti"), delta.after]
                            ).sort(days.CURRENT_ORDER)
        applied.append({"day": day.isoformat(), "read_s": read_s, "delta_s": delta_s, "total_s": total_s,
                        "counts": delta.counts})
    return {"applied": applied, "digest": _digest(current)}


def daily_run(path: str, lake: str) -> dict:
    """The `daily` job for the day file at `path`, in-process, on a fresh ephemeral instance."""
    import dagster as dg

    from tv5_assets.definitions import defs
    from tv5_assets_tests.harness import lake_resources

    day = days.day_of(Path(path))[1].isoformat()
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("arrival_days", [day])
    config = {"ops": {"day_delivery": {"config": {"days_dir": str(Path(path).parent)}}}}
    started = time.perf_counter()
    result = dg.materialize([*(defs.assets or []), *(defs.asset_checks or [])],
                            selection=dg.AssetSelection.groups("days"), partition_key=day, instance=instance,
                            resources=lake_resources(Path(lake)), run_config=config)
    seconds = time.perf_counter() - started
    meta = result.asset_materializations_for_node("day_changes")[0].metadata
    steps = {e.step_key: round(e.event_specific_data.duration_ms / 1000, 2) for e in result.all_events
             if e.event_type_value == "STEP_SUCCESS"}
    people = result.asset_materializations_for_node("day_demographics")[0].metadata["new_users"].value
    return {"seconds": seconds, "success": result.success, "steps": steps, "new_users": people,
            "checks_passed": sum(e.passed for e in result.get_asset_check_evaluations()),
            "checks": len(result.get_asset_check_evaluations()),
            **{k: meta[k].value for k in ("scope_users", "touched_users", "rows_before", "rows_after",
                                          "untouched_rows")}}


def _lake(work: Path) -> Path:
    """A lake holding the whole_graph benchmark's assets that a day reads (linked, not copied)."""
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    lake.mkdir(parents=True)
    for name in READ_BY_A_DAY:
        os.symlink((WHOLE_GRAPH_LAKE / f"{name}.parquet").resolve(), lake / f"{name}.parquet")
    return lake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / "days_merge")
    args = parser.parse_args()
    week = args.work_dir / "week"
    if not week.exists():
        raise SystemExit(f"{week} is missing: run `python -m benchmarks.days_merge` first (it writes the days)")
    missing = [n for n in READ_BY_A_DAY if not (WHOLE_GRAPH_LAKE / f"{n}.parquet").exists()]
    if missing:
        raise SystemExit(f"{WHOLE_GRAPH_LAKE} lacks {missing}: run `python -m benchmarks.whole_graph` first")
    ml25m_tables()
    corrected = _corrected(_deliveries(week)[CORRECTED][1], args.work_dir / "corrected")
    rows = []
    full, _, full_mib = measure(full_rebuild, str(week), str(corrected))
    rows.append(("full rebuild: base + 7 days, current ratings", f"{full['seconds']:.2f} s, "
                 f"peak RSS {full_mib:,.0f} MiB"))
    step, step_s, step_mib = measure(seven_days, str(week), str(corrected), str(args.work_dir / "published"))
    for entry in step["applied"]:
        c = entry["counts"]
        rows.append((f"  day {entry['day']}", f"{entry['total_s']:.2f} s (read {entry['read_s']:.2f}, delta "
                     f"{entry['delta_s']:.2f}): {c['scope_users']:,} users in scope, {c['rows_after']:,} rows "
                     f"written; {c['inserted']:,} inserted, {c['replaced']:,} replaced, {c['superseded']:,} "
                     f"superseded, {c['erased']:,} erased, {c['withdrawn']:,} withdrawn"))
    rows.append(("seven days phase", f"{step_s:.1f} s incl. the bookkeeping overlay, peak RSS {step_mib:,.0f} MiB"))
    same = step["digest"] == full["digest"]
    rows.append(("overlaid deltas == full rebuild", f"{same}: rows and row-hash sum {step['digest']} vs "
                 f"{full['digest']}"))
    mean = sum(e["total_s"] for e in step["applied"]) / len(step["applied"])
    rows.append(("a day (read + delta + publish) vs the full rebuild", f"{mean:.2f} s vs {full['seconds']:.2f} s: "
                 f"{full['seconds'] / mean:.1f}x"))
    for size in (10_000, 100_000, 1_000_000):
        folder = args.work_dir / f"size-{size}"
        [(_, path, _)] = _deliveries(folder)
        run, _, run_mib = measure(daily_run, str(path), str(_lake(args.work_dir)))
        rows.append((f"`daily` run, one day of {size:,} ratings",
                     f"{run['seconds']:.2f} s from the run's start ({run['success']}, checks {run['checks_passed']}"
                     f"/{run['checks']} passed), peak RSS {run_mib:,.0f} MiB; {run['scope_users']:,} users in "
                     f"scope, {run['rows_after']:,} rows written, {run['untouched_rows']:,} untouched rows "
                     f"counted, {run['new_users']:,} new people; steps {run['steps']}"))
    report(rows)
    if not same:
        raise SystemExit("the overlaid deltas differ from the full rebuild")


if __name__ == "__main__":
    main()
