"""The project's own MovieLens-format release, generated from a seed.

Why: tests need Tag Genome scores (ml-latest-small has none), benchmarks need an ml-25m-sized
release, and the project must not ship GroupLens data. The files follow the ml-25m CSV layout and
its quirks (moved articles, quoted titles, year ranges, empty tmdbIds, whole stars before 2003).
Everything is vectorised with numpy/polars: the ml-25m shape takes well under three minutes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl

from tv5_assets.sample import vocab

DAY = 86_400
FIRST_RATING = 820_454_400  # 1996-01-01 UTC
LAST_RATING = 1_574_294_400  # 2019-11-21 UTC, where ml-25m ends
HALF_STARS_SINCE = 1_045_526_400  # 2003-02-18 UTC: MovieLens took whole stars only before
MIN_RATINGS_PER_USER = 20  # as in every MovieLens release
N_GENRES = len(vocab.GENRES)
FILES = ("movies.csv", "links.csv", "ratings.csv", "tags.csv", "genome-tags.csv",
         "genome-scores.csv")


@dataclass(frozen=True)
class SampleSpec:
    """Sizes of a synthetic release; the defaults make a small one for tests."""

    seed: int = 42
    movies: int = 2_000
    users: int = 300
    ratings: int = 40_000
    tags: int = 2_000
    genome_movies: int = 500
    genome_tags: int = 1_128

    def __post_init__(self) -> None:
        if min(self.movies, self.users, self.genome_tags) < 1 or min(self.tags,
                                                                     self.genome_movies) < 0:
            raise ValueError(f"sizes must be positive: {self}")
        if self.genome_movies > self.movies:
            raise ValueError("genome_movies cannot exceed movies")
        if self.genome_tags > len(_genome_candidates()[0]):
            raise ValueError(f"at most {len(_genome_candidates()[0])} genome tags can be named")
        if not self.users * self.min_per_user <= self.ratings <= self.users * self.max_per_user:
            raise ValueError(f"ratings must lie in [{self.users * self.min_per_user}, "
                             f"{self.users * self.max_per_user}] for {self.users} users")

    @property
    def min_per_user(self) -> int:
        """20 ratings each, as MovieLens guarantees, when there are enough ratings to go round."""
        return MIN_RATINGS_PER_USER if self.ratings >= MIN_RATINGS_PER_USER * self.users else 1

    @property
    def max_per_user(self) -> int:
        """Nobody rates the whole catalogue; the cap also keeps unique-pair sampling quick."""
        return min(self.movies, max(self.min_per_user, int(np.ceil(0.8 * self.movies))))

    @classmethod
    def ml25m(cls, seed: int = 42) -> SampleSpec:
        """The shape of GroupLens ml-25m, for benchmarks."""
        return cls(seed=seed, movies=62_423, users=162_541, ratings=25_000_095, tags=1_093_360,
                   genome_movies=13_816, genome_tags=1_128)


@dataclass(frozen=True)
class _Catalogue:
    """Per-movie latent facts that titles, ratings, tags and genome scores all agree on."""

    ids: np.ndarray  # movieId, increasing with gaps
    year: np.ndarray
    genres: np.ndarray  # bool (movies, genres)
    primary: np.ndarray  # the genre that themes the title and tags
    language: np.ndarray  # index into vocab.LANGUAGE_WEIGHT
    quality: np.ndarray
    popularity: np.ndarray  # Zipf-like draw weights


def write_sample_release(out_dir: Path, spec: SampleSpec) -> dict[str, Path]:
    """Write the six ml-25m CSV files into `out_dir`; same spec, byte-identical files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = [np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(6)]
    cat = _catalogue(rng[0], spec.movies)
    paths = {name: out_dir / name for name in FILES}
    _write(_movies_frame(rng[1], cat), paths["movies.csv"])
    _write(_links_frame(rng[2], cat), paths["links.csv"])
    user, movie, stamp = _ratings(rng[3], spec, cat, paths["ratings.csv"])
    _write(_tags_frame(rng[4], spec, cat, user, movie, stamp), paths["tags.csv"])
    counts = np.bincount(movie, minlength=spec.movies)
    del user, movie, stamp
    names, scores = _genome(rng[5], spec, cat, counts)
    _write(names, paths["genome-tags.csv"])
    _write(scores, paths["genome-scores.csv"])
    return paths


