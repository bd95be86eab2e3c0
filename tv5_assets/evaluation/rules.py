"""What the quality checks decide, on the evaluation table (scorer, segment, recall@K, ...)."""

from __future__ import annotations

import polars as pl

from tv5_assets.core.checking import RuleResult
from tv5_assets.evaluation.evaluate import POPULAR, SERVED, SERVED_ANN, SERVED_SEARCHED_USERS

ALL_USERS = "all users"


def _figure(table: pl.DataFrame, scorer: str, metric: str) -> float | None:
    row = table.filter((pl.col("scorer") == scorer) & (pl.col("segment") == ALL_USERS))
    return float(row[metric][0]) if row.height else None


def served_scorer(table: pl.DataFrame) -> str:
    """The ANN-searched hybrid when the evaluation searched every evaluated user through Milvus; else (no
    search, or a searched subset: compared apart by `ann_agrees_with_exact`) the exact ranking of all of them."""
    searched_all = _figure(table, SERVED_ANN, "users") is not None and _figure(table, SERVED_SEARCHED_USERS,
                                                                                "users") is None
    return SERVED_ANN if searched_all else SERVED


def served_beats_most_popular(table: pl.DataFrame, metric: str = "recall@20") -> RuleResult:
    """The served vectors find more held-out positives than one fixed most-popular list."""
    scorer = served_scorer(table)
    served, popular = _figure(table, scorer, metric), _figure(table, POPULAR, metric)
    if served is None or popular is None:
        return RuleResult(False, f"the table lacks {scorer!r} or {POPULAR!r}", {"scorers": table["scorer"].unique().to_list()})
    ratio = served / popular if popular else float("inf")
    return RuleResult(served > popular, f"{scorer} {metric} {served:.4f} vs {POPULAR} {popular:.4f} ({ratio:.2f}x)",
                      {"served": served, "most_popular": popular, "ratio": round(ratio, 4), "scorer": scorer})


def ann_agrees_with_exact(table: pl.DataFrame, minimum: float = 0.95, metric: str = "recall@20") -> RuleResult:
    """Searching the served vectors through Milvus keeps at least `minimum` of the exact ranking's figure."""
    same_users = _figure(table, SERVED_SEARCHED_USERS, metric)  # present when only a subset was searched
    ann, exact = _figure(table, SERVED_ANN, metric), same_users if same_users is not None else _figure(
        table, SERVED, metric)
    if ann is None or exact is None:
        return RuleResult(False, "the evaluation did not search Milvus (ann_search off) or lacks the exact ranking")
    ratio = ann / exact if exact else 1.0
    return RuleResult(ratio >= minimum, f"{metric} through Milvus {ann:.4f} vs exact numpy {exact:.4f} "
                                        f"({ratio:.3f}, minimum {minimum})",
                      {"ann": ann, "exact": exact, "ratio": round(ratio, 4), "minimum": minimum})
