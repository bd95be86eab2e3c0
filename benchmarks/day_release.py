"""A day published to every served store at ml-25m shape: the `daily` run, `day_release` included.

Generates one day per size (N ratings from N/5 users, N/100 of them new, and 50 new movies; the issue's day is
N = 100,000) against the ml-25m-shaped release, its new users' and movies' ids above everything the served stores
hold, and reads the stores of `benchmarks.whole_graph` (`data/bench/whole_graph/lake`: Milvus Lite's collections
and the AgentDB file the release serves, used in place) with the local Neo4j serving that release's
25M-relationship graph (this script loads and publishes it first when the server holds another graph); with
`TV5_MILVUS_URI` set (as the team stack runs), the collections of the Milvus server whole_graph was built on. Each
day is published, then withdrawn again by a corrected re-delivery of the same day with no rows (a second `daily`
run, measured too), so every size starts from the same stores. Figures are times from the run's start and the run's peak
RSS (the process tree's; Neo4j's own memory apart), with `day_release`'s per-store seconds.

With `--baseline`, today's way of bringing the 100,000-rating day in is measured after the days, back to back:
the day (its ratings and movies) folded into `ratings` and `movies`, then both and everything downstream of them
materialized and released.

    python -m benchmarks.day_release [--sizes 10000 100000] [--repeat 3] [--baseline] [--label L]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import time
from datetime import date
from pathlib import Path

from benchmarks.common import BENCH_DIR, measure, report
from benchmarks.release_disk import run

WHOLE_GRAPH = BENCH_DIR / "whole_graph"
READ_BY_A_DAY = ("ratings", "movies", "genome", "availability", "demographics", "content_vectors",
                 "collaborative_movie_vectors",
                 "hybrid_movie_vectors", "hybrid_user_vectors", "episodes", "policies", "recommendation_quality")
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_ARRIVAL = "2019-12-01"
# the Milvus server the whole_graph benchmark's stores were built on (`TV5_MILVUS_URI`, as the team stack serves
# them; the day's resource is the definitions' own, with its token and database); empty: Milvus Lite in the
# whole_graph lake, the embedded default
SERVER = os.environ.get("TV5_MILVUS_URI", "")
# the run's child processes: AgentDB's Node, and on Lite the Lite server (the Milvus server is no child of the run)
CHILDREN = "Node" if SERVER else "the Milvus Lite server, Node"


def served_graph_rated() -> int:
    import dagster as dg

    from tv5_assets_tests.harness import local_neo4j

    with dg.build_resources({"neo4j": local_neo4j()}) as resources:
        return int(resources.neo4j.read("RETURN COUNT { (:User)-[:RATED]->(:Media) } AS n")[0]["n"])


def load_graph() -> float:
    """Re-import and publish the whole_graph benchmark's graph (the local server is shared with the tests)."""
    work = WHOLE_GRAPH.resolve()
    config = work / "graph-reload.json"
    config.write_text(json.dumps({"ops": {"graph": {"config": {"force_reload": True}}}}))
    seconds, _, code = run(["asset", "materialize", "-m", "tv5_assets.definitions", "--select", "graph,release",
                            "-c", str(config)], _bench_env(), work / "graph-reload.log")
    if code:
        raise SystemExit(f"loading the graph failed: see {work / 'graph-reload.log'}")
    return seconds


def _bench_env() -> dict[str, str]:
    from tv5_assets import local_services

    work = WHOLE_GRAPH.resolve()
    env = {**os.environ, "DAGSTER_HOME": str(work / "dagster_home"), "TV5_DATA_DIR": str(work / "lake"),
           "HF_HUB_OFFLINE": "1"}
    env.update({k: v for k, v in local_services.env_file_values().items() if k not in os.environ})
    return env


