"""Asset checks of the evaluation. They warn: a quality regression is for people to look at, and the
serving stores read the vectors, not this table, so nothing downstream is blocked by it."""


import dagster as dg
import polars as pl

from tv5_assets.core.checking import check_result
from tv5_assets.evaluation import rules

ASSET = "recommendation_quality"
BEATS_POPULAR = "served_beats_most_popular"
ANN_AGREES = "ann_search_agrees_with_exact"


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(BEATS_POPULAR, asset=ASSET, blocking=False,
                          description="the served hybrid's recall@20 (through Milvus when searched) beats most popular"),
        dg.AssetCheckSpec(ANN_AGREES, asset=ASSET, blocking=False,
                          description="recall@20 through the Milvus search keeps >= 95 % of the exact ranking's"),
    ],
    ins={ASSET: dg.AssetIn(ASSET)},
)
def recommendation_quality_checks(recommendation_quality: pl.DataFrame):
    yield check_result(ASSET, BEATS_POPULAR, rules.served_beats_most_popular(recommendation_quality), warn_only=True)
    yield check_result(ASSET, ANN_AGREES, rules.ann_agrees_with_exact(recommendation_quality), warn_only=True)


asset_checks = [recommendation_quality_checks]
