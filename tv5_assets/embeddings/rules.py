"""Validation rules over vector frames, as plain functions (the asset checks only wrap them)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from tv5_assets.core.checking import RuleResult
from tv5_assets.embeddings.similarity import genre_coherence, genre_masks, nearest

NORM_TOLERANCE = 1e-3
# Coherence must close at least this share of the gap between chance and perfect (1.0).
# Random vectors sit at chance (lift ~0 +- 0.03); all-MiniLM-L6-v2 reaches ~0.8 on ml-latest-small
# (coherence ~0.90, chance ~0.43) and ~0.45 on the generated sample.
MIN_COHERENCE_LIFT = 0.25


def _matrix(frame: pl.DataFrame) -> np.ndarray:
    return frame["vector"].to_numpy() if frame.height else np.empty((0, 0), dtype=np.float32)


def vector_dimension(frame: pl.DataFrame, expected: int | None) -> RuleResult:
    """`vector` is Array(Float32, expected): the model's dimension, as its materialization recorded it."""
    dtype = frame.schema.get("vector")
    meta = {"dtype": str(dtype), "expected_dimension": expected}
    if expected is None:
        return RuleResult(False, "the model's dimension was not recorded by the last materialization", meta)
    if dtype != pl.Array(pl.Float32, expected):
        return RuleResult(False, f"vector column is {dtype}, expected Array(Float32, {expected})", meta)
    return RuleResult(True, f"every vector is float32 with {expected} dimensions", meta)


def finite_vectors(frame: pl.DataFrame) -> RuleResult:
    matrix = _matrix(frame)
    bad_rows = int((~np.isfinite(matrix)).any(axis=1).sum()) if matrix.size else 0
    if bad_rows:
        return RuleResult(False, f"{bad_rows} vector(s) hold NaN or Inf", {"non_finite_vectors": bad_rows})
    return RuleResult(True, f"all {frame.height} vectors are finite", {"non_finite_vectors": 0})


def unit_norms(frame: pl.DataFrame, tolerance: float = NORM_TOLERANCE) -> RuleResult:
    """Every vector has L2 norm within `tolerance` of 1 (downstream similarity is a plain dot product)."""
    matrix = _matrix(frame)
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1) if matrix.size else np.ones(0)
    off = ~(np.abs(norms - 1.0) <= tolerance)  # NaN norms count as off
    meta = {"off_norm_vectors": int(off.sum()), "min_norm": float(np.nanmin(norms)) if norms.size else None,
            "max_norm": float(np.nanmax(norms)) if norms.size else None}
    if off.any():
        return RuleResult(False, f"{int(off.sum())} vector(s) have a norm further than {tolerance} from 1, "
                                 f"norms range {meta['min_norm']:.4g}..{meta['max_norm']:.4g}", meta)
    return RuleResult(True, f"all {frame.height} norms within {tolerance} of 1", meta)


def one_vector_per_key(frame: pl.DataFrame, key: str, expected: pl.Series, what: str) -> RuleResult:
    """Exactly one row per value of `expected` (e.g. every movie, every rating user) and no other."""
    keys = frame[key]
    expected = expected.unique()
    duplicated = int(keys.is_duplicated().sum())
    missing = expected.filter(~expected.is_in(keys.implode()))
    extra = keys.unique().filter(~keys.unique().is_in(expected.implode()))
    meta = {"rows": frame.height, "expected": expected.len(), "duplicated_rows": duplicated,
            "missing": missing.len(), "unexpected": extra.len()}
    if duplicated or missing.len() or extra.len():
        return RuleResult(False, f"{what}: {duplicated} duplicated row(s), {missing.len()} without a vector "
                                 f"(e.g. {missing.sort().head(5).to_list()}), {extra.len()} unexpected "
                                 f"(e.g. {extra.sort().head(5).to_list()})", meta)
    return RuleResult(True, f"exactly one vector for each of the {expected.len()} {what}", meta)


def model_recorded(metadata: Mapping[str, object]) -> RuleResult:
    """The materialization says which model made the vectors (the cache and the stores depend on it)."""
    model, dimension = metadata.get("model"), metadata.get("dimension")
    if not model or not isinstance(dimension, int):
        return RuleResult(False, f"the last materialization recorded model={model!r}, dimension={dimension!r}")
    return RuleResult(True, f"made by {model} ({dimension} dimensions)", {"model": model, "dimension": dimension})


def neighbour_in_top_k(vectors: pl.DataFrame, movies: pl.DataFrame, query_title: str, expected_title: str,
                       k: int = 10) -> RuleResult:
    """`expected_title` is among the k nearest neighbours of `query_title` (raw MovieLens titles).

    Only applicable to a catalogue holding both titles (real MovieLens releases); passes, saying so,
    on any other catalogue, e.g. the generated sample.
    """
    frame = vectors.join(movies.select("movie_id", "title"), on="movie_id", how="left")
    titles = frame["title"]
    query, expected = titles.index_of(query_title), titles.index_of(expected_title)
    if query is None or expected is None:
        return RuleResult(True, f"not applicable: {query_title!r} or {expected_title!r} is not in the catalogue",
                          {"applicable": False})
    found = nearest(_matrix(frame), np.array([query]), k)[0]
    neighbours = titles.gather(found).to_list()
    meta = {"applicable": True, "neighbours": neighbours}
    if expected in found:
        rank = int(np.flatnonzero(found == expected)[0]) + 1
        return RuleResult(True, f"{expected_title!r} is neighbour #{rank} of {query_title!r}", {**meta, "rank": rank})
    return RuleResult(False, f"{expected_title!r} is not among the {k} nearest neighbours of {query_title!r}: "
                             f"{neighbours}", meta)


def genre_coherent(vectors: pl.DataFrame, movies: pl.DataFrame, k: int = 10, sample: int = 200, seed: int = 0,
                   min_lift: float = MIN_COHERENCE_LIFT) -> RuleResult:
    """Neighbours share genres well above chance: coherence >= chance + min_lift * (1 - chance)."""
    frame = vectors.join(movies.select("movie_id", "genres"), on="movie_id", how="left")
    masks = genre_masks(frame["genres"])
    if frame.height < 2 or not (masks != 0).any():
        return RuleResult(False, "genre coherence needs at least two movies with genres", {"queries": 0})
    result = genre_coherence(_matrix(frame), masks, k, sample, seed)
    floor = result.chance + min_lift * (1 - result.chance)
    lift = (result.coherence - result.chance) / (1 - result.chance) if result.chance < 1 else 0.0
    meta = {"genre_coherence": round(result.coherence, 4), "chance_level": round(result.chance, 4),
            "floor": round(floor, 4), "lift": round(lift, 4), "queries": result.queries, "k": k}
    if result.coherence < floor:
        return RuleResult(False, f"genre coherence {result.coherence:.3f} is below the floor {floor:.3f} "
                                 f"(chance {result.chance:.3f}): the vectors barely reflect genres", meta)
    return RuleResult(True, f"genre coherence {result.coherence:.3f} >= floor {floor:.3f} (chance "
                            f"{result.chance:.3f}) over {result.queries} movies", meta)
