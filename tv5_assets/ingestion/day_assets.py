"""Daily deliveries as partitions of arrival day (thin Dagster wiring around `days` and `day_delta`).

One dynamic partition per arrival day, added by the day sensor when a day file lands. The base release stays
the unpartitioned `ratings` asset (the history as one base partition); a day adds only its own rows
(`day_ratings`, `day_erasures`) and, against what the stores serve, the current ratings of the users it can
change (`day_user_ratings`) and the pairs whose current rating changed (`day_rating_changes`). Nothing of any
other user is read back or rewritten: their count is reported instead.
"""


import time
import warnings
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.core.checking import latest_metadata
from tv5_assets.core.lake import DataLake
from tv5_assets.core.metadata import markdown_table
from tv5_assets.core.pools import DAYS_POOL
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.core.versioning import versioned_asset, versioned_multi_asset
from tv5_assets.ingestion import day_catalogue, day_delta, days, served_days
from tv5_assets.ingestion.assets import FOLDED_DAYS

DAY_GROUP = "days"
OWNERS = ["team:data-platform"]
ARRIVAL_DAYS = dg.DynamicPartitionsDefinition(name="arrival_days")
LANDING_DAYS = ("landing", "days")  # under the data lake, unless a run's config names another folder


def day_asset(**asset_kwargs: object):
    """`versioned_asset` for a stage's asset of an arrival day: partitioned by `arrival_days`, in the days group
    (which the `daily` job runs and `whole_graph` leaves out)."""
    return versioned_asset(group_name=DAY_GROUP, owners=OWNERS, partitions_def=ARRIVAL_DAYS, **asset_kwargs)


class DayConfig(dg.Config):
    days_dir: str = Field(default="", description="folder of the day files; empty: <data lake>/landing/days")


def days_folder(config: DayConfig, lake: DataLake) -> Path:
    return Path(config.days_dir) if config.days_dir else lake.path(*LANDING_DAYS)


def _day(context: dg.AssetExecutionContext) -> date:
    try:
        day = date.fromisoformat(context.partition_key)
    except ValueError as error:
        raise ValueError(f"arrival day partition {context.partition_key!r} is not a date YYYY-MM-DD") from error
    if day <= days.BASE_ARRIVAL:
        raise ValueError(f"arrival day {day} is not after the base release's {days.BASE_ARRIVAL}")
    return day


def _output(name: str, frame: pl.DataFrame, metadata: dict[str, object]) -> dg.Output[pl.DataFrame]:
    return dg.Output(frame, output_name=name, data_version=dg.DataVersion(frame_fingerprint(frame)),
                     metadata={"rows": frame.height, **metadata})


