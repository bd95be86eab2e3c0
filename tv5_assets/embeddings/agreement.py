"""How closely one set of vectors reproduces another (int8 against fp32): pure numpy, no Dagster.

- cosine of each text's two vectors (min and mean);
- top-k neighbour agreement over the whole catalogue (each movie against every other one):
  `same_set`: the share of movies whose k nearest neighbours are exactly the reference's;
  `overlap`: the mean share of the reference's k neighbours that are found (recall@k);
  `within_tie`: the share of movies whose k neighbours all lie within `tie` (reference cosine) of
  the reference's k-th neighbour, i.e. differ from it only among near-ties. On MovieLens texts
  without Tag Genome tags many movies share their genres, so the k-th and (k+1)-th neighbours of
  the reference are often closer than any quantization error (median gap ~2e-3 on ml-latest-small).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    texts: int
    cosine_min: float
    cosine_mean: float
    below: int  # texts whose cosine is under `floor`
    floor: float
    k: int
    same_set: float
    overlap: float
    within_tie: float
    tie: float
    median_kth_gap: float  # reference: median cosine gap between the k-th and (k+1)-th neighbour

    def __str__(self) -> str:
        return (f"{self.texts:,} texts: cosine min {self.cosine_min:.5f} mean {self.cosine_mean:.5f} "
                f"({self.below} below {self.floor}); top-{self.k} neighbours: identical set for "
                f"{self.same_set:.1%} of movies, overlap {self.overlap:.1%}, within {self.tie:g} of a tie "
                f"{self.within_tie:.1%} (reference median gap k-th/k+1-th {self.median_kth_gap:.1e})")


def top_k(vectors: np.ndarray, k: int, block: int = 2_048) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarities) of each row's k+1 nearest other rows, by cosine (rows L2-normalised)."""
    n = len(vectors)
    indices = np.empty((n, k + 1), dtype=np.int64)
    sims = np.empty((n, k + 1), dtype=np.float32)
    for begin in range(0, n, block):
        scores = vectors[begin:begin + block] @ vectors.T
        rows = np.arange(scores.shape[0])
        scores[rows, begin + rows] = -np.inf  # not its own neighbour
        part = np.argpartition(-scores, k + 1, axis=1)[:, :k + 1]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        indices[begin:begin + block] = np.take_along_axis(part, order, axis=1)
        sims[begin:begin + block] = np.take_along_axis(scores, indices[begin:begin + block], axis=1)
    return indices, sims


def agreement(reference: np.ndarray, candidate: np.ndarray, k: int = 10, floor: float = 0.99,
              tie: float = 1e-3) -> Agreement:
    """Compare `candidate` vectors with `reference` vectors of the same texts (both (n, d), L2-normalised)."""
    reference = np.asarray(reference, dtype=np.float32)
    candidate = np.asarray(candidate, dtype=np.float32)
    cosine = np.sum(reference * candidate, axis=1)
    ref_idx, ref_sim = top_k(reference, k)
    cand_idx, _ = top_k(candidate, k)
    ref_sets = ref_idx[:, :k]
    same = np.array([set(a) == set(b) for a, b in zip(ref_sets, cand_idx[:, :k])])
    overlap = np.array([len(set(a) & set(b)) / k for a, b in zip(ref_sets, cand_idx[:, :k])])
    # the reference similarity of each candidate neighbour, against the reference's k-th
    cand_ref_sim = np.einsum("nd,nkd->nk", reference, reference[cand_idx[:, :k]])
    within = cand_ref_sim.min(axis=1) >= ref_sim[:, k - 1] - tie
    return Agreement(
        texts=len(reference), cosine_min=float(cosine.min()), cosine_mean=float(cosine.mean()),
        below=int((cosine < floor).sum()), floor=floor, k=k, same_set=float(same.mean()),
        overlap=float(overlap.mean()), within_tie=float(within.mean()), tie=tie,
        median_kth_gap=float(np.median(ref_sim[:, k - 1] - ref_sim[:, k])),
    )