def _write(frame: pl.DataFrame, path: Path) -> None:
    """MovieLens CSV: header, LF, quotes only where a field needs them."""
    frame.write_csv(path, line_terminator="\n", quote_style="necessary")


def _categorical(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    cdf = np.cumsum(weights) / np.sum(weights)
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1)


def _pick(rng: np.random.Generator, groups: Sequence[Sequence[str]],
          group_of: np.ndarray) -> np.ndarray:
    """One random word per row from its group, as an index into the flattened groups."""
    sizes = np.array([len(g) for g in groups])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return offsets[group_of] + (rng.random(len(group_of)) * sizes[group_of]).astype(np.int64)


def _words(groups: Sequence[Sequence[str]], index: np.ndarray) -> pl.Series:
    return pl.Series([w for g in groups for w in g], dtype=pl.String).gather(index)


def _sample_words(rng: np.random.Generator, words: Sequence[str], n: int) -> pl.Series:
    return _words([words], _pick(rng, [words], np.zeros(n, dtype=np.int64)))


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct keys; np.unique is many times slower than a sort in numpy 2.4."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def _first_occurrences(keys: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct key, in ascending position order."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    return np.sort(order[np.concatenate([[True], ordered[1:] != ordered[:-1]])])


def _quota(rng: np.random.Generator, n: int, share: float, minimum: int = 2) -> np.ndarray:
    """Rows that carry a rare quirk: a share of them, but always a few so tests can see one."""
    return rng.permutation(n)[: min(n, max(minimum, round(share * n)))]


# --------------------------------------------------------------------------- catalogue
def _catalogue(rng: np.random.Generator, n: int) -> _Catalogue:
    gaps = np.where(rng.random(n) < 0.7, 1, 1 + rng.geometric(1 / 8, n))
    gaps[0] = 1
    base = np.array([vocab.GENRE_WEIGHT[g] for g in vocab.GENRES])
    affinity = np.tile(2.0 * base / base.sum(), (N_GENRES, 1))
    for i, g in enumerate(vocab.GENRES):
        for other, w in vocab.GENRE_AFFINITY[g].items():
            affinity[i, vocab.GENRES.index(other)] += w
    np.fill_diagonal(affinity, 0.0)
    cdf = np.cumsum(affinity, axis=1) / affinity.sum(axis=1, keepdims=True)
    primary = _categorical(rng, base, n)
    count = 1 + np.searchsorted([0.38, 0.72, 0.91], rng.random(n), side="right")
    count[(primary == vocab.GENRES.index("Documentary")) & (rng.random(n) < 0.8)] = 1
    genres = np.zeros((n, N_GENRES), dtype=bool)
    rows = np.arange(n)
    genres[rows, primary] = True
    for slot in range(1, 4):  # up to three companions of the primary genre
        pick = np.minimum((rng.random(n)[:, None] > cdf[primary]).sum(axis=1), N_GENRES - 1)
        genres[rows[count > slot], pick[count > slot]] = True
    genres[_quota(rng, n, 0.01)] = False  # "(no genres listed)"

    year = 1902 + np.floor(117.999 * rng.beta(3.2, 1.15, n)).astype(np.int64)
    noir, imax = (genres[:, vocab.GENRES.index(g)] for g in ("Film-Noir", "IMAX"))
    year[noir] = 1940 + rng.integers(0, 20, noir.sum())
    year[imax] = 1995 + rng.integers(0, 25, imax.sum())
    language = _categorical(rng, np.array(list(vocab.LANGUAGE_WEIGHT.values())), n)

    bias = np.zeros(N_GENRES)
    for g, b in {"Documentary": 0.3, "Film-Noir": 0.4, "War": 0.3, "Drama": 0.15,
                 "Horror": -0.45, "Children": -0.2, "Comedy": -0.1}.items():
        bias[vocab.GENRES.index(g)] = b
    quality = (0.8 * rng.standard_normal(n) + genres @ bias / np.maximum(genres.sum(1), 1)
               + 0.25 * (year < 1970))
    pull = (1.2 * rng.standard_normal(n) + 0.6 * quality
            + 0.8 * np.exp(-(((year - 2000) / 15.0) ** 2)) - 0.5 * (language > 0)
            - 0.6 * genres[:, vocab.GENRES.index("Documentary")])
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-pull, kind="stable")] = np.arange(n)
    popularity = (rank + 40.0) ** -1.25
    return _Catalogue(np.cumsum(gaps), year, genres, primary, language, quality, popularity)