@versioned_multi_asset(
    outs={
        "day_ratings": {"description": "The ratings that arrived on the partition's day, read strictly from "
                        "ratings-YYYY-MM-DD.csv: user_id, movie_id, rating, epoch, arrival, line (of the file). A pair "
                        "repeated in the file keeps its latest timestamp, then its later line. One bad row refuses "
                        "the whole day naming the file, the line and the rule, and nothing is stored. A day with "
                        "only erasures has none.", "group_name": DAY_GROUP, "kinds": {"polars", "csv"},
                        "owners": OWNERS},
        "day_erasures": {"description": "The users erased as of the partition's day (user_id, arrival), read "
                         "strictly from erasures-YYYY-MM-DD.csv; none when the day has no such file.",
                         "group_name": DAY_GROUP, "kinds": {"polars", "csv"}, "owners": OWNERS},
        "day_movies": {"description": "The movies the partition's day brings in, read strictly from "
                       "movies-YYYY-MM-DD.csv in `movies`' columns (no links: imdb_id and tmdb_id null). A movie the "
                       "stores already serve (from the release or another day) is refused; the day's ratings and "
                       "later days' may rate these movies. A corrected re-delivery may drop a movie it brought only "
                       "while no other published day rates it.", "group_name": DAY_GROUP,
                       "kinds": {"polars", "csv"}, "owners": OWNERS},
    },
    partitions_def=ARRIVAL_DAYS,
    can_subset=False,
)
def day_delivery(context: dg.AssetExecutionContext, config: DayConfig, lake: DataLake, movies: pl.LazyFrame):
    """Every file of a day is read before any is stored, so a day loads whole or not at all."""
    started, day = time.perf_counter(), _day(context)
    folder = days_folder(config, lake)
    paths = {kind: folder / f"{kind}-{day.isoformat()}.csv" for kind in days.KINDS}
    if not any(path.exists() for path in paths.values()):
        raise FileNotFoundError(f"no day file for {day} in {folder}: expected any of "
                                f"{', '.join(p.name for p in paths.values())}")
    published = served_days.published_folder(lake.base_dir)
    base_ids = movies.select("movie_id").collect()["movie_id"]
    others = day_catalogue.published_elsewhere(lake.base_dir, day)
    new_movies = days.read_day_movies(paths[days.MOVIES_KIND], pl.concat([base_ids, others["movie_id"]])) \
        if paths[days.MOVIES_KIND].exists() else days.empty_movies()
    day_catalogue.refuse_withdrawn(paths[days.MOVIES_KIND], new_movies, day_catalogue.published_on(lake.base_dir, day),
                                   served_days.read_published(published, [d for d in served_days.published_days(
                                       published) if d != day])[0])
    known = pl.concat([base_ids, others["movie_id"], new_movies["movie_id"]])
    parsed = days.parse_day_ratings(paths[days.RATINGS_KIND], known) if paths[days.RATINGS_KIND].exists() else None
    ratings = parsed.kept if parsed else pl.DataFrame(schema=days.DAY_RATINGS_SCHEMA)
    erasures = days.read_erasures(paths[days.ERASURES_KIND]) if paths[days.ERASURES_KIND].exists() \
        else days.empty_ledger()
    files = {kind: days.DayFile(path, kind, day, days.checksum(path)).run_key
             for kind, path in paths.items() if path.exists()}
    context.log.info(f"day {day}: {ratings.height} ratings, {erasures.height} erasures, {new_movies.height} movies "
                     f"from {sorted(files.values())}")
    yield _output("day_ratings", ratings, {
        "file": files.get(days.RATINGS_KIND, "none"),
        "repeats_dropped": parsed.rejected.height if parsed else 0,
        "distinct_users": ratings["user_id"].n_unique(),
        "distinct_movies": ratings["movie_id"].n_unique(),
        "preview": dg.MetadataValue.md(markdown_table(ratings)),
    })
    yield _output("day_erasures", erasures, {"file": files.get(days.ERASURES_KIND, "none")})
    yield _output("day_movies", new_movies, {
        "file": files.get(days.MOVIES_KIND, "none"),
        "rated_today": new_movies.join(ratings.select("movie_id").unique(), on="movie_id", how="semi").height,
        "preview": dg.MetadataValue.md(markdown_table(new_movies.drop("genres"))),
        "wall_time_s": round(time.perf_counter() - started, 3),
    })


