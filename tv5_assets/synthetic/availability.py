"""Which platform carries which film, where, in what quality and languages, and when.

Selection, per platform p with target share s_p of the N films (k_p = round(s_p x N) films, exact):
1. Each film gets a score on each platform: popularity_weight x p.popularity x popularity
   + recency_weight x p.recency x recency + affinity_weight x (p's affinities . film features)
   + noise_weight x keyed noise. Popularity and recency are percentile ranks (ratings count, year);
   features: kids (Children/Animation), french (French-language title), non_english, classic
   (before 1980), arthouse (non-English, Drama/Documentary/Film-Noir/War, and obscurity).
2. Coverage: shares drawn independently would leave ~16% of films on no platform. So the
   ceil(min_coverage x N) films that fit some platform best (highest percentile on any platform) are
   each given a "home" platform first: platforms, smallest share first, take their best-scoring
   home-less candidates, each up to its share of the coverage quota (k_p x covered / sum k).
3. Each platform fills its remaining k_p - home_p slots with its best-scoring films among the rest.
   Popular, recent films score high everywhere, so they end up on several services; the long tail
   gets one home, which is mostly a niche platform (MUBI, Criterion, TV5MONDE, Disney+).
Per (film, platform) row: regions (each region of the platform's footprint with probability
0.55 + 0.4 x popularity, at least the home market), quality (HD always; 4K by the platform's UHD
rate, scaled by recency; HDR and Dolby Atmos only with 4K), audio (original language when known,
dubs from the platform's dub languages more often for popular films; never empty), subtitles (each
of the platform's languages at its rate; never empty), available_from (uniform between the later of
release and platform launch, and the catalogue date) and available_until (from + a window).
Every draw is keyed by (seed, rule digest, movie_id, platform) (MD5 of the first three, mixed with
the platform's, see `draws`): the same rules give the same rows whatever the order of the inputs,
and any change of a rule re-draws, so the data version moves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tv5_assets.synthetic import platforms as pf
from tv5_assets.synthetic import regions as rg
from tv5_assets.synthetic.behaviour import movie_features
from tv5_assets.synthetic.draws import combine, key_seeds, name_seed, uniform

_SERIOUS_GENRES = ("Drama", "Documentary", "Film-Noir", "War")
_AFFINITY_FEATURES = ("kids", "french", "non_english", "classic", "arthouse")
_REGION_BASE, _UHD, _HDR, _ATMOS, _FROM, _WINDOW, _DUB_BASE, _SUB_BASE = 10, 30, 31, 32, 33, 34, 40, 60


@dataclass(frozen=True)
class AvailabilityRules:
    """The rule parameters (the asset's config), validated."""

    seed: int = 1_906
    shares: dict[str, float] = field(default_factory=lambda: dict(pf.DEFAULT_SHARES))
    min_coverage: float = 0.90
    popularity_weight: float = 1.0
    recency_weight: float = 0.6
    affinity_weight: float = 1.0
    noise_weight: float = 0.8
    catalogue_date: dt.date = dt.date(2025, 1, 1)
    min_window_days: int = 180
    max_window_days: int = 1_460

    def __post_init__(self) -> None:
        unknown = set(self.shares) - set(pf.PLATFORM_NAMES)
        if unknown or not self.shares:
            raise ValueError(f"unknown platform(s) {sorted(unknown)}; known: {list(pf.PLATFORM_NAMES)}")
        if not all(0.0 <= s <= 1.0 for s in self.shares.values()):
            raise ValueError(f"platform shares must lie in [0, 1]: {self.shares}")
        if not 0.0 <= self.min_coverage <= min(1.0, sum(self.shares.values())):
            raise ValueError(f"min_coverage {self.min_coverage} must lie in [0, sum of shares]")
        if not 1 <= self.min_window_days <= self.max_window_days:
            raise ValueError("windows need 1 <= min_window_days <= max_window_days")

    @property
    def platforms(self) -> tuple[pf.Platform, ...]:
        return tuple(p for p in pf.PLATFORMS if p.name in self.shares)

    def digest(self) -> str:
        """A hash of every rule but the seed: part of each draw's key."""
        rules = {k: v for k, v in dataclasses.asdict(self).items() if k != "seed"}
        return hashlib.md5(json.dumps(rules, sort_keys=True, default=str).encode()).hexdigest()[:12]


def rating_counts(ratings: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """movie_id, ratings: how many ratings each rated movie has (a bincount: no 25M-row group-by)."""
    ids = ratings.lazy().select("movie_id").collect()["movie_id"].to_numpy()
    counts = np.bincount(ids) if len(ids) else np.zeros(0, dtype=np.int64)
    rated = np.flatnonzero(counts)
    return pl.DataFrame({"movie_id": rated.astype(np.int32), "ratings": counts[rated].astype(np.int64)})


def _percentile(values: pl.Expr) -> pl.Expr:
    return (values.rank("average") / pl.len()).fill_null(0.5)


def catalogue_features(movies: pl.DataFrame, rating_counts: pl.DataFrame) -> pl.DataFrame:
    """Per movie (sorted by movie_id): popularity and recency percentiles and the affinity features."""
    return (
        movie_features(movies)
        .join(rating_counts.select("movie_id", "ratings"), on="movie_id", how="left")
        .sort("movie_id")
        .with_columns(
            _percentile(pl.col("ratings").fill_null(0)).alias("popularity"),
            _percentile(pl.col("year")).alias("recency"),
            (pl.col("original_language") == "fr").fill_null(False).alias("french"),
            pl.col("genres").list.eval(pl.element().is_in(_SERIOUS_GENRES)).list.any().fill_null(False)
            .alias("serious"),
        )
        .with_columns(
            (0.4 * pl.col("non_english") + 0.3 * pl.col("serious") + 0.3 * (1.0 - pl.col("popularity")))
            .alias("arthouse"),
        )
    )


def _scores(features: pl.DataFrame, rules: AvailabilityRules, noise: np.ndarray) -> np.ndarray:
    popularity, recency = features["popularity"].to_numpy(), features["recency"].to_numpy()
    feature = {name: features[name].cast(pl.Float64).to_numpy() for name in _AFFINITY_FEATURES}
    columns = []
    for j, platform in enumerate(rules.platforms):
        fit = sum(w * feature[f] for f, w in platform.affinity.items()) if platform.affinity else 0.0
        columns.append(rules.popularity_weight * platform.popularity * popularity
                       + rules.recency_weight * platform.recency * recency
                       + rules.affinity_weight * fit + rules.noise_weight * noise[:, j])
    return np.column_stack(columns)


def _largest_remainder(exact: np.ndarray, total: int) -> np.ndarray:
    whole = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(exact)), -(exact - whole)))
    whole[order[: max(total - int(whole.sum()), 0)]] += 1
    return whole


