"""Day files that continue a MovieLens release: generated ones, or a real release's own tail held back.

Why: the daily-delivery path (tv5_assets.ingestion.days) needs deliveries to test and benchmark on, both
synthetic ones with every case in them (new users, returning users, re-ratings, erasures) and real ones
(the last days of ml-latest-small replayed as if they had arrived day by day). Writes the layout that
ingestion reads: `ratings-YYYY-MM-DD.csv` (the date is the arrival day), `erasures-YYYY-MM-DD.csv` and
`movies-YYYY-MM-DD.csv` (the movies a day brings in).
Vectorised with numpy; the same arguments write byte-identical files.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

from tv5_assets.sample.generator import DAY, _write

RERATING_SHARE = 0.05  # of the rows of returning users: a user changing their mind about a movie
_UNIFORM_AFTER = 20  # redraw rounds by popularity before falling back to the whole catalogue
_MAX_ROUNDS = 100
_NEW_MOVIE_WEIGHT_QUANTILE = 0.99  # a new movie is drawn like a popular one of the release, so the day rates it
_GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
           "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")


def day_file_name(kind: str, day: date) -> str:
    """`ratings-2024-03-01.csv` / `erasures-2024-03-01.csv`: the date is the arrival day."""
    return f"{kind}-{day.isoformat()}.csv"


def epoch_day(day: date) -> int:
    """Seconds since the epoch at the start of `day` (UTC)."""
    return (day - date(1970, 1, 1)).days * DAY


def utc_day(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).date()


# --------------------------------------------------------------------------- generated deliveries
@dataclass
class _Release:
    """What a release (and the days written so far) already holds, as the generator needs it."""

    catalogue: np.ndarray  # movieId of movies.csv, sorted
    weight: np.ndarray  # draw weight per catalogue movie: its ratings in the release, plus one
    release_users: np.ndarray  # sorted distinct userIds of ratings.csv
    user: np.ndarray  # userId per rating so far, sorted
    movie: np.ndarray  # catalogue index per rating so far, aligned with `user`
    last: int  # the release's latest timestamp

    def add_movies(self, ids: np.ndarray) -> None:
        """New movies (ids above the catalogue's) join the catalogue, drawn like a well-rated movie."""
        weight = float(np.quantile(self.weight, _NEW_MOVIE_WEIGHT_QUANTILE))
        self.catalogue = np.concatenate([self.catalogue, ids])
        self.weight = np.concatenate([self.weight, np.full(len(ids), weight)])

    def add(self, user: np.ndarray, movie: np.ndarray) -> None:
        """A day's rows join what later days can re-rate and which users count as returning."""
        user, movie = np.concatenate([self.user, user]), np.concatenate([self.movie, movie])
        order = np.argsort(user, kind="stable")
        self.user, self.movie = user[order], movie[order]


def _read_release(release_dir: Path) -> _Release:
    """The release's catalogue and ratings; rows a parser would reject (not integers, unknown movies)
    are left out, the generator only needs a plausible past."""
    catalogue = np.sort(pl.read_csv(release_dir / "movies.csv", columns=["movieId"], infer_schema=False)
                        ["movieId"].cast(pl.Int64, strict=False).drop_nulls().to_numpy())
    ratings = (pl.read_csv(release_dir / "ratings.csv", columns=["userId", "movieId", "timestamp"],
                           infer_schema=False)
               .select(pl.all().cast(pl.Int64, strict=False)).drop_nulls())
    if ratings.is_empty() or len(catalogue) == 0:
        raise ValueError(f"{release_dir} has no movies or no ratings to continue")
    movie_ids = ratings["movieId"].to_numpy()
    movie = np.minimum(np.searchsorted(catalogue, movie_ids), len(catalogue) - 1)
    known = catalogue[movie] == movie_ids
    user = ratings["userId"].to_numpy()[known]
    order = np.argsort(user, kind="stable")
    return _Release(
        catalogue=catalogue,
        weight=np.bincount(movie[known], minlength=len(catalogue)) + 1.0,
        release_users=np.unique(user),
        user=user[order],
        movie=movie[known][order],
        last=int(ratings["timestamp"].max()),
    )


def _arrival_days(days: list[date] | int, start: date | None, last: int) -> list[date]:
    """The arrival days: a count from `start` (default: the day after the release's last rating), or
    the given days, each of which must still have seconds after the release's last rating."""
    if isinstance(days, int):
        first = start or utc_day(last) + timedelta(days=1)
        arrivals = [first + timedelta(days=i) for i in range(days)]
    elif start is not None:
        raise ValueError("start applies only when days is a count")
    else:
        arrivals = list(days)
    if not arrivals or len(set(arrivals)) != len(arrivals):
        raise ValueError(f"the arrival days must be distinct and at least one: {arrivals}")
    early = [d for d in arrivals if epoch_day(d) + DAY <= last + 1]
    if early:
        raise ValueError(f"{early} end before the release's last rating ({utc_day(last)}): a day's "
                         "ratings come after the release")
    return arrivals


def _check_sizes(ratings_per_day: int, users_per_day: int, new_users: int, erase: int,
                 release: _Release) -> None:
    if not 0 <= new_users <= users_per_day <= ratings_per_day:
        raise ValueError("need 0 <= new_users <= users_per_day <= ratings_per_day (each user rates once at least)")
    if users_per_day - new_users > len(release.release_users):
        raise ValueError(f"{users_per_day - new_users} returning users a day, the release has "
                         f"{len(release.release_users)}")
    if not 0 <= erase <= len(release.release_users):
        raise ValueError(f"cannot erase {erase} of the release's {len(release.release_users)} users")


def _day_users(rng: np.random.Generator, release: _Release, users: int, new: int, first_new: int) -> np.ndarray:
    """The day's distinct raters: returning users drawn from everyone seen so far, then `new` fresh ids."""
    seen = release.user[np.concatenate([[True], release.user[1:] != release.user[:-1]])]  # sorted already
    returning = rng.choice(seen, users - new, replace=False)
    return np.concatenate([returning, np.arange(first_new, first_new + new)])


def _raters(rng: np.random.Generator, users: np.ndarray, ratings: int) -> np.ndarray:
    """The user of each row: every day user once, the other rows spread at random among them."""
    return users[np.concatenate([np.arange(len(users)), rng.integers(0, len(users), ratings - len(users))])]


def _user_rows(release: _Release, users: np.ndarray) -> np.ndarray:
    """Positions in `release.user` / `release.movie` of every earlier rating by `users` (distinct)."""
    lo = np.searchsorted(release.user, users, side="left")
    count = np.searchsorted(release.user, users, side="right") - lo
    first = np.repeat(lo - (np.cumsum(count) - count), count)
    return first + np.arange(int(count.sum()))


def _reratings(rng: np.random.Generator, rater: np.ndarray, release: _Release) -> np.ndarray:
    """A catalogue index already rated by the row's user for about RERATING_SHARE of the returning
    users' rows (a re-rating), -1 elsewhere."""
    lo = np.searchsorted(release.user, rater, side="left")
    seen = np.searchsorted(release.user, rater, side="right") - lo
    chosen = (seen > 0) & (rng.random(len(rater)) < RERATING_SHARE)
    pick = lo + np.floor(rng.random(len(rater)) * seen).astype(np.int64)
    return np.where(chosen, release.movie[np.minimum(pick, len(release.movie) - 1)], -1)


def _collisions(key: np.ndarray, fixed: np.ndarray, rated: np.ndarray) -> np.ndarray:
    """Rows to redraw: a key an earlier row of the day already has (rows in `fixed` count as earlier),
    or a drawn (not `fixed`) row hitting a pair rated before, which would be a re-rating by chance."""
    order = np.lexsort((np.arange(len(key)), (~fixed).astype(np.int8), key))
    ordered = key[order]
    repeated = np.zeros(len(key), dtype=bool)
    repeated[order[1:][ordered[1:] == ordered[:-1]]] = True
    return repeated | (~fixed & np.isin(key, rated))


def _movies(rng: np.random.Generator, rater: np.ndarray, rerated: np.ndarray, release: _Release) -> np.ndarray:
    """A catalogue index per row: the re-ratings where they do not collide, the others by popularity
    among the movies the user has not rated, each (user, movie) once in the day. Colliding rows are
    redrawn (a few rounds by popularity, then from the whole catalogue)."""
    m = len(release.weight)
    raters, per_rater = np.unique(rater, return_counts=True)
    past = _user_rows(release, raters)
    if np.any(per_rater + np.bincount(np.searchsorted(raters, release.user[past]), minlength=len(raters)) > m):
        raise ValueError(f"a user would rate more than the {m} movies of the catalogue")
    rated = release.user[past].astype(np.int64) * m + release.movie[past]
    cdf = np.cumsum(release.weight) / release.weight.sum()
    fixed = rerated >= 0
    movie = np.where(fixed, rerated, np.minimum(np.searchsorted(cdf, rng.random(len(rater)), side="right"), m - 1))
    for round_ in range(_MAX_ROUNDS):
        redraw = _collisions(rater.astype(np.int64) * m + movie, fixed, rated)
        if not redraw.any():
            return movie
        fixed &= ~redraw
        draw = rng.random(int(redraw.sum()))
        movie[redraw] = ((draw * m).astype(np.int64) if round_ >= _UNIFORM_AFTER
                         else np.minimum(np.searchsorted(cdf, draw, side="right"), m - 1))
    raise ValueError("could not give every rater movies they have not rated; lower ratings_per_day")


def _day_frame(rng: np.random.Generator, day: date, release: _Release, ratings: int, users: int,
               new: int, first_new: int) -> tuple[pl.DataFrame, np.ndarray]:
    """One day's ratings in file order (by timestamp), and their catalogue indexes in the same order."""
    rater = _raters(rng, _day_users(rng, release, users, new, first_new), ratings)
    movie = _movies(rng, rater, _reratings(rng, rater, release), release)
    begin = max(epoch_day(day), release.last + 1)
    stamp = rng.integers(begin, epoch_day(day) + DAY, ratings)
    stars = np.clip(np.rint((3.5 + rng.normal(0.0, 1.0, ratings)) * 2) / 2, 0.5, 5.0).astype(np.float32)
    order = np.lexsort((movie, rater, stamp))
    frame = pl.DataFrame({
        "userId": rater[order].astype(np.int32),
        "movieId": release.catalogue[movie[order]].astype(np.int32),
        "rating": stars[order],
        "timestamp": stamp[order],
    })
    return frame, movie[order]


def _new_movies(rng: np.random.Generator, day: date, first_id: int, count: int) -> pl.DataFrame:
    """`count` movies in movies.csv's columns, ids from `first_id`, released in the arrival day's year."""
    genres = [rng.choice(len(_GENRES), size=rng.integers(1, 4), replace=False) for _ in range(count)]
    return pl.DataFrame({
        "movieId": np.arange(first_id, first_id + count, dtype=np.int32),
        "title": [f"Nouvelle {first_id + i} ({day.year})" for i in range(count)],
        "genres": ["|".join(_GENRES[g] for g in sorted(chosen)) for chosen in genres],
    })


def write_days(release_dir: Path, out_dir: Path, days: list[date] | int, ratings_per_day: int,
               users_per_day: int, new_users: int, seed: int, start: date | None = None,
               erase: int = 0, new_movies: int = 0) -> list[Path]:
    """Continue the release at `release_dir` with day files in `out_dir`; returns the files written
    (each day's movies file if any and ratings file in the order of `days`, then the erasures file if any).

    Each day: `ratings_per_day` ratings by `users_per_day` distinct users, `new_users` of them new (ids
    above every id so far, fresh each day), returning users drawn from the release and earlier days;
    movies by popularity in the release; timestamps inside the arrival day (UTC) after the release's
    last rating; ratings in half stars; about 5 % of returning users' rows re-rate a movie they rated
    before. `erase` > 0 adds an erasures file on the last of `days` for that many release users.
    `new_movies` > 0 adds a movies file each day with that many movies (ids above every id so far), which
    that day's and later days' users rate like well-rated movies of the release.
    """
    release_dir, out_dir = Path(release_dir), Path(out_dir)
    release = _read_release(release_dir)
    arrivals = _arrival_days(days, start, release.last)
    _check_sizes(ratings_per_day, users_per_day, new_users, erase, release)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(arrivals) + 1)]
    out_dir.mkdir(parents=True, exist_ok=True)
    next_user = int(release.user.max()) + 1
    written = []
    next_movie = int(release.catalogue.max()) + 1
    for i, day in enumerate(arrivals):
        if new_movies:
            brought = _new_movies(rngs[i], day, next_movie + i * new_movies, new_movies)
            release.add_movies(brought["movieId"].to_numpy().astype(np.int64))
            written.append(out_dir / day_file_name("movies", day))
            _write(brought, written[-1])
        frame, movie = _day_frame(rngs[i], day, release, ratings_per_day, users_per_day, new_users,
                                  next_user + i * new_users)
        release.add(frame["userId"].to_numpy().astype(np.int64), movie)
        written.append(out_dir / day_file_name("ratings", day))
        _write(frame, written[-1])
    if erase:
        erased = np.sort(rngs[-1].choice(release.release_users, erase, replace=False)).astype(np.int32)
        written.append(out_dir / day_file_name("erasures", arrivals[-1]))
        _write(pl.DataFrame({"userId": erased}), written[-1])
    return written