def downstream_of_ratings() -> list[str]:
    """Every asset a new rating or movie makes stale today: `ratings`, `movies` and all that follows them (the stores
    and `release` included), the arrival days apart."""
    import dagster as dg

    from tv5_assets.definitions import defs

    selection = dg.AssetSelection.assets("ratings", "movies").downstream() - dg.AssetSelection.groups("days")
    return sorted(k.to_user_string() for k in selection.resolve(defs.resolve_asset_graph()))


def rebuild_downstream(log: Path) -> tuple[float, float, int]:
    """Bringing a day in today: `ratings` and everything downstream of it materialized (multiprocess, as the
    whole_graph benchmark runs); wall seconds, peak RSS of the dagster CLI process (GiB), exit code."""
    return run(["asset", "materialize", "-m", "tv5_assets.definitions", "--select", ",".join(downstream_of_ratings())],
               _bench_env(), log)


def sensor_latency(day_file: str, landing: str) -> dict:
    """One evaluation of the day sensor on a landing folder that just received `day_file`: its own time (the
    daemon evaluates it every `minimum_interval_seconds`, which adds up to that much before it runs)."""
    import dagster as dg

    from tv5_assets.ingestion.day_sensor import arrival_days_sensor

    folder = Path(landing)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(day_file, folder / Path(day_file).name)
    sensor = arrival_days_sensor(str(folder))
    with dg.DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = sensor(dg.build_sensor_context(instance=instance))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "requests": len(result.run_requests or []),
            "interval_s": sensor.minimum_interval_seconds}


def fold_into_bench_lake(day_file: Path) -> int:
    """Publish the day (its ratings and movies) into the whole_graph benchmark's lake, so that its `ratings` and
    `movies` fold it in (as a rebuild that brings the day in would); returns the rows it adds."""
    import polars as pl

    from tv5_assets.ingestion import days, served_days

    lake = (WHOLE_GRAPH / "lake").resolve()
    base = pl.read_parquet(lake / "ratings.parquet")
    known = pl.read_parquet(lake / "movies.parquet")["movie_id"]
    movies_file = day_file.with_name(day_file.name.replace(days.RATINGS_KIND, days.MOVIES_KIND, 1))
    movies = days.read_day_movies(movies_file, known) if movies_file.exists() else days.empty_movies()
    rows = days.read_day_ratings(day_file, pl.concat([known, movies["movie_id"]])).drop("line")
    added = days.fold_published(base, rows, days.empty_ledger()).height - base.height
    served_days.publish_day(served_days.published_folder(lake), days.day_of(day_file)[1], rows, days.empty_ledger(),
                            added, movies)
    return added


