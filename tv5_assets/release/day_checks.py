"""Per-partition check of a published day: does the model of the last refit still recommend what users rate now?

`served_recall_drift` warns (it never blocks: the day is already published) when the refit's hybrid vectors
find the day's new positive ratings markedly worse than `recommendation_quality` measured at the refit. Its
failure is what `refit_on_recall_drift` (release/refit.py) answers with a refit (thin wiring around
`evaluation.drift`).
"""


import warnings
from collections.abc import Iterator

import dagster as dg
import polars as pl

from tv5_assets.core.checking import check_result, latest_metadata
from tv5_assets.evaluation import drift
from tv5_assets.ingestion.day_assets import ARRIVAL_DAYS

ASSET = "day_release"
SERVED_RECALL_DRIFT = "served_recall_drift"
# A day's recall may fall this share below the refit's served recall@20 before a refit is asked for. Not measured
# yet on real days: 10 % is a first setting, above the standard error of a day of >= drift.MIN_USERS users (up to
# ~9 % of a recall near 0.25, so noise alone can still trip it now and then: a warning and a refit, never a block)
# and small enough that a real drift is refitted within days. Tune it on the replayed days' figures.
MAX_RECALL_DROP = 0.10
# where `recommendation_quality` (evaluation/assets.py) records its figures: recall@20 per scorer, and which
# scorer is the served one
QUALITY = "recommendation_quality"
RECALL_BY_SCORER, SERVED_SCORER = "recall_at_20", "served_scorer"


def refit_recall(metadata: dict[str, object] | None) -> float | None:
    """The served scorer's recall@20 in `recommendation_quality`'s metadata; None when it is not there."""
    figures, served = (metadata or {}).get(RECALL_BY_SCORER), (metadata or {}).get(SERVED_SCORER)
    if not isinstance(figures, dict) or served not in figures:
        return None
    return float(figures[served])


def rated_before(day_user_ratings: pl.DataFrame, new_ratings: pl.DataFrame) -> pl.DataFrame:
    """user_id, movie_id the day's users had rated before the day: their current rows less the day's new pairs
    (a re-rated pair was rated before, so it stays)."""
    return day_user_ratings.select(drift.PAIR).join(new_ratings.select(drift.PAIR), on=drift.PAIR, how="anti")


def _spec() -> dg.AssetCheckSpec:
    with warnings.catch_warnings():  # checks per partition are a preview feature (as in ingestion/day_checks.py)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            SERVED_RECALL_DRIFT, asset=ASSET, blocking=False, partitions_def=ARRIVAL_DAYS,
            additional_deps=("day_rating_changes", "day_user_ratings", "hybrid_user_vectors", "hybrid_movie_vectors"),
            description=f"recall@20 of the last refit's hybrid vectors on the day's new positive ratings (movies rated "
                        f"before excluded) is at most {MAX_RECALL_DROP:.0%} below the served recall@20 that "
                        f"recommendation_quality measured at the refit; warns only (a failure requests a refit)")


@dg.multi_asset_check(
    specs=[_spec()],
    ins={"day_rating_changes": dg.AssetIn("day_rating_changes"), "day_user_ratings": dg.AssetIn("day_user_ratings"),
         "hybrid_user_vectors": dg.AssetIn("hybrid_user_vectors"),
         "hybrid_movie_vectors": dg.AssetIn("hybrid_movie_vectors")},
)
def served_recall_drift(context: dg.AssetCheckExecutionContext, day_rating_changes: pl.DataFrame,
                        day_user_ratings: pl.DataFrame, hybrid_user_vectors: pl.LazyFrame,
                        hybrid_movie_vectors: pl.DataFrame) -> Iterator[dg.AssetCheckResult]:
    """The day's new ratings are the pairs it inserted (a re-rating, a late rating that lost, or a rating erased
    on arrival is not a new one); the lake's hybrid vectors are the last refit's (a day writes its own)."""
    new_ratings = day_rating_changes.filter(pl.col("change") == "inserted").select(*drift.PAIR, "rating")
    recall, users = drift.day_recall(new_ratings, hybrid_user_vectors, hybrid_movie_vectors,
                                     rated_before(day_user_ratings, new_ratings))
    refit = refit_recall(latest_metadata(context, QUALITY))
    context.log.info(f"day {context.partition_key}: recall@20 {recall:.4f} over {users} users, refit {refit}")
    yield check_result(ASSET, SERVED_RECALL_DRIFT, drift.drifted(recall, refit, MAX_RECALL_DROP, users),
                       warn_only=True)


asset_checks = [served_recall_drift]
