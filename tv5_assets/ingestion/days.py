"""Daily rating deliveries ("day files") and how they merge into the current ratings (no Dagster here).

Day files land in `<landing>/days/`:

- `ratings-YYYY-MM-DD.csv`: MovieLens ratings rows (header exactly `userId,movieId,rating,timestamp`);
  the date in the name is the ARRIVAL day, each rating carries its own timestamp.
- `erasures-YYYY-MM-DD.csv`: header exactly `userId`; the users to erase (right to erasure) as of that day.
- `movies-YYYY-MM-DD.csv`: MovieLens movies rows (header exactly `movieId,title,genres`), the movies the day
  brings in; its ratings (and later days') may rate them.

Unlike a release, a day file is strict: one bad row and the whole day is refused, naming the file, the
first bad line and the rule, so a delivery is never half loaded.

Three frames describe the state, all with `user_id` Int32 and `arrival` Date:

- the RATING LOG: every delivered rating row (user_id, movie_id, rating, epoch, arrival). The base release
  is in it with arrival `BASE_ARRIVAL` (1970-01-01, before any real delivery, so any erasure covers it).
  (user_id, movie_id, arrival) is a key: one delivery per day, a re-delivery replaces the day.
- the ERASURE LEDGER: (user_id, arrival), one row per erasure delivered.
- the CURRENT RATINGS, defined by `current_ratings`: log rows not covered by an erasure of the same or a
  later arrival, then per (user, movie) the row with the greatest (epoch, arrival), sorted by
  (user_id, epoch, movie_id) as the `ratings` asset is.

`apply_delivery` reaches the same current ratings incrementally, recomputing only the pairs and users a
delivery changes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from tv5_assets.ingestion.csv_reader import LINE, CsvFile, raw_lines, read_fields, read_header
from tv5_assets.ingestion.errors import MovieLensInputError
from tv5_assets.ingestion.movielens import (
    MOVIES,
    NO_GENRES,
    RATINGS,
    RATINGS_DTYPES,
    _in,
    _positive_id,
    _timestamp_rules,
    _utc,
    time_of_day,
)
from tv5_assets.ingestion.parsing import (
    RULE,
    Parsed,
    label_duplicates,
    quarantine,
    split_by_rules,
    split_duplicates,
    structural_rules,
)
from tv5_assets.ingestion.titles import display_title, year_from_title

DAYS_FOLDER = "days"
RATINGS_KIND = "ratings"
ERASURES_KIND = "erasures"
MOVIES_KIND = "movies"
KINDS = (RATINGS_KIND, ERASURES_KIND, MOVIES_KIND)
ERASURES = CsvFile("erasures.csv", ("userId",))
# The arrival of the base release's rows in the rating log: earlier than any real delivery (MovieLens
# starts in 1995), so an erasure of any day covers the base release and no day file can replace it.
BASE_ARRIVAL = date(1970, 1, 1)
_DAY_FILE = re.compile(r"(ratings|erasures|movies)-(\d{4})-(\d{2})-(\d{2})\.csv")
_BOM = "\ufeff"

USER, MOVIE, RATING, EPOCH, ARRIVAL = "user_id", "movie_id", "rating", "epoch", "arrival"
PAIR = [USER, MOVIE]
LOG_SCHEMA: dict[str, pl.DataType] = {
    USER: pl.Int32(), MOVIE: pl.Int32(), RATING: pl.Float32(), EPOCH: pl.Int64(), ARRIVAL: pl.Date(),
}
LEDGER_SCHEMA: dict[str, pl.DataType] = {USER: pl.Int32(), ARRIVAL: pl.Date()}
DAY_RATINGS_SCHEMA: dict[str, pl.DataType] = LOG_SCHEMA | {LINE: pl.UInt32()}
# the `movies` asset's columns (a day file has no links: imdb_id and tmdb_id are null)
MOVIES_SCHEMA: dict[str, pl.DataType] = {
    MOVIE: pl.Int32(), "title": pl.String(), "display_title": pl.String(), "year": pl.Int32(),
    "genres": pl.List(pl.String()), "imdb_id": pl.String(), "tmdb_id": pl.Int32(),
}
CURRENT_ORDER = [USER, EPOCH, MOVIE]  # the `ratings` asset's order, which the episodes rely on
COUNTS = ("inserted", "replaced", "superseded", "erased_on_arrival", "erased", "withdrawn", "untouched")
_ERASED_THROUGH = "__erased_through"


# --------------------------------------------------------------------------- the landing folder
@dataclass(frozen=True)
class DayFile:
    """One recognised day file; its checksum makes a corrected re-delivery a new run, a repeat not."""

    path: Path
    kind: str  # one of KINDS
    day: date
    checksum: str  # sha256 hex of the file's bytes

    @property
    def run_key(self) -> str:
        return f"{self.path.name}:{self.checksum[:16]}"


def day_of(path: Path) -> tuple[str, date] | None:
    """(kind, arrival day) from a day file's name; None when the name is not one (or the date is not real)."""
    match = _DAY_FILE.fullmatch(Path(path).name)
    if match is None:
        return None
    try:
        day = date(*map(int, match.groups()[1:]))
    except ValueError:
        return None
    return (match.group(1), day) if day > BASE_ARRIVAL else None