# --------------------------------------------------------------------------- movies, links
def _movies_frame(rng: np.random.Generator, cat: _Catalogue) -> pl.DataFrame:
    return pl.DataFrame({"movieId": cat.ids, "title": _titles(rng, cat),
                         "genres": _genre_strings(cat.genres)})


def _genre_strings(genres: np.ndarray) -> pl.Series:
    flags = pl.DataFrame({g: genres[:, i] for i, g in enumerate(vocab.GENRES)})
    columns = [pl.when(pl.col(g)).then(pl.lit(g)) for g in vocab.GENRES]  # alphabetical, as ML
    joined = flags.select(pl.concat_str(columns, separator="|", ignore_nulls=True).alias("g"))
    return joined["g"].replace("", vocab.NO_GENRES)


def _titles(rng: np.random.Generator, cat: _Catalogue) -> pl.Series:
    """English-pattern and foreign titles, articles moved to the end as MovieLens does."""
    n, lang = len(cat.ids), cat.language.copy()
    quoted = _quota(rng, n, 0.004)
    lang[quoted] = 0
    themed = np.where(rng.random(n) < 0.5, cat.primary, N_GENRES)
    noun_groups = (*vocab.EN_THEME_NOUNS, vocab.EN_NOUNS)
    foreign = list(vocab.FOREIGN.values())
    f_group = np.maximum(lang - 1, 0)
    f_noun = _pick(rng, [nouns for nouns, _ in foreign], f_group)
    undated = _quota(rng, n, 0.008, minimum=4)
    dated = np.zeros(n, dtype=np.int64)  # 0: " (1995)", 1: no year, 2: " (2006–2008)"
    dated[undated[::2]], dated[undated[1::2]] = 1, 2
    df = pl.DataFrame({
        "adj": _sample_words(rng, vocab.EN_ADJECTIVES, n),
        "noun": _words(noun_groups, _pick(rng, noun_groups, themed)),
        "noun2": _sample_words(rng, vocab.EN_NOUNS, n),
        "noun3": _sample_words(rng, vocab.EN_NOUNS, n),
        "name": _sample_words(rng, vocab.EN_NAMES, n),
        "name2": _sample_words(rng, vocab.EN_NAMES, n),
        "place": _sample_words(rng, vocab.EN_PLACES, n),
        "sub": _sample_words(rng, vocab.EN_SUBTITLES, n),
        "fnoun": _words([[w for w, _ in nouns] for nouns, _ in foreign], f_noun),
        "fart": _words([[a for _, a in nouns] for nouns, _ in foreign], f_noun),
        "fcompl": _words([c for _, c in foreign], _pick(rng, [c for _, c in foreign], f_group)),
        "pattern": _categorical(rng, np.array([35, 15, 15, 8, 10, 7, 5, 5.0]), n),
        "article": _categorical(rng, np.array([64, 30, 6.0]), n),
        "extra": _categorical(rng, np.array([91, 6, 3.0]), n),
        "sequel": rng.integers(2, 5, n), "lang": lang,
        "fstyle": _categorical(rng, np.array([42, 18, 25, 15.0]), n),
        "quoted": np.isin(np.arange(n), quoted), "year": cat.year,
        "span": rng.integers(1, 6, n), "dated": dated,
        "trailing": np.isin(np.arange(n), _quota(rng, n, 0.002)),
    })

    c, s = pl.col, pl.lit
    pattern = c("pattern")
    base = (pl.when(pattern == 0).then(pl.concat_str(c("adj"), s(" "), c("noun")))
            .when(pattern == 1).then(c("noun"))
            .when(pattern == 2).then(pl.concat_str(c("noun"), s(" of the "), c("noun2")))
            .when(pattern == 3).then(pl.concat_str(c("name"), s("'s "), c("noun")))
            .when(pattern == 4).then(pl.concat_str(c("noun"), s(" in "), c("place")))
            .when(pattern == 5).then(pl.concat_str(c("adj"), s(" "), c("noun"), s(" of "),
                                                   c("place")))
            .when(pattern == 6).then(pl.concat_str(c("name"), s(" and "), c("name2")))
            .otherwise(pl.concat_str(c("noun"), s(", "), c("noun2"), s(" and "), c("noun3"))))
    base = (pl.when(c("extra") == 1).then(pl.concat_str(base, s(": "), c("sub")))
            .when((c("extra") == 2) & (pattern <= 1))
            .then(pl.concat_str(base, s(" "), c("sequel").cast(pl.String)))
            .otherwise(base))
    article = (pl.when(pattern.is_in([3, 6, 7]) | (c("article") == 0)).then(s(""))
               .when(c("article") == 1).then(s(", The"))
               .when(base.str.contains("^[AEIOU]")).then(s(", An")).otherwise(s(", A")))
    english = (pl.when(c("quoted"))
               .then(pl.concat_str(c("noun"), s(' of "'), c("name"), s('"')))
               .otherwise(pl.concat_str(base, article)))
    core = (pl.when(c("fstyle") == 0).then(pl.concat_str(c("fnoun"), s(" "), c("fcompl")))
            .when(c("fstyle") == 1).then(c("fnoun"))
            .otherwise(pl.concat_str(c("fnoun"), s(" "), c("fcompl"), s(", "), c("fart"))))
    local = (pl.when(c("fstyle") == 3).then(pl.concat_str(english, s(" ("), core, s(")")))
             .otherwise(core))
    begin = pl.min_horizontal(c("year"), 2019 - c("span"))  # a series' years, en dash
    suffix = (pl.when(c("dated") == 1).then(s(""))
              .when(c("dated") == 2).then(pl.format(" ({}–{})", begin, begin + c("span")))
              .otherwise(pl.format(" ({})", c("year"))))
    title = pl.concat_str(pl.when(c("lang") == 0).then(english).otherwise(local), suffix,
                          pl.when(c("trailing")).then(s(" ")).otherwise(s("")))
    return df.select(title.alias("title"))["title"]