def _best(score: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    """The k rows of `pool` with the highest score (ties: lower row first)."""
    return pool[np.lexsort((pool, -score[pool]))[:k]]


def select(score: np.ndarray, counts: np.ndarray, covered: int) -> np.ndarray:
    """Boolean (films, platforms): exactly counts[p] films per platform, at least `covered` films on one."""
    n, n_platforms = score.shape
    ranks = np.empty_like(score)
    for j in range(n_platforms):
        ranks[np.argsort(score[:, j], kind="stable"), j] = np.arange(n)
    candidates = _best(ranks.max(axis=1), np.arange(n), covered)
    home_quota = _largest_remainder(counts * covered / max(counts.sum(), 1), covered)
    chosen = np.zeros((n, n_platforms), dtype=bool)
    homeless = np.ones(n, dtype=bool)
    for j in np.lexsort((np.arange(n_platforms), counts)):  # smallest share first
        home = _best(score[:, j], candidates[homeless[candidates]], home_quota[j])
        chosen[home, j], homeless[home] = True, False
    for j in range(n_platforms):
        extra = _best(score[:, j], np.flatnonzero(~chosen[:, j]), counts[j] - int(chosen[:, j].sum()))
        chosen[extra, j] = True
    return chosen


def _string_lists(mask: np.ndarray, values: tuple[str, ...], name: str) -> pl.Series:
    """Row i: the values whose column is set in mask[i], in `values` order."""
    flags = pl.DataFrame({value: mask[:, i] for i, value in enumerate(values)})
    return flags.select(
        pl.concat_list([pl.when(pl.col(v)).then(pl.lit(v)) for v in values]).list.drop_nulls().alias(name)
    ).to_series()


def build_availability(movies: pl.DataFrame, rating_counts: pl.DataFrame, rules: AvailabilityRules) -> pl.DataFrame:
    """One row per (movie, platform) where the movie is available; sorted by movie_id, platform order."""
    features = catalogue_features(movies, rating_counts)
    plats = rules.platforms
    n, n_platforms = features.height, len(plats)
    movie_seeds = key_seeds(rules.seed, features["movie_id"].to_list(), f"availability|{rules.digest()}")
    seeds = np.column_stack([combine(movie_seeds, name_seed(p.name)) for p in plats]) if n \
        else np.zeros((0, n_platforms), dtype=np.uint64)
    noise = np.column_stack([uniform(seeds[:, j], 0) for j in range(n_platforms)]) if n else np.zeros((0, n_platforms))
    counts = np.array([round(rules.shares[p.name] * n) for p in plats], dtype=np.int64)
    chosen = select(_scores(features, rules, noise), counts, int(np.ceil(rules.min_coverage * n - 1e-9)))
    movie_row, plat = np.nonzero(chosen)
    return _rows(features, plats, rules, movie_row, plat, seeds[movie_row, plat])


def _rows(features: pl.DataFrame, plats: tuple[pf.Platform, ...], rules: AvailabilityRules, movie_row: np.ndarray,
          plat: np.ndarray, seeds: np.ndarray) -> pl.DataFrame:
    m = len(movie_row)
    pop = features["popularity"].to_numpy()[movie_row]
    year = features["year"].fill_null(1990).to_numpy()[movie_row]

    footprint = np.array([[region in p.regions for region in rg.REGIONS] for p in plats], dtype=bool)[plat]
    home = np.array([[region == p.regions[0] for region in rg.REGIONS] for p in plats], dtype=bool)[plat]
    in_region = np.column_stack([uniform(seeds, _REGION_BASE + i) for i in range(len(rg.REGIONS))]) \
        < (0.55 + 0.4 * pop)[:, None] if m else np.zeros((0, len(rg.REGIONS)), dtype=bool)
    regions = footprint & in_region
    regions |= home & ~regions.any(axis=1, keepdims=True)

    uhd_rate = np.array([p.uhd for p in plats])[plat] * np.where(year >= 2014, 1.0, np.where(year >= 2000, 0.5, 0.2))
    uhd = uniform(seeds, _UHD) < uhd_rate
    quality = np.column_stack([np.ones(m, dtype=bool), uhd, uhd & (uniform(seeds, _HDR) < 0.75),
                               uhd & (uniform(seeds, _ATMOS) < 0.55)])

    offered = {lang for p in plats for lang, _ in p.subtitles} | {lang for p in plats for lang in p.dub_languages}
    languages = tuple(sorted(offered | {"en"} | set(features["original_language"].drop_nulls().to_list())))
    lang_index = {lang: i for i, lang in enumerate(languages)}
    original = features["original_language"].replace_strict(lang_index, default=-1, return_dtype=pl.Int64)
    original = original.to_numpy()[movie_row]
    audio = np.zeros((m, len(languages)), dtype=bool)
    audio[np.flatnonzero(original >= 0), original[original >= 0]] = True
    dub_rate = np.array([p.dubs for p in plats])[plat] * (0.2 + 0.8 * pop)
    subtitles = np.zeros_like(audio)
    first_dub = np.array([lang_index[p.dub_languages[0]] for p in plats])[plat]
    first_sub = np.array([lang_index[p.subtitles[0][0]] for p in plats])[plat]
    for lang, i in lang_index.items():
        dubbed = np.array([lang in p.dub_languages for p in plats])[plat]
        audio[:, i] |= dubbed & (uniform(seeds, _DUB_BASE + i) < dub_rate)
        rate = np.array([dict(p.subtitles).get(lang, 0.0) for p in plats])[plat]
        subtitles[:, i] = uniform(seeds, _SUB_BASE + i) < rate
    rows = np.arange(m)
    audio[rows[~audio.any(axis=1)], first_dub[~audio.any(axis=1)]] = True
    subtitles[rows[~subtitles.any(axis=1)], first_sub[~subtitles.any(axis=1)]] = True

    launched = np.array([np.datetime64(p.launched, "D") for p in plats])[plat]
    released = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    end = np.datetime64(rules.catalogue_date, "D")
    start = np.minimum(np.maximum(launched, released), end - np.timedelta64(1, "D"))
    span = (end - start).astype(np.int64)
    available_from = start + np.floor(uniform(seeds, _FROM) * span).astype(np.int64).astype("timedelta64[D]")
    window = rules.min_window_days + np.floor(
        uniform(seeds, _WINDOW) * (rules.max_window_days - rules.min_window_days + 1)).astype(np.int64)
    names = np.array([p.name for p in plats], dtype=object)[plat]
    models = np.array([p.business_model for p in plats], dtype=object)[plat]
    return pl.DataFrame({
        "movie_id": features["movie_id"].to_numpy()[movie_row].astype(np.int32),
        "platform": pl.Series(names, dtype=pl.String),
        "business_model": pl.Series(models, dtype=pl.String),
        "regions": _string_lists(regions, rg.REGIONS, "regions"),
        "quality": _string_lists(quality, pf.QUALITIES, "quality"),
        "audio_languages": _string_lists(audio, languages, "audio_languages"),
        "subtitle_languages": _string_lists(subtitles, languages, "subtitle_languages"),
        "available_from": pl.Series(available_from, dtype=pl.Date),
        "available_until": pl.Series(available_from + window.astype("timedelta64[D]"), dtype=pl.Date),
    })