def checksum(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def scan_days(folder: Path) -> tuple[list[DayFile], list[Path]]:
    """The day files in `folder` sorted by (day, kind), and every other entry (for the caller to report).

    A missing folder is no deliveries yet, not an error.
    """
    if not folder.is_dir():
        return [], []
    recognised, unrecognised = [], []
    for entry in sorted(folder.iterdir()):
        found = day_of(entry) if entry.is_file() else None
        if found is None:
            unrecognised.append(entry)
        else:
            recognised.append(DayFile(entry, found[0], found[1], checksum(entry)))
    return sorted(recognised, key=lambda f: (f.day, f.kind)), unrecognised


# --------------------------------------------------------------------------- strict reading
def _arrival(path: Path, kind: str) -> date:
    found = day_of(path)
    if found is None or found[0] != kind:
        raise MovieLensInputError(path, "file_name",
                                  f"a {kind} day file is named {kind}-YYYY-MM-DD.csv (a real date after 1970)")
    return found[1]


def _require_exact_header(path: Path, file: CsvFile) -> None:
    """read_header's rules first (present, non-empty, commas, columns), then the exact text: a day file
    comes from our own pipeline, so any other header means the wrong file or a changed format."""
    read_header(path, file)
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace").removeprefix(_BOM).rstrip("\r\n")
    expected = ",".join(file.columns)
    if first != expected:
        raise MovieLensInputError(path, "header", f"the header is {first!r}; a day file's header is exactly "
                                                  f"{expected!r}", line=1)


def _short_rows(path: Path, raw: pl.DataFrame, file: CsvFile) -> pl.Series:
    """Lines with fewer fields than the header (read_fields fills them with nulls, which alone would
    read as a bad value rather than a missing field)."""
    columns = list(file.columns)
    partial = raw.filter(pl.any_horizontal([pl.col(c).is_null() for c in columns])
                         & ~pl.all_horizontal([pl.col(c).is_null() for c in columns]))
    if partial.is_empty():
        return pl.Series(LINE, [], dtype=pl.Int64)
    fields = pl.col("record").str.count_matches(",") + 1
    return raw_lines(path, partial[LINE]).filter(fields < len(columns))[LINE]


def _refuse_bad_rows(path: Path, flagged: pl.DataFrame, rows: int) -> None:
    """A day loads whole or not at all: name the first bad line and its rule, and count every rule."""
    if flagged.is_empty():
        return
    counts = flagged.group_by(RULE).len().sort(RULE)
    by_rule = dict(zip(counts[RULE].to_list(), counts["len"].to_list()))
    first = flagged.sort(LINE).row(0, named=True)
    record = raw_lines(path, pl.Series([first[LINE]]))["record"].to_list()
    raise MovieLensInputError(
        path, first[RULE],
        f"{flagged.height} of {rows} rows break a rule {by_rule}; first bad record: "
        f"{(record or [''])[0]!r}; a day file loads whole or not at all, so nothing was loaded",
        line=first[LINE],
    )


def _checked_fields(path: Path, file: CsvFile, dtypes: dict[str, pl.DataType],
                    rules: list[tuple[str, pl.Expr]]) -> pl.DataFrame:
    """The file's rows, all of them valid, or MovieLensInputError for the first bad line."""
    _require_exact_header(path, file)
    raw = read_fields(path, file, dtypes)
    short = _short_rows(path, raw, file)
    good, flagged = split_by_rules(raw, [
        *structural_rules(file),
        ("field_count", pl.col(LINE).is_in(short.implode())),
        *rules,
    ])
    _refuse_bad_rows(path, flagged, raw.height)
    return good


def parse_day_ratings(path: Path, movie_ids: pl.Series) -> Parsed:
    """A ratings day file, strictly: `kept` is every row (DAY_RATINGS_SCHEMA, file order), `rejected`
    only the repeats of a (user, movie) pair within the file, as duplicate_key / duplicate_row.

    A repeated pair is not an error: the greatest timestamp wins, on a tie the later line (the later
    line of a delivery is its correction).
    """
    day = _arrival(path, RATINGS_KIND)
    rating = pl.col("rating")
    good = _checked_fields(path, RATINGS, RATINGS_DTYPES, [
        ("userId_not_integer", _positive_id("userId")),
        ("movieId_not_integer", _positive_id("movieId")),
        ("rating_not_numeric", rating.is_null() | rating.is_nan()),
        ("rating_domain", (rating < 0.5) | (rating > 5.0) | ((rating * 2) != (rating * 2).round(0))),
        *_timestamp_rules(),
        ("unknown_movie", ~_in("movieId", movie_ids)),
    ])
    typed = good.select(
        LINE,
        pl.col("userId").alias(USER),
        pl.col("movieId").alias(MOVIE),
        rating.cast(pl.Float32).alias(RATING),
        pl.col("timestamp").alias(EPOCH),
    )
    kept, repeats = split_duplicates(typed, PAIR, [EPOCH, LINE], [True, True])
    rows = kept.sort(LINE).select(
        USER, MOVIE, RATING, EPOCH, pl.lit(day, dtype=pl.Date).alias(ARRIVAL), pl.col(LINE).cast(pl.UInt32)
    )
    rejected = quarantine(path, path.name, [label_duplicates(repeats, kept, PAIR, [RATING, EPOCH])])
    return Parsed(kept=rows, rejected=rejected, rows_read={path.name: typed.height},
                  rows_valid={path.name: rows.height})


def read_day_ratings(path: Path, movie_ids: pl.Series) -> pl.DataFrame:
    """The ratings of one day file (DAY_RATINGS_SCHEMA), repeats within the file resolved; see
    parse_day_ratings for the count of repeats dropped."""
    return parse_day_ratings(path, movie_ids).kept


def read_erasures(path: Path) -> pl.DataFrame:
    """An erasures day file, strictly: the users to erase as of its day (user_id, arrival), one row each."""
    day = _arrival(path, ERASURES_KIND)
    # Read as text: in a one-column file a value that does not parse must not look like a blank line.
    user = pl.col("userId").str.strip_chars().cast(pl.Int32, strict=False)
    good = _checked_fields(path, ERASURES, {}, [("userId_not_integer", user.is_null() | (user <= 0))])
    return good.select(user.alias(USER)).unique().sort(USER).with_columns(
        pl.lit(day, dtype=pl.Date).alias(ARRIVAL)
    )


def read_day_movies(path: Path, served_ids: pl.Series) -> pl.DataFrame:
    """A movies day file, strictly: the movies the day brings in (MOVIES_SCHEMA, sorted by movie_id).

    A day adds movies, it does not correct them: an id the stores already serve from the release or another
    day is refused (`known_movie`), as is an id repeated in the file (`duplicate_movie`); a movie's metadata
    changes with a release.
    """
    _arrival(path, MOVIES_KIND)  # the name names a real day; a movie carries no arrival of its own
    movie = pl.col("movieId")
    good = _checked_fields(path, MOVIES, {"movieId": pl.Int32}, [
        ("movieId_not_integer", _positive_id("movieId")),
        ("title_missing", pl.col("title").is_null() | (pl.col("title").str.strip_chars() == "")),
        ("genres_missing", pl.col("genres").is_null() | (pl.col("genres").str.strip_chars() == "")),
        ("known_movie", _in("movieId", served_ids)),
        ("duplicate_movie", movie.is_not_null() & ~movie.is_first_distinct()),
    ])
    title = pl.col("title").str.strip_chars_end("\r")
    genres = pl.col("genres").str.strip_chars()
    return good.select(
        movie.alias(MOVIE), title.alias("title"), display_title(title).alias("display_title"),
        year_from_title(title).alias("year"),
        pl.when(genres == NO_GENRES).then(pl.lit([], dtype=pl.List(pl.String))).otherwise(genres.str.split("|"))
        .alias("genres"),
        pl.lit(None, dtype=pl.String).alias("imdb_id"), pl.lit(None, dtype=pl.Int32).alias("tmdb_id"),
    ).cast(MOVIES_SCHEMA).sort(MOVIE)


def empty_movies() -> pl.DataFrame:
    return pl.DataFrame(schema=MOVIES_SCHEMA)


# --------------------------------------------------------------------------- the full rebuild
def base_log(ratings: pl.DataFrame) -> pl.DataFrame:
    """The `ratings` asset (timestamp as UTC datetime) as rating-log rows arriving on BASE_ARRIVAL."""
    return ratings.select(
        pl.col(USER).cast(pl.Int32),
        pl.col(MOVIE).cast(pl.Int32),
        pl.col(RATING).cast(pl.Float32),
        pl.col("timestamp").dt.epoch("s").alias(EPOCH),
        pl.lit(BASE_ARRIVAL, dtype=pl.Date).alias(ARRIVAL),
    )


def ratings_table(current: pl.DataFrame) -> pl.DataFrame:
    """Current ratings in the `ratings` asset's columns (user_id, movie_id, rating, timestamp, time_of_day)."""
    return current.sort(CURRENT_ORDER).select(
        USER, MOVIE, RATING, _utc(pl.col(EPOCH)).alias("timestamp"), time_of_day(pl.col(EPOCH)).alias("time_of_day")
    )


def empty_log() -> pl.DataFrame:
    return pl.DataFrame(schema=LOG_SCHEMA)


def empty_ledger() -> pl.DataFrame:
    return pl.DataFrame(schema=LEDGER_SCHEMA)


def _pair_key() -> pl.Expr:
    """(user_id, movie_id) packed in one int64, so finding each pair's first row is a cheap distinct."""
    return pl.col(USER).cast(pl.Int64) * (1 << 32) + pl.col(MOVIE).cast(pl.Int64)


def erased_through(erasures: pl.LazyFrame) -> pl.LazyFrame:
    """Per user, the latest erasure: every row arriving on or before it is erased."""
    return erasures.group_by(USER).agg(pl.col(ARRIVAL).max().alias(_ERASED_THROUGH))


def _not_erased(log: pl.LazyFrame, erasures: pl.LazyFrame) -> pl.LazyFrame:
    """Rule a: an erasure covers the user's rows that arrived the same day or earlier (applied late or
    not); rows arriving after it are a returning user's and stay."""
    through = pl.col(_ERASED_THROUGH)
    return (log.join(erased_through(erasures), on=USER, how="left")
            .filter(through.is_null() | (pl.col(ARRIVAL) > through))
            .drop(_ERASED_THROUGH))


def current_ratings(log: pl.LazyFrame, erasures: pl.LazyFrame) -> pl.LazyFrame:
    """The current ratings, rebuilt from the whole log and ledger (the definition apply_delivery meets).

    Rule b: per (user, movie) the greatest (epoch, arrival) wins, as MovieLens keeps a user's latest
    rating; a late delivery of an older rating loses. (user, movie, arrival) is a key of a well-formed
    log; should it repeat, the higher rating wins so the result is still deterministic.
    Rule c: sorted by (user_id, epoch, movie_id).
    """
    return (
        _not_erased(log, erasures)
        .sort([USER, MOVIE, EPOCH, ARRIVAL, RATING], descending=[False, False, True, True, True])
        .filter(_pair_key().is_first_distinct())
        .sort(CURRENT_ORDER)
        .select([pl.col(c).cast(t) for c, t in LOG_SCHEMA.items()])
    )


# --------------------------------------------------------------------------- the incremental path
@dataclass
class Delivery:
    """The state after one day's delivery, what changed, and by how much (COUNTS)."""

    log: pl.DataFrame
    erasures: pl.DataFrame
    current: pl.DataFrame
    touched_users: pl.Series  # sorted unique: users whose current rows changed in any way
    touched_movies: pl.Series
    counts: dict[str, int]


def day_rows(frame: pl.DataFrame, day: date, schema: dict[str, pl.DataType], key: list[str]) -> pl.DataFrame:
    """A day's delivered rows in the log's (or ledger's) columns, arrival checked against the day."""
    if ARRIVAL in frame.columns and frame.filter(pl.col(ARRIVAL) != day).height:
        raise ValueError(f"rows delivered for {day} carry another arrival day")
    rows = frame.select([pl.col(c).cast(t) if c != ARRIVAL else pl.lit(day, dtype=t).alias(ARRIVAL)
                         for c, t in schema.items()])
    if rows.select(pl.struct(key).is_duplicated().any()).item():
        raise ValueError(f"rows delivered for {day} repeat a {key} key: resolve repeats when reading")
    return rows


def replace_day(frame: pl.DataFrame, rows: pl.DataFrame, day: date) -> pl.DataFrame:
    """`frame` with its rows of `day` replaced by `rows`, kept in arrival order (so a repeat changes nothing)."""
    arrival = pl.col(ARRIVAL)
    return pl.concat([frame.filter(arrival < day), rows, frame.filter(arrival > day)])


def _changed_rows(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Rows of `new` that are not in `old`, exactly (a re-delivered identical row changes nothing)."""
    same = old.select(*PAIR, pl.col(RATING).alias("__old_rating"), pl.col(EPOCH).alias("__old_epoch"))
    return (new.join(same, on=PAIR, how="left")
            .filter(~(pl.col(RATING).eq_missing(pl.col("__old_rating"))
                      & pl.col(EPOCH).eq_missing(pl.col("__old_epoch"))))
            .select(new.columns))


def _changed_users(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Users erased in one version of the day's erasures and not in the other."""
    before, after = old.select(USER).unique(), new.select(USER).unique()
    return pl.concat([before.join(after, on=USER, how="anti"), after.join(before, on=USER, how="anti")])


def _in_scope(frame: pl.DataFrame, users: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Rows of `frame` of a whole user in `users` or of a pair in `pairs` (the two are disjoint)."""
    return pl.concat([frame.join(users, on=USER, how="semi"), frame.join(pairs, on=PAIR, how="semi")])


def _out_of_scope(frame: pl.DataFrame, users: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    return frame.join(users, on=USER, how="anti").join(pairs, on=PAIR, how="anti")


def compare_winners(before: pl.DataFrame, after: pl.DataFrame, through: pl.DataFrame) -> pl.DataFrame:
    """Per pair whose current row changed: inserted, replaced, erased or withdrawn. A pair that
    disappears is erased when the ledger now covers its old row, else withdrawn (its rows are gone)."""
    old = before.select(*PAIR, *[pl.col(c).alias(f"__old_{c}") for c in (RATING, EPOCH, ARRIVAL)])
    both = after.join(old, on=PAIR, how="full", coalesce=True).join(through, on=USER, how="left")
    gone, came = pl.col(EPOCH).is_null(), pl.col("__old_epoch").is_null()
    same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"__old_{c}")) for c in (RATING, EPOCH, ARRIVAL)])
    covered = pl.col(_ERASED_THROUGH).is_not_null() & (pl.col("__old_arrival") <= pl.col(_ERASED_THROUGH))
    change = (pl.when(came).then(pl.lit("inserted"))
              .when(gone & covered).then(pl.lit("erased"))
              .when(gone).then(pl.lit("withdrawn"))
              .when(~same).then(pl.lit("replaced")))
    return both.select(*PAIR, change.alias("change")).filter(pl.col("change").is_not_null())


def fate_of_delivered(delivered: pl.DataFrame, winners: pl.DataFrame, through: pl.DataFrame,
                       day: date) -> dict[str, int]:
    """Delivered rows that do not become current: superseded (an existing row has a greater (epoch,
    arrival)) or erased on arrival (the user is erased as of this day or a later one)."""
    winning = winners.select(*PAIR, pl.col(ARRIVAL).alias("__winner_arrival"))
    fate = delivered.join(winning, on=PAIR, how="left").join(through, on=USER, how="left")
    erased = pl.col(_ERASED_THROUGH).is_not_null() & (pl.col(_ERASED_THROUGH) >= day)
    lost = pl.col("__winner_arrival").is_not_null() & (pl.col("__winner_arrival") != day)
    counted = fate.select(erased.sum().alias("erased_on_arrival"), (lost & ~erased).sum().alias("superseded"))
    return {name: int(value) for name, value in counted.row(0, named=True).items()}


def _sorted_unique(column: pl.Series) -> pl.Series:
    return column.unique().sort()


def delivery_scope(old_rows: pl.DataFrame, new_rows: pl.DataFrame, old_erased: pl.DataFrame,
           new_erased: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What a delivery can change: whole users whose day erasure came or went, and the pairs whose day
    row came, went or changed (other than those users'). An identical re-delivered row changes nothing."""
    users = _changed_users(old_erased, new_erased)
    pairs = pl.concat([_changed_rows(old_rows, new_rows).select(PAIR), _changed_rows(new_rows, old_rows).select(PAIR)])
    return users, pairs.unique().join(users, on=USER, how="anti")


def apply_delivery(current: pl.DataFrame, log: pl.DataFrame, erasures: pl.DataFrame, day: date,
                   day_ratings: pl.DataFrame | None, day_erasures: pl.DataFrame | None) -> Delivery:
    """Apply day `day`'s delivery to the state before it (`current` must be current_ratings(log, erasures)).

    The delivery replaces whatever was delivered for `day` before (a corrected re-delivery); None keeps
    that kind's earlier delivery. Winners are recomputed only for the pairs whose day-`day` row changed
    and for the users whose day-`day` erasure changed; every other current row is kept as it is.
    """
    if day <= BASE_ARRIVAL:
        raise ValueError(f"{day} is the base release's arrival: a delivery arrives after {BASE_ARRIVAL}")
    log, erasures = log.select(list(LOG_SCHEMA)), erasures.select(list(LEDGER_SCHEMA))
    old_rows, old_erased = log.filter(pl.col(ARRIVAL) == day), erasures.filter(pl.col(ARRIVAL) == day)
    new_rows = old_rows if day_ratings is None else day_rows(day_ratings, day, LOG_SCHEMA, PAIR)
    new_erased = old_erased if day_erasures is None else day_rows(day_erasures, day, LEDGER_SCHEMA, [USER])
    new_log, new_ledger = replace_day(log, new_rows, day), replace_day(erasures, new_erased, day)

    users, pairs = delivery_scope(old_rows, new_rows, old_erased, new_erased)
    current = current.select(list(LOG_SCHEMA))
    before = _in_scope(current, users, pairs)
    scope_ledger = new_ledger.join(pl.concat([users, pairs.select(USER)]), on=USER, how="semi")
    after = current_ratings(_in_scope(new_log, users, pairs).lazy(), scope_ledger.lazy()).collect()
    through = erased_through(scope_ledger.lazy()).collect()
    changes = compare_winners(before, after, through)
    new_current = pl.concat([_out_of_scope(current, users, pairs), after]).sort(CURRENT_ORDER)

    touched_users = _sorted_unique(changes[USER])
    counts = ({name: 0 for name in COUNTS} | dict(changes.group_by("change").len().iter_rows())
              | fate_of_delivered(_changed_rows(old_rows, new_rows), after, through, day))
    counts["untouched"] = new_current.join(touched_users.to_frame(), on=USER, how="anti").height
    return Delivery(
        log=new_log,
        erasures=new_ledger,
        current=new_current,
        touched_users=touched_users,
        touched_movies=_sorted_unique(changes[MOVIE]),
        counts={name: int(counts[name]) for name in COUNTS},
    )


def fold_published(ratings: pl.DataFrame, published_log: pl.DataFrame, published_ledger: pl.DataFrame
                   ) -> pl.DataFrame:
    """The `ratings` table with published days applied (the refit's base): the release's rows as arriving on
    BASE_ARRIVAL, the days' rows and erasures on theirs, current ratings by the merge rules, sorted as `ratings`."""
    log = pl.concat([base_log(ratings), published_log.select(list(LOG_SCHEMA))])
    return ratings_table(current_ratings(log.lazy(), published_ledger.select(list(LEDGER_SCHEMA)).lazy()).collect())