def _links_frame(rng: np.random.Generator, cat: _Catalogue) -> pl.DataFrame:
    """IMDb ids grow with release year, 7 digits zero-padded; about 1% lack a TMDb id."""
    n = len(cat.ids)
    imdb = np.empty(n, dtype=np.int64)
    imdb[np.argsort(cat.year + rng.normal(0, 3, n), kind="stable")] = np.sort(
        rng.choice(9_999_998, n, replace=False) + 1)
    tmdb = pl.Series("tmdbId", rng.choice(650_000, n, replace=False) + 2, dtype=pl.Int64)
    tmdb = tmdb.scatter(_quota(rng, n, 0.01), None)
    imdb_text = pl.Series(imdb).cast(pl.String).str.zfill(7)
    return pl.DataFrame({"movieId": cat.ids, "imdbId": imdb_text, "tmdbId": tmdb})


# --------------------------------------------------------------------------- ratings
def _user_targets(rng: np.random.Generator, spec: SampleSpec) -> np.ndarray:
    """Long-tailed ratings per user (log-normal), floor and cap respected, summing exactly."""
    low, room = spec.min_per_user, spec.max_per_user - spec.min_per_user
    extra = spec.ratings - low * spec.users
    weight = rng.lognormal(0.0, 1.35, spec.users)
    share = np.zeros(spec.users)
    free = np.ones(spec.users, dtype=bool)
    while free.any():  # water-filling: a few passes clamp the heaviest users at the cap
        left = extra - room * (~free).sum()
        share[free] = left * weight[free] / weight[free].sum()
        over = free & (share > room)
        if not over.any():
            break
        share[over], free = room, free & ~over
    whole = np.minimum(np.floor(share).astype(np.int64), room)
    short = int(extra - whole.sum())  # rounding left-overs, fewer than one per user
    if short > 0:
        whole[np.argsort(-(share - whole) + 2.0 * (whole >= room), kind="stable")[:short]] += 1
    elif short < 0:
        whole[np.argsort((share - whole) + 2.0 * (whole <= 0), kind="stable")[:-short]] -= 1
    return whole + low


