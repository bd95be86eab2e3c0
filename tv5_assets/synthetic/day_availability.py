"""The availability rows of the movies a day brings in, until the next full build (no Dagster here).

The full build (`availability`) fixes each platform's film count over the whole catalogue, so adding films would
move every platform's cut. Until the next rebuild redraws everything, the served rows stay and a new film is
placed against them:
- features and scores are computed over the whole served catalogue (base and new films) exactly as
  `build_availability` computes them, with the same keyed seeds per (movie, platform);
- platform p's threshold is the lowest score, under these features, of the films `served` puts on p (none: no
  threshold is reached); a new film goes on every platform whose threshold its score reaches;
- a new film that reaches none gets one home, as the coverage rule gives one: the platform where its percentile
  rank among the catalogue's scores is highest (ties: the lower platform index);
- its rows are drawn by the full build's `_rows` with those seeds, so a (film, platform) pair the full build
  over the same catalogue also chooses gets the very same row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from tv5_assets.core.checking import RuleResult
from tv5_assets.synthetic import platforms as pf
from tv5_assets.synthetic.availability import AvailabilityRules, _rows, _scores, catalogue_features
from tv5_assets.synthetic.draws import combine, key_seeds, name_seed, uniform


@dataclass(frozen=True)
class Placement:
    """Where the new films go, with what `_rows` needs to draw them (and the asset to report them)."""

    features: pl.DataFrame  # catalogue_features of the whole catalogue, sorted by movie_id
    plats: tuple[pf.Platform, ...]
    movie_row: np.ndarray  # feature row of each chosen (film, platform) pair, by movie_id then platform order
    plat: np.ndarray  # platform index of each pair
    seeds: np.ndarray  # each pair's draw seed
    thresholds: np.ndarray  # per platform: the lowest served score (inf when the platform serves no film)
    home_only: np.ndarray  # ids of the new films that reached no threshold and were given a home


def pair_seeds(features: pl.DataFrame, rules: AvailabilityRules) -> np.ndarray:
    """(films, platforms) draw seeds, as `build_availability` keys them: same rules, same seeds."""
    movie_seeds = key_seeds(rules.seed, features["movie_id"].to_list(), f"availability|{rules.digest()}")
    if not len(movie_seeds):
        return np.zeros((0, len(rules.platforms)), dtype=np.uint64)
    return np.column_stack([combine(movie_seeds, name_seed(p.name)) for p in rules.platforms])


def scores(features: pl.DataFrame, rules: AvailabilityRules, seeds: np.ndarray) -> np.ndarray:
    """(films, platforms) scores with the keyed noise of the full build."""
    noise = np.column_stack([uniform(seeds[:, j], 0) for j in range(seeds.shape[1])]) if len(seeds) \
        else np.zeros(seeds.shape)
    return _scores(features, rules, noise)


def thresholds(score: np.ndarray, ids: np.ndarray, served: pl.DataFrame, rules: AvailabilityRules) -> np.ndarray:
    """Per platform: the lowest score among the films `served` puts on it (inf if none; unknown films ignored)."""
    index = {p.name: j for j, p in enumerate(rules.platforms)}
    pairs = served.select(
        pl.col("movie_id").cast(pl.Int64),
        pl.col("platform").replace_strict(index, default=-1, return_dtype=pl.Int64).alias("plat"),
    )
    movie, plat = pairs["movie_id"].to_numpy(), pairs["plat"].to_numpy()
    row = np.minimum(np.searchsorted(ids, movie), max(len(ids) - 1, 0))
    known = (plat >= 0) & (ids[row] == movie) if len(ids) else np.zeros(len(movie), dtype=bool)
    lowest = np.full(score.shape[1], np.inf)
    np.minimum.at(lowest, plat[known], score[row[known], plat[known]])
    return lowest


def percentile_ranks(score: np.ndarray) -> np.ndarray:
    """Each film's rank on each platform (0 = lowest score; ties: the lower row), as the coverage rule ranks."""
    ranks = np.empty(score.shape, dtype=np.int64)
    for j in range(score.shape[1]):
        ranks[np.argsort(score[:, j], kind="stable"), j] = np.arange(score.shape[0])
    return ranks


def place_new_movies(catalogue: pl.DataFrame, counts: pl.DataFrame, served: pl.DataFrame, new_ids: pl.Series,
                     rules: AvailabilityRules) -> Placement:
    """The (film, platform) pairs of the new films and their seeds, by the rule of the module docstring."""
    if catalogue["movie_id"].is_duplicated().any():
        raise ValueError("catalogue has duplicate movie_id: its rows would depend on their order")
    plats = rules.platforms
    new = np.unique(new_ids.drop_nulls().cast(pl.Int64).to_numpy())
    empty = np.zeros(0, dtype=np.int64)
    if not len(new):
        features = catalogue_features(catalogue.clear(), counts.clear())
        return Placement(features, plats, empty, empty, np.zeros(0, dtype=np.uint64),
                         np.full(len(plats), np.inf), empty)
    features = catalogue_features(catalogue, counts)
    ids = features["movie_id"].cast(pl.Int64).to_numpy()
    rows = np.minimum(np.searchsorted(ids, new), len(ids) - 1)
    if not np.array_equal(ids[rows], new):
        raise ValueError(f"new movie ids not in the catalogue: {new[ids[rows] != new][:10].tolist()}")
    seeds = pair_seeds(features, rules)
    score = scores(features, rules, seeds)
    lowest = thresholds(score, ids, served, rules)
    chosen = score[rows] >= lowest
    homeless = ~chosen.any(axis=1)
    chosen[np.flatnonzero(homeless), np.argmax(percentile_ranks(score)[rows[homeless]], axis=1)] = True
    pair, plat = np.nonzero(chosen)  # rows are in movie_id order, so pairs come by movie_id then platform
    movie_row = rows[pair]
    return Placement(features, plats, movie_row, plat, seeds[movie_row, plat], lowest, new[homeless])


def placement_rows(placement: Placement, rules: AvailabilityRules) -> pl.DataFrame:
    """The placed pairs' rows, drawn as the full build draws them (its schema and dtypes)."""
    return _rows(placement.features, placement.plats, rules, placement.movie_row, placement.plat, placement.seeds)


def new_movie_availability(catalogue: pl.DataFrame, counts: pl.DataFrame, served: pl.DataFrame, new_ids: pl.Series,
                           rules: AvailabilityRules) -> pl.DataFrame:
    """The availability rows of the new films (sorted by movie_id, platform order): the served rows stay as they
    are until the next full build, so no other film moves."""
    return placement_rows(place_new_movies(catalogue, counts, served, new_ids, rules), rules)


def covers_exactly(rows: pl.DataFrame, new_ids: pl.Series) -> RuleResult:
    """Each new film is on at least one platform, and no other film has a row (the served rows stay as they are)."""
    placed = rows["movie_id"].unique()
    missing = new_ids.filter(~new_ids.is_in(placed.implode()))
    other = placed.filter(~placed.is_in(new_ids.implode()))
    meta = {"new_movies": new_ids.len(), "rows": rows.height, "missing": missing.len(), "other_movies": other.len()}
    if missing.len() or other.len():
        return RuleResult(False, f"{missing.len()} new movie(s) on no platform (e.g. {missing.head(5).to_list()}), "
                          f"{other.len()} other movie(s) with rows (e.g. {other.head(5).to_list()})", meta)
    return RuleResult(True, f"each of the {new_ids.len()} new movies is on a platform", meta)
