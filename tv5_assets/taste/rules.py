"""Validation rules of the taste stage that the embeddings stage's rules do not already cover."""

from __future__ import annotations

import numpy as np
import polars as pl

from tv5_assets.core.checking import RuleResult


def recomputed_identically(stored: pl.DataFrame, recomputed: pl.DataFrame, key: str) -> RuleResult:
    """The stored vectors of a sample of keys equal, bit for bit, the same vectors computed again from the inputs.

    Catches non-determinism (thread races, unseeded draws) and vectors written from inputs other than the
    stored ones.
    """
    if recomputed.height == 0:
        return RuleResult(False, "nothing was recomputed: the sample is empty", {"sampled": 0})
    joined = recomputed.join(stored.select(key, pl.col("vector").alias("stored")), on=key, how="left")
    missing = int(joined["stored"].is_null().sum())
    present = joined.drop_nulls("stored")
    again = np.asarray(present["vector"].to_numpy(), np.float32)
    kept = np.asarray(present["stored"].to_numpy(), np.float32)
    differing = ~np.all(again == kept, axis=1) if len(kept) else np.zeros(0, bool)
    largest = float(np.abs(again - kept).max()) if len(kept) else 0.0
    passed = missing == 0 and not differing.any()
    return RuleResult(passed, f"{recomputed.height} sampled {key}s recomputed: {int(differing.sum())} differ "
                              f"(largest difference {largest:.3g}), {missing} missing from the asset",
                      {"sampled": recomputed.height, "differing": int(differing.sum()), "missing": missing,
                       "largest_difference": largest,
                       "examples": present.filter(pl.Series(differing))[key].head(10).to_list()})


def sample_keys(keys: pl.Series, size: int, seed: int) -> pl.Series:
    """Up to `size` keys, seeded, sorted."""
    if keys.len() <= size:
        return keys.sort()
    return keys.sample(size, seed=seed).sort()


def hybrid_movie_parts(frame: pl.DataFrame, content_dim: int, tolerance: float = 1e-3) -> RuleResult:
    """Every hybrid movie vector is [unit content part, collaborative part of norm <= 1] (the score's scale)."""
    vectors = np.asarray(frame["vector"].to_numpy(), np.float32) if frame.height else np.zeros((0, content_dim + 1))
    content = np.linalg.norm(vectors[:, :content_dim], axis=1)
    collaborative = np.linalg.norm(vectors[:, content_dim:], axis=1)
    bad = (np.abs(content - 1) > tolerance) | (collaborative > 1 + tolerance) | ~np.isfinite(content + collaborative)
    examples = frame.filter(pl.Series(bad))["movie_id"].head(10).to_list() if frame.height else []
    return RuleResult(not bad.any(), f"{int(bad.sum())} of {frame.height} movies break the layout (content part "
                                     f"norm 1 +- {tolerance}, collaborative part norm <= 1)",
                      {"broken": int(bad.sum()), "examples": examples,
                       "content_norm_range": [float(content.min(initial=1)), float(content.max(initial=1))],
                       "collaborative_norm_max": float(collaborative.max(initial=0))})