def generate_day(size: int, new_movies: int, arrival: str, out: Path) -> Path:
    """The ratings file of a day of `size` ratings from size/5 users (size/100 new) with `new_movies` new movies,
    delivered on `arrival` (see `generate_days`). Written once per size and arrival."""
    folder = out / f"size-{size}-movies-{new_movies}-{arrival}"
    if not (folder / f"ratings-{arrival}.csv").exists():
        generate_days(folder, 1, size, min(max(size // 5, 2_000), 100_000), max(size // 100, 100), new_movies,
                      arrival, seed=_seed(size, arrival))
    return folder / f"ratings-{arrival}.csv"


def _seed(size: int, arrival: str) -> int:
    """The default arrival keeps its seed (its files gave the recorded figures); another arrival draws other users and
    ratings. The same draw on stores that folded the first day in (after `--baseline`) repeats that day's new users'
    ratings exactly: their vectors tie with the folded copies', and each tied user searched back needs a second,
    filtered search (12 s more a collection, measured)."""
    return size if arrival == DEFAULT_ARRIVAL else size + date.fromisoformat(arrival).toordinal()


def generate_days(folder: Path, count: int, size: int, users: int, new_users: int, new_movies: int, start: str,
                  seed: int, erase: int = 0) -> list[Path]:
    """`count` generated days from `start` against the ml-25m-shaped release (`sample.days.write_days`), their new
    users' and movies' ids moved above every id the served lake holds (earlier benchmarks folded generated days in),
    so they are new to the stores; the files written, swapped into `folder` whole."""
    import polars as pl

    from benchmarks.common import ml25m_release
    from tv5_assets.sample.days import write_days

    release, lake = ml25m_release(), (WHOLE_GRAPH / "lake").resolve()
    staged = folder.with_name(folder.name + ".staged")
    shutil.rmtree(staged, ignore_errors=True)
    written = write_days(release, staged, count, size, users, new_users, seed=seed, start=date.fromisoformat(start),
                         erase=erase, new_movies=new_movies)
    release_user = pl.scan_csv(release / "ratings.csv").select(pl.col("userId").max()).collect().item()
    release_movie = pl.scan_csv(release / "movies.csv").select(pl.col("movieId").max()).collect().item()
    user_shift = max(pl.scan_parquet(lake / "ratings.parquet").select(pl.col("user_id").max()).collect().item()
                     - release_user, 0)
    movie_shift = max(pl.scan_parquet(lake / "movies.parquet").select(pl.col("movie_id").max()).collect().item()
                      - release_movie, 0)
    for path in written:
        columns = pl.read_csv(path, n_rows=0).columns
        frame = pl.read_csv(path, infer_schema=False).with_columns(*(
            pl.when(pl.col(c).cast(pl.Int64) > top).then(pl.col(c).cast(pl.Int64) + shift)
            .otherwise(pl.col(c).cast(pl.Int64)).alias(c)
            for c, top, shift in (("userId", release_user, user_shift), ("movieId", release_movie, movie_shift))
            if c in columns))
        frame.write_csv(path, line_terminator="\n", quote_style="necessary")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staged, folder)
    return [folder / p.name for p in written]


def _lake(work: Path) -> Path:
    """The day's lake: the whole_graph benchmark's inputs linked, its Milvus Lite folder and served AgentDB file
    linked (the day writes them in place, as it writes the served stores), a published-days folder of its own."""
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    lake.mkdir(parents=True)
    source = (WHOLE_GRAPH / "lake").resolve()
    for name in READ_BY_A_DAY:
        os.symlink(source / f"{name}.parquet", lake / f"{name}.parquet")
    if not SERVER:  # a Milvus server holds its collections itself
        os.symlink(source / "milvus.db", lake / "milvus.db")
    os.symlink((source / "agentdb.db").resolve(), lake / "agentdb.db")
    return lake


def served_milvus(lake: str | Path):
    """The resource on the served collections: the Milvus server's of `TV5_MILVUS_URI` (the definitions' own, with
    its token and database), or Milvus Lite's file in the day's lake."""
    from tv5_assets.core.settings import Settings
    from tv5_assets.vector_store.resources import MilvusResource, milvus_from_env

    return milvus_from_env(Settings()) if SERVER else MilvusResource(uri=str(Path(lake) / "milvus.db"))


def daily_run(path: str, lake: str) -> dict:
    """The `daily` job, `day_release` included, for the day file at `path`, in-process on the whole_graph
    benchmark's instance (whose latest materializations say how the served stores were built)."""
    import dagster as dg

    from tv5_assets.core.pools import apply_limits
    from tv5_assets.definitions import defs
    from tv5_assets.ingestion import days
    from tv5_assets.vector_store import hosting
    from tv5_assets_tests.harness import lake_resources

    day = days.day_of(Path(path))[1].isoformat()
    hosting.install()  # Milvus Lite beside the run, as the `daily` job's executor does (`materialize` has its own)
    instance = dg.DagsterInstance.from_config(str((WHOLE_GRAPH / "dagster_home").resolve()))
    apply_limits(instance)
    instance.add_dynamic_partitions("arrival_days", [day])
    config = {"ops": {"day_delivery": {"config": {"days_dir": str(Path(path).parent)}}}}
    started, wall = time.perf_counter(), time.time()
    result = dg.materialize([*(defs.assets or []), *(defs.asset_checks or [])],
                            selection=dg.AssetSelection.groups("days"), partition_key=day, instance=instance,
                            resources=lake_resources(Path(lake), milvus=served_milvus(lake)),
                            run_config=config, raise_on_error=False)
    seconds = time.perf_counter() - started
    # published: day_release done (the non-blocking drift check runs after it)
    published = [r.timestamp - wall for r in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
                 if r.step_key == "day_release"]
    failures = [str(e.event_specific_data.error.message)[:600] for e in result.get_step_failure_events()]
    if failures:
        return {"success": False, "seconds": seconds, "failures": failures}
    steps = {e.step_key: round(e.event_specific_data.duration_ms / 1000, 2) for e in result.all_events
             if e.event_type_value == "STEP_SUCCESS"}
    meta = {k: v.value for k, v in result.asset_materializations_for_node("day_release")[0].metadata.items()}
    # the measured peak RSS is this process's; the Milvus Lite server (a child process in a `daily` run) and Node
    # are its children, reaped by now: the largest one's peak, reported beside it
    children_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "published_s": round(published[0], 2) if published else None,
            "success": result.success, "steps": steps, "children_peak_mib": round(children_mib),
            "checks_passed": sum(e.passed for e in result.get_asset_check_evaluations()),
            "checks": len(result.get_asset_check_evaluations()),
            "release": {k: v for k, v in meta.items() if k != "published"}}