@versioned_multi_asset(
    outs={
        "day_user_ratings": {
            "description": "The current ratings, once the partition's day is applied to what the stores serve (the "
            "base release and each published day), of every user the day can change, and only theirs: user_id, "
            "movie_id, rating, epoch, arrival, sorted by user_id, epoch, movie_id as `ratings` is. Erasures cover "
            "a user's rows that arrived on or before them; per (user, movie) the latest rating wins. Downstream "
            "days recompute these users' vectors, episodes and graph edges from it.",
            "group_name": DAY_GROUP, "kinds": {"polars", "parquet"}, "owners": OWNERS},
        "day_rating_changes": {
            "description": "Each (user, movie) whose current rating the day changes against what the stores serve: "
            "change (inserted, replaced, erased, withdrawn), old_rating, old_epoch, rating, epoch. Empty for a "
            "day already published as it is.",
            "group_name": DAY_GROUP, "kinds": {"polars", "parquet"}, "owners": OWNERS},
    },
    partitions_def=ARRIVAL_DAYS,
    can_subset=False,
    pool=DAYS_POOL,
)
def day_changes(context: dg.AssetExecutionContext, lake: DataLake, ratings: pl.LazyFrame,
                day_ratings: pl.DataFrame, day_erasures: pl.DataFrame):
    """The delta against the served state: only the scope's rows are read from the base (`ratings`)."""
    started, day = time.perf_counter(), _day(context)
    published = served_days.published_folder(lake.base_dir)
    base_meta = latest_metadata(context, "ratings") or {}
    folded = {date.fromisoformat(d) for d in base_meta.get(FOLDED_DAYS) or []}
    if day in folded:
        raise ValueError(f"arrival day {day} is folded into `ratings` by the last refit: a correction of it cannot "
                         "be applied as a day; deliver the corrected ratings on a new arrival day")
    on_top = [d for d in served_days.published_days(published) if d not in folded]  # the base holds the others
    published_log, published_ledger = served_days.read_published(published, on_top)
    delta = day_delta.day_delta(days.base_log(ratings), published_log, published_ledger, day,
                                day_ratings, day_erasures)
    context.log.info(f"day {day}: {delta.counts}")
    counts = {name: delta.counts[name] for name in day_delta.DELTA_COUNTS}
    yield _output("day_user_ratings", delta.after, {
        **counts,
        "published_days": len(on_top),
        "folded_days": len(folded),
        # the served rows of every other user: counted from the base's row count and the days' nets, not read
        "untouched_rows": ratings.select(pl.len()).collect().item() + served_days.net_rows(published, days=on_top)
        - delta.counts["rows_before"],
        "wall_time_s": round(time.perf_counter() - started, 3),
    })
    yield _output("day_rating_changes", delta.changes, {
        "changes": dg.MetadataValue.json({c: counts[c] for c in ("inserted", "replaced", "erased", "withdrawn")}),
        "touched_movies": delta.touched_movies.len(),
        "preview": dg.MetadataValue.md(markdown_table(delta.changes)),
    })


PUBLISHED_DAYS, PUBLISHED_MOVIES = "published_days", "published_movies"
with warnings.catch_warnings():  # a beta API, chosen: how a source outside Dagster's lineage says it changed
    warnings.simplefilter("ignore", dg.BetaWarning)
    _observe = dg.multi_observable_source_asset(specs=[
        dg.AssetSpec(PUBLISHED_DAYS, group_name=DAY_GROUP, owners=OWNERS, kinds={"parquet"},
                     description="The arrival days published to the served stores (`<lake>/days/published/`), "
                     "observed as a hash of their contents. `ratings` folds them in, so it shows unsynced after a "
                     "day is published (each `day_release` records a new observation): the global models refit from "
                     "it on their own clock."),
        dg.AssetSpec(PUBLISHED_MOVIES, group_name=DAY_GROUP, owners=OWNERS, kinds={"parquet"},
                     description="The movies the published arrival days brought in, observed as a hash of their "
                     "rows: `movies` folds them in, so it shows unsynced only after a day that brings, changes or "
                     "withdraws a movie."),
    ])


@_observe
def published_days(lake: DataLake):
    folder = served_days.published_folder(lake.base_dir)
    yield dg.ObserveResult(asset_key=PUBLISHED_DAYS, data_version=dg.DataVersion(served_days.fingerprint(folder)))
    yield dg.ObserveResult(asset_key=PUBLISHED_MOVIES,
                           data_version=dg.DataVersion(served_days.movies_fingerprint(folder)))


assets = [day_delivery, day_changes, published_days]
