"""Evaluation stage: `recommendation_quality`, the graph's vectors measured as a recommender uses them
(thin Dagster wiring around `evaluate`)."""


import time

import dagster as dg
import polars as pl
from pydantic import Field

from tv5_assets.core import charts
from tv5_assets.core.metadata import markdown_table
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.core.versioning import versioned_asset
from tv5_assets.evaluation import evaluate as evaluation
from tv5_assets.evaluation import rules
from tv5_assets.evaluation.ann import milvus_top
from tv5_assets.evaluation.split import SplitSettings
from tv5_assets.vector_store.resources import MILVUS_STEP_TAGS, MilvusResource

GROUP = "evaluation"
OWNERS = ["team:data-platform"]
HEADLINE = "recall@20"
DEFAULTS = SplitSettings()


class QualityConfig(dg.Config):
    holdout: float = Field(default=DEFAULTS.holdout, gt=0, lt=1,
                           description="each user's last share of ratings (by timestamp) held out")
    positive_threshold: float = Field(default=DEFAULTS.positive_threshold,
                                      description="held-out ratings at or above it are the ones to find")
    max_users: int = Field(default=DEFAULTS.max_users, gt=0,
                           description="users evaluated (a seeded sample, with all their ratings, when there are more)")
    seed: int = DEFAULTS.seed
    ann_search: bool = Field(default=True, description="also search the served hybrid through Milvus (the "
                             "`milvus` resource: Lite by default, a server with TV5_MILVUS_URI)")
    ann_max_users: int = Field(default=evaluation.EvaluationSettings.ann_max_users, gt=0,
                               description="users searched through Milvus (a seeded subset of the evaluated "
                                           "users when there are more; the exact ranking of the same users is "
                                           "reported beside it)")


def quality_chart(table: pl.DataFrame) -> str:
    rows = table.filter(pl.col("segment") == "all users")
    return charts.bar_chart(rows["scorer"].to_list(), rows[HEADLINE].to_list(),
                            f"{HEADLINE}, all users (temporal split)", HEADLINE)


@versioned_asset(
    group_name=GROUP,
    kinds={"numpy", "milvus"},
    op_tags=MILVUS_STEP_TAGS,
    owners=OWNERS,
    description=(
        "How well the vectors recommend, measured as the 'for you' row uses them. Per-user temporal split: each "
        "user's last 20 % of ratings by time held out, positives = held-out ratings >= 4.0; every scorer fitted "
        "on the training part only (rating-derived vectors refitted; content vectors reused); every movie of "
        "content_vectors ranked, movies the user rated in train excluded. Scorers: random, most popular, the "
        "seed's content user vectors, collaborative ALS, the served hybrid (exact numpy ranking, and the same "
        "vectors searched through Milvus, for at most `ann_max_users` (2,000) of them), and EASE (lambda 250) "
        "as the reference. Figures: recall@K and "
        "NDCG@K for K = 10, 20, 50 and catalogue coverage, for all users, cold users (<= 20 train ratings), "
        "rare movies (<= 10 train ratings) and movies unrated in train. The hybrid's content weight is also "
        "chosen on a validation split carved from train (table `validation`). Above `max_users` (10,000) a "
        "seeded user sample is evaluated."
    ),
)
def recommendation_quality(context: dg.AssetExecutionContext, config: QualityConfig, milvus: MilvusResource,
                           ratings: pl.LazyFrame, content_vectors: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    settings = evaluation.EvaluationSettings(split=SplitSettings(config.holdout, config.positive_threshold,
                                                                 config.max_users, config.seed),
                                                      ann_max_users=config.ann_max_users, seed=config.seed)
    ann, counters = milvus_top(milvus, context.log.info) if config.ann_search else (None, {})
    result = evaluation.evaluate(ratings, content_vectors.select("movie_id", "vector"), settings, ann_top=ann,
                                 log=context.log.info)
    table = result.table
    headline = {scorer: round(result.figure(scorer), 4) for scorer in table["scorer"].unique(maintain_order=True)}
    popular, reference = result.figure(evaluation.POPULAR), result.figure(evaluation.REFERENCE)
    served_scorer = rules.served_scorer(table)
    served = result.figure(served_scorer)
    shown = table.select("scorer", "segment", "users", *[pl.col(c).round(4) for c in table.columns[3:]])
    return dg.Output(table, data_version=dg.DataVersion(frame_fingerprint(table)), metadata={
        "recall_at_20": dg.MetadataValue.json(headline),
        "served_vs_most_popular": round(served / popular, 3) if popular else 0.0,
        "served_vs_reference": round(served / reference, 3) if reference else 0.0,
        "served_scorer": served_scorer,
        "results": dg.MetadataValue.md(markdown_table(shown, rows=shown.height)),
        "chart": dg.MetadataValue.md(quality_chart(table)),
        "validation": dg.MetadataValue.md(markdown_table(result.validation, rows=result.validation.height)),
        "validation_best_content_weight": result.chosen_weight,
        "served_content_weight": settings.content_weight,
        "users_sampled": result.split.users_sampled,
        "users_total": result.split.users_total,
        "train_ratings": result.split.train.height,
        "held_out_ratings": result.split.held_out.height,
        "ease_movies": result.ease_items,
        "ann_search": dg.MetadataValue.json({**counters, "backend": milvus.describe()} if config.ann_search else {}),
        "seconds": dg.MetadataValue.json(result.seconds),
        "wall_time_s": round(time.perf_counter() - started, 3),
    })


assets = [recommendation_quality]