def _withdrawal(day_file: Path, folder: Path) -> Path:
    """The same day re-delivered with no rows: its publication withdraws every row the day brought."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    header = day_file.open().readline()
    target = folder / day_file.name
    target.write_text(header)
    return target


def _line(label: str, run: dict, mib: float) -> tuple[str, str]:
    if not run["success"]:
        return label, f"FAILED after {run['seconds']:.1f} s: {run['failures']}"
    release = run["release"]
    return label, (f"{run['seconds']:.2f} s from the run's start (published, day_release done, at "
                   f"{run['published_s']} s), peak RSS {mib:,.0f} MiB (its largest child process "
                   f"{run.get('children_peak_mib', 0):,} MiB: {CHILDREN}), checks "
                   f"{run['checks_passed']}/{run['checks']} passed; day_release {run['steps'].get('day_release')} s "
                   f"(per store {release.get('store_seconds')}); touched users {release.get('touched_users'):,}, "
                   f"changes {release.get('changes'):,}, graph {release.get('graph_rated_set'):,} RATED set / "
                   f"{release.get('graph_rated_removed'):,} removed in {release.get('graph_transactions')} "
                   f"transaction(s), user_vectors {release.get('user_vectors_upserted'):,} upserted / "
                   f"{release.get('user_vectors_untouched'):,} untouched, AgentDB sessions untouched "
                   f"{release.get('agentdb_untouched_sessions')}; phases (ms) {_phases(release)}; steps {run['steps']}")


def _phases(release: dict) -> dict:
    """Where the graph's, AgentDB's and the user collections' time went inside `day_release` (milliseconds)."""
    keys = ("graph_journal_ms", "graph_write_ms", "graph_audit_ms", "graph_commit_ms", "agentdb_journal_ms",
            "agentdb_rows_ms", "agentdb_write_ms", "agentdb_read_back_ms",
            *(f"{alias}_{phase}_ms" for alias in ("user_vectors", "hybrid_user_vectors")
              for phase in ("journal", "write", "read_back", "search_back")))
    return {key: release[key] for key in keys if key in release}