def _ratings(rng: np.random.Generator, spec: SampleSpec, cat: _Catalogue,
             path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write ratings.csv; return (user index, movie index, timestamp) per row for tags/genome."""
    target = _user_targets(rng, spec)
    favourite = _favourite_genres(rng, spec.users, cat)
    user, movie = _rated_pairs(rng, target, favourite, cat)
    stamp = _timeline(rng, target)
    n = len(user)
    liking = (3.15 + 0.5 * cat.quality[movie] + rng.normal(0.0, 0.4, spec.users)[user]
              + 0.35 * cat.genres[movie, favourite[user]] + rng.normal(0.0, 0.75, n))
    rating = np.where(stamp < HALF_STARS_SINCE, np.clip(np.rint(liking), 1, 5),
                      np.clip(np.rint(liking * 2) / 2, 0.5, 5)).astype(np.float32)
    del liking
    _write(pl.DataFrame({"userId": (user + 1).astype(np.int32),
                         "movieId": cat.ids[movie].astype(np.int32),
                         "rating": rating, "timestamp": stamp}), path)
    return user, movie, stamp


def _favourite_genres(rng: np.random.Generator, users: int, cat: _Catalogue) -> np.ndarray:
    size = cat.genres.sum(axis=0).astype(float)
    return _categorical(rng, size * (size > 0), users)


def _rated_pairs(rng: np.random.Generator, target: np.ndarray, favourite: np.ndarray,
                 cat: _Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Unique (user, movie) pairs, exactly `target` per user, rows per user in rough release order.

    Draws mix Zipf popularity, the user's favourite genre and (for heavy users) the whole
    catalogue; duplicates are dropped on an int64 key and users still short draw again.
    """
    m, users = len(cat.ids), len(target)
    pop_cdf = np.cumsum(cat.popularity) / cat.popularity.sum()
    members = [np.flatnonzero(cat.genres[:, g]) for g in range(N_GENRES)]
    seg_end = np.cumsum([len(x) for x in members])
    seg_start = seg_end - [len(x) for x in members]
    genre_cdf = np.concatenate([g + np.cumsum(cat.popularity[x]) / cat.popularity[x].sum()
                                for g, x in enumerate(members) if len(x)] or [np.zeros(0)])
    members_all = np.concatenate(members)
    broad = np.minimum(0.6, 0.02 + 0.5 * target / m)

    pending = np.ones(users, dtype=bool)
    need = np.ceil(target * 1.2).astype(np.int64) + 3
    keys, done, attempt = np.zeros(0, dtype=np.int64), [], 0
    while pending.any():
        who = np.repeat(np.flatnonzero(pending), need[pending])
        source, r = rng.random(len(who)), rng.random(len(who))
        picked = np.minimum(np.searchsorted(pop_cdf, r, side="right"), m - 1)
        genre = source < 0.3
        fav = favourite[who[genre]]
        pos = np.searchsorted(genre_cdf, fav + r[genre], side="right")
        picked[genre] = members_all[np.clip(pos, seg_start[fav], seg_end[fav] - 1)]
        wide = source > 1.0 - np.minimum(1.0, broad[who] + 0.25 * attempt)
        picked[wide] = (r[wide] * m).astype(np.int64)
        keys = _distinct(np.concatenate([keys, who.astype(np.int64) * m + picked]))
        del who, source, r, picked, genre, pos, fav, wide
        have = np.bincount(keys // m, minlength=users)
        ready = pending & (have >= target)
        settled = ready[keys // m]
        done.append(keys[settled])
        keys, pending = keys[~settled], pending & ~ready
        need = np.ceil((target - have) * 1.5).astype(np.int64) + 3
        attempt += 1
    keys = np.concatenate(done)
    del done
    # Keep a random `target` of each user's pairs: sort by (user, random), cut by rank.
    keys = keys[np.argsort((keys // m) << 31 | rng.integers(0, 2**31, len(keys)))]
    user = keys // m
    start = np.cumsum(np.bincount(user, minlength=users)) - np.bincount(user, minlength=users)
    keys = keys[np.arange(len(keys)) - start[user] < target[user]]
    user, movie = keys // m, keys % m
    del keys
    # Users meet movies roughly in release order, which makes the timeline plausible.
    era = np.clip((cat.year[movie] + rng.normal(0.0, 8.0, len(movie)) + 100) * 1000, 0, 2**31)
    order = np.argsort(user << 32 | era.astype(np.int64))
    return user[order].astype(np.int32), movie[order].astype(np.int32)


def _timeline(rng: np.random.Generator, target: np.ndarray) -> np.ndarray:
    """Timestamps per row (rows grouped by user): onboarding burst, then sessions with gaps.

    Gaps are log-normal around 25 days, so both < 30 and > 30 day breaks occur (the RL stage cuts
    episodes there); inside a session ratings come seconds to minutes apart.
    """
    users, n = len(target), int(target.sum())
    start = np.cumsum(target) - target
    user = np.repeat(np.arange(users), target)
    rank = np.arange(n) - start[user]
    onboarding = rng.integers(10, 41, users)
    per_session = np.clip(rng.lognormal(np.log(8), 0.8, users), 2, 300)
    new = (rng.random(n) < 1.0 / per_session[user]) & (rank >= onboarding[user])
    gap = np.clip(rng.lognormal(np.log(25 * DAY), 1.7, n), DAY // 4, 1500 * DAY)
    within = np.clip(rng.lognormal(np.log(45), 1.0, n), 2, 1800)
    gap, within = np.where(new, gap, 0.0), np.where(new | (rank == 0), 0.0, within)
    span = 0.98 * (LAST_RATING - FIRST_RATING)
    gap_sum = np.bincount(user, weights=gap, minlength=users)
    squeeze = np.clip((span - np.bincount(user, weights=within, minlength=users))
                      / np.maximum(gap_sum, 1.0), 0.0, 1.0)
    step = np.floor(gap * squeeze[user] + within).astype(np.int64)
    step = np.where(rank == 0, 0, np.maximum(step, 1))
    del gap, within, new
    offset = np.cumsum(step)
    offset -= offset[start][user]
    slack = (LAST_RATING - FIRST_RATING) - offset[start + target - 1]
    first = FIRST_RATING + np.floor(rng.random(users) * slack).astype(np.int64)
    return first[user] + offset


# --------------------------------------------------------------------------- tags
def _tags_frame(rng: np.random.Generator, spec: SampleSpec, cat: _Catalogue, user: np.ndarray,
                movie: np.ndarray, stamp: np.ndarray) -> pl.DataFrame:
    """Free-text tags by a small, skewed set of taggers, on movies they rated, when they rated."""
    draws = int(spec.tags * 1.3) + 10
    counts = np.bincount(user, minlength=spec.users)
    start = np.cumsum(counts) - counts
    taggers = rng.permutation(spec.users)[: max(1, round(0.09 * spec.users))]
    who = taggers[_categorical(rng, (np.arange(len(taggers)) + 1.0) ** -1.1, draws)]
    row = start[who] + (rng.random(draws) * counts[who]).astype(np.int64)
    groups = (*vocab.TAGS_THEMED, vocab.TAGS_GENERIC)
    word = _pick(rng, groups, np.where(rng.random(draws) < 0.55, cat.primary[movie[row]],
                                       N_GENRES))
    key = (who.astype(np.int64) * spec.movies + movie[row]) * sum(map(len, groups)) + word
    first = _first_occurrences(key)
    repeat = np.ones(draws, dtype=bool)
    repeat[first] = False  # duplicates only fill up when a tiny spec runs out of unique ones
    keep = np.concatenate([first, np.flatnonzero(repeat)])[: spec.tags]
    who, row, word = who[keep], row[keep], word[keep]
    quirk = np.zeros(len(keep), dtype=np.int64)
    odd = _quota(rng, len(keep), 0.006, minimum=8)
    quirk[odd] = np.arange(len(odd)) % 4 + 1  # spaces before (1), after (2), comma (3), quotes (4)
    quirky = (vocab.TAGS_WITH_COMMA, vocab.TAGS_WITH_QUOTES)
    frame = pl.DataFrame({
        "userId": (who + 1).astype(np.int32), "movieId": cat.ids[movie[row]].astype(np.int32),
        "tag": _words(groups, word),
        "odd": _words(quirky, _pick(rng, quirky, (quirk == 4).astype(np.int64))),
        "quirk": quirk,
        "timestamp": np.minimum(stamp[row] + rng.integers(0, 3600, len(keep)), LAST_RATING),
    })
    c = pl.col
    tag = (pl.when(c("quirk") == 1).then(pl.concat_str(pl.lit(" "), c("tag")))
           .when(c("quirk") == 2).then(pl.concat_str(c("tag"), pl.lit(" ")))
           .when(c("quirk") >= 3).then(c("odd")).otherwise(c("tag")))
    return (frame.with_columns(tag.alias("tag"))
            .select("userId", "movieId", "tag", "timestamp")
            .sort("userId", "movieId", "timestamp", maintain_order=True))


# --------------------------------------------------------------------------- tag genome
@cache
def _genome_candidates() -> tuple[list[str], np.ndarray, int]:
    """Nameable genome tags (bare concepts first, then modifier + concept), their theme (a genre,
    acclaim = N_GENRES, none = N_GENRES + 1) and how many are bare."""
    themed = [(t, g) for g, words in enumerate(vocab.GENOME_THEMED) for t in words]
    bare = (themed + [(t, N_GENRES) for t in vocab.GENOME_ACCLAIM]
            + [(t, N_GENRES + 1) for t in vocab.GENOME_GENERIC])
    combos = [(f"{m} {t}", g) for t, g in bare for m in vocab.GENOME_MODIFIERS if m != t]
    unique = dict(reversed(bare + combos))  # the first theme given to a name wins
    names = list(dict.fromkeys(t for t, _ in bare + combos))
    return names, np.array([unique[t] for t in names]), len(dict.fromkeys(t for t, _ in bare))


def _genome(rng: np.random.Generator, spec: SampleSpec, cat: _Catalogue,
            counts: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Genome tags, and scores for the most-rated movies: low overall, high on matching themes."""
    names, theme, n_bare = _genome_candidates()
    chosen = np.concatenate([rng.permutation(n_bare),
                             n_bare + rng.permutation(len(names) - n_bare)])[: spec.genome_tags]
    chosen = np.array(sorted(chosen, key=names.__getitem__))  # tagIds in name order, as ml-25m
    theme = theme[chosen]
    tags = pl.DataFrame({"tagId": np.arange(1, len(chosen) + 1, dtype=np.int32),
                         "tag": pl.Series([names[i] for i in chosen], dtype=pl.String)})

    top = np.sort(np.argsort(-counts, kind="stable")[: spec.genome_movies])
    shape = (len(top), len(chosen))
    themes = np.concatenate([cat.genres[top], np.zeros((len(top), 2), dtype=bool)], axis=1)
    matched = themes[:, theme]
    chance = np.where(matched, 0.04, 0.002)
    acclaimed = 0.35 / (1.0 + np.exp(2.5 - 2.5 * cat.quality[top]))
    chance[:, theme == N_GENRES] = acclaimed[:, None]
    high = rng.random(shape) < chance
    del chance
    relevance = rng.beta(1.0, 12.0, shape)
    relevance[matched] = relevance[matched] * 1.8 + 0.1
    relevance[high] = 0.5 + 0.5 * rng.beta(2.0, 1.3, int(high.sum()))
    steps = np.rint(np.clip(relevance, 0.0, 1.0) * 4000).astype(np.int64).ravel()
    del relevance, matched, high
    # Coarse + fine steps give the ml-25m look: 0.5795 beside 0.36574999999999996.
    scores = pl.DataFrame({
        "movieId": np.repeat(cat.ids[top].astype(np.int32), len(chosen)),
        "tagId": np.tile(np.arange(1, len(chosen) + 1, dtype=np.int32), len(top)),
        "relevance": (steps // 40) * 0.01 + (steps % 40) * 0.00025,
    })
    return tags, scores


# --------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> None:
    """`python -m tv5_assets.sample --out DIR [--ml25m] [--seed N ...]`."""
    parser = argparse.ArgumentParser(prog="python -m tv5_assets.sample", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ml25m", action="store_true", help="the full ml-25m shape")
    for f in fields(SampleSpec):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=None)
    args = parser.parse_args(argv)
    spec = SampleSpec.ml25m() if args.ml25m else SampleSpec()
    spec = replace(spec, **{f.name: getattr(args, f.name) for f in fields(SampleSpec)
                            if getattr(args, f.name) is not None})
    began = time.perf_counter()
    paths = write_sample_release(args.out, spec)
    for path in paths.values():
        print(f"{path}  {path.stat().st_size / 1e6:,.1f} MB")
    print(f"wrote {spec} in {time.perf_counter() - began:,.1f} s")


if __name__ == "__main__":
    main()