# --------------------------------------------------------------------------- a real release's tail
def hold_back_tail(release_dir: Path, out_release: Path, out_days: Path, days: int) -> list[Path]:
    """Replay a release's last `days` calendar days (UTC, ending on the day of its last rating) as day
    files: `out_release` gets the release without them (other files copied as they are), `out_days`
    one ratings file per date that has ratings, named by the ratings' own date. Returns the day files
    in date order. Fields are copied as text, so every row reads back exactly as the release has it.
    """
    release_dir, out_release, out_days = Path(release_dir), Path(out_release), Path(out_days)
    if days < 1:
        raise ValueError("hold back at least one day")
    if out_release.resolve() == release_dir.resolve():
        raise ValueError("the copy of the release must not overwrite the release")
    ratings = pl.read_csv(release_dir / "ratings.csv", infer_schema=False)
    day = (pl.col("timestamp").cast(pl.Int64, strict=False) // DAY).alias("__day")
    ratings = ratings.with_columns(day)
    if ratings["__day"].null_count() == ratings.height:
        raise ValueError(f"{release_dir / 'ratings.csv'} has no timestamps to hold back")
    cutoff = ratings["__day"].max() - days + 1
    held = pl.col("__day").fill_null(cutoff - 1) >= cutoff
    _copy_release(release_dir, out_release)
    _write(ratings.filter(~held).drop("__day"), out_release / "ratings.csv")
    out_days.mkdir(parents=True, exist_ok=True)
    written = []
    tail = ratings.filter(held)
    by_day = tail.partition_by("__day", as_dict=True, maintain_order=True)
    for (number,), rows in sorted(by_day.items(), key=lambda item: item[0]):
        written.append(out_days / day_file_name("ratings", date(1970, 1, 1) + timedelta(days=number)))
        _write(rows.drop("__day"), written[-1])
    return written


def _copy_release(release_dir: Path, out_release: Path) -> None:
    out_release.mkdir(parents=True, exist_ok=True)
    for entry in sorted(release_dir.iterdir()):
        if entry.name == "ratings.csv":
            continue
        if entry.is_dir():
            shutil.copytree(entry, out_release / entry.name, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, out_release / entry.name)