def fold_published_days(source: Path) -> int:
    """Copy published days (another benchmark's `days/published`) into the whole_graph benchmark's lake, whose
    `ratings` then folds them in; returns how many."""
    target = (WHOLE_GRAPH / "lake").resolve() / "days" / "published"
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for day in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")):
        shutil.rmtree(target / day.name, ignore_errors=True)
        shutil.copytree(day, target / day.name)
        copied += 1
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / "day_release")
    parser.add_argument("--label", help="also save the figures as benchmarks/results/day_release-<label>.md")
    parser.add_argument("--baseline", action="store_true",
                        help="after the days, measure today's way: the 100,000-rating day (or --fold-from's days) "
                             "folded into ratings and movies, then both and everything downstream rebuilt and released")
    parser.add_argument("--fold-from", type=Path,
                        help="a `days/published` folder (e.g. day_week's) whose days the baseline folds in")
    parser.add_argument("--arrival", default=DEFAULT_ARRIVAL, help="the generated days' arrival day (YYYY-MM-DD)")
    parser.add_argument("--new-movies", type=int, default=50, help="new movies each generated day brings")
    parser.add_argument("--repeat", type=int, default=1,
                        help="publish and withdraw each size this many times (2 cores share Neo4j, SQLite, Node and "
                             "Milvus: one run's figure moves by several seconds); the median is reported")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    args.work_dir.mkdir(parents=True, exist_ok=True)
    rated = served_graph_rated()
    if rated < 20_000_000:
        seconds = load_graph()
        rows.append(("graph re-imported and published first (not part of a day)", f"{seconds:.1f} s"))
        rated = served_graph_rated()
    rows.append(("served graph before the days", f"{rated:,} RATED"))
    rows.append(("Milvus", f"the server at {SERVER}" if SERVER else "Milvus Lite (embedded), its server in a child "
                 "process of the run"))
    day_files = {size: generate_day(size, args.new_movies, args.arrival, args.work_dir / "days") for size in args.sizes}
    lake = _lake(args.work_dir)
    for size, day_file in day_files.items():
        published = []
        for attempt in range(1, args.repeat + 1):
            run, _, mib = measure(daily_run, str(day_file), str(lake))
            published.append(run.get("published_s"))
            label = f"day of {size:,} ratings and {args.new_movies} new movies published"
            rows.append(_line(label + (f" (run {attempt} of {args.repeat})" if args.repeat > 1 else ""), run, mib))
            back, _, back_mib = measure(daily_run, str(_withdrawal(day_file, args.work_dir / "withdrawn")), str(lake))
            rows.append(_line("  the same day withdrawn (re-delivered empty)", back, back_mib))
        if args.repeat > 1 and None not in published:
            each = ", ".join(f"{p:.2f}" for p in published)
            rows.append((f"day of {size:,} ratings published, {args.repeat} runs",
                         f"median {statistics.median(published):.2f} s (each: {each})"))
    rows.append(("served graph after the days and their withdrawals", f"{served_graph_rated():,} RATED"))
    hundred_k = generate_day(100_000, args.new_movies, args.arrival, args.work_dir / "days")
    latency, _, _ = measure(sensor_latency, str(hundred_k), str(args.work_dir / "landing"))
    rows.append(("the day sensor on the 100,000-rating day file", f"{latency['seconds']:.2f} s an evaluation "
                 f"({latency['requests']} run requested); the daemon evaluates it every {latency['interval_s']} s"))
    if args.baseline:  # back to back with the days above, on this host
        if args.fold_from:
            what = f"{fold_published_days(args.fold_from)} published days of {args.fold_from} folded into ratings"
        else:
            what = (f"the 100,000-rating day folded into ratings ({fold_into_bench_lake(hundred_k):+,} current rows) "
                    f"and movies (+{args.new_movies})")
        seconds, peak, code = rebuild_downstream(args.work_dir / "downstream.log")
        if code:
            raise SystemExit(f"the downstream rebuild failed: see {args.work_dir / 'downstream.log'}")
        rows.append((f"today: {what}, then ratings, movies and everything downstream ({len(downstream_of_ratings())} "
                     "assets, their checks, the stores and release)", f"{seconds:.1f} s, peak RSS {peak:.2f} GiB"))
    report(rows)
    if args.label:
        RESULTS.joinpath(f"day_release-{args.label}.md").write_text(
            f"# day_release at ml-25m shape: {args.label} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n"
            + "\n".join(f"- **{k}**: {v}" for k, v in rows) + "\n")


if __name__ == "__main__":
    main()
