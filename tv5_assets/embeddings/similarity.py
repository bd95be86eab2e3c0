"""Nearest neighbours and genre coherence: the semantic sanity measures of the content vectors.

Vectors are L2-normalised, so cosine similarity is a dot product. Genre coherence is the share of
a movie's k nearest neighbours that share at least one genre with it, averaged over a fixed
seeded sample of movies; it is compared with the chance level (the same share if the neighbours
were drawn at random from the catalogue), which random vectors reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


def nearest(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(len(queries), k) row indices of the k most similar rows to each query row, best first, itself excluded."""
    scores = vectors[queries] @ vectors.T
    scores[np.arange(len(queries)), queries] = -np.inf
    k = min(k, vectors.shape[0] - 1)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    ranked = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, ranked, axis=1)


def genre_masks(genres: pl.Series) -> np.ndarray:
    """One uint64 bit set per movie, a bit per genre (MovieLens has 20 genres; at most 64 supported)."""
    vocabulary = genres.explode().drop_nulls().unique().sort()
    if vocabulary.len() > 64:
        raise ValueError(f"{vocabulary.len()} genres: at most 64 fit a bit set")
    bits = pl.DataFrame({"g": vocabulary, "bit": (2 ** np.arange(vocabulary.len(), dtype=np.uint64))})
    rows = pl.DataFrame({"genres": genres}).with_row_index("row")
    per_row = (
        rows.explode("genres")
        .join(bits, left_on="genres", right_on="g", how="inner")
        .group_by("row").agg(pl.col("bit").sum())
    )
    masks = rows.select("row").join(per_row, on="row", how="left", maintain_order="left")["bit"]
    return masks.fill_null(0).to_numpy().astype(np.uint64)  # no genres (or null): empty set


@dataclass(frozen=True)
class Coherence:
    coherence: float  # mean share of top-k neighbours sharing a genre with the query
    chance: float  # the same share for neighbours drawn at random
    queries: int


def genre_coherence(vectors: np.ndarray, masks: np.ndarray, k: int = 10, sample: int = 200,
                    seed: int = 0) -> Coherence:
    """Genre coherence of the k nearest neighbours over `sample` seeded movies that have genres."""
    candidates = np.flatnonzero(masks != 0)
    rng = np.random.default_rng(seed)
    queries = np.sort(rng.choice(candidates, size=min(sample, candidates.size), replace=False))
    neighbours = nearest(vectors, queries, k)
    shares = (masks[neighbours] & masks[queries][:, None]) != 0
    distinct, counts = np.unique(masks, return_counts=True)
    overlapping = (distinct[None, :] & masks[queries][:, None]) != 0
    chance = ((overlapping * counts[None, :]).sum(axis=1) - 1) / (masks.size - 1)  # minus the query itself
    return Coherence(float(shares.mean()), float(chance.mean()), int(queries.size))
