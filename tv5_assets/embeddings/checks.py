"""Asset checks of the embeddings stage: thin wrappers around `rules`.

Structural checks (dimension, finite values, unit norms, one vector per key, model recorded) and
genre coherence are blocking: vectors failing them would poison every similarity downstream. The
Toy Story neighbour check warns: it anchors one pair of titles, which another sound model could miss.
"""


import dagster as dg
import polars as pl

from tv5_assets.core.checking import RuleResult, check_result, latest_metadata
from tv5_assets.embeddings import rules

DIMENSION = "dimension_is_models"
FINITE = "no_nan_or_inf"
UNIT_NORM = "unit_norm"
ONE_PER_MOVIE = "one_vector_per_movie"
ONE_PER_USER = "one_vector_per_rating_user"
MODEL_RECORDED = "model_recorded"
TOY_STORY = "toy_story_2_near_toy_story"
GENRE_COHERENCE = "genre_coherence"

_WARN_ONLY = {TOY_STORY}


def _spec(asset: str, name: str, description: str, reads: tuple[str, ...] = ()) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name, asset=asset, description=description, blocking=name not in _WARN_ONLY, additional_deps=reads
    )


def _result(asset: str, name: str, result: RuleResult) -> dg.AssetCheckResult:
    return check_result(asset, name, result, warn_only=name in _WARN_ONLY)


@dg.multi_asset_check(
    specs=[
        _spec("content_vectors", DIMENSION, "vectors are float32 with the model's dimension (384 for both defaults)"),
        _spec("content_vectors", FINITE, "no vector holds NaN or Inf"),
        _spec("content_vectors", UNIT_NORM, "every L2 norm is within 1e-3 of 1"),
        _spec("content_vectors", ONE_PER_MOVIE, "exactly one vector per movie of `movies`", reads=("movies",)),
        _spec("content_vectors", MODEL_RECORDED, "the materialization records the model name and dimension"),
        _spec("content_vectors", TOY_STORY, "on real MovieLens: 'Toy Story 2 (1999)' is among the 10 nearest "
              "neighbours of 'Toy Story (1995)' (not applicable to other catalogues)", reads=("movies",)),
        _spec("content_vectors", GENRE_COHERENCE, "the share of 10 nearest neighbours sharing a genre, over 200 "
              "seeded movies, closes at least 25% of the gap between chance and 1", reads=("movies",)),
    ],
    ins={"content_vectors": dg.AssetIn("content_vectors"), "movies": dg.AssetIn("movies")},
)
def content_vectors_checks(context: dg.AssetCheckExecutionContext, content_vectors: pl.DataFrame,
                           movies: pl.DataFrame):
    asset = "content_vectors"
    metadata = latest_metadata(context, asset) or {}
    dimension = metadata.get("dimension")
    yield _result(asset, DIMENSION, rules.vector_dimension(content_vectors, dimension if isinstance(dimension, int)
                                                           else None))
    yield _result(asset, FINITE, rules.finite_vectors(content_vectors))
    yield _result(asset, UNIT_NORM, rules.unit_norms(content_vectors))
    yield _result(asset, ONE_PER_MOVIE, rules.one_vector_per_key(content_vectors, "movie_id", movies["movie_id"],
                                                                 "movies"))
    yield _result(asset, MODEL_RECORDED, rules.model_recorded(metadata))
    yield _result(asset, TOY_STORY, rules.neighbour_in_top_k(content_vectors, movies, "Toy Story (1995)",
                                                             "Toy Story 2 (1999)", k=10))
    yield _result(asset, GENRE_COHERENCE, rules.genre_coherent(content_vectors, movies))


@dg.multi_asset_check(
    specs=[
        _spec("user_vectors", DIMENSION, "vectors are float32 with the dimension of content_vectors",
              reads=("content_vectors",)),
        _spec("user_vectors", FINITE, "no vector holds NaN or Inf"),
        _spec("user_vectors", UNIT_NORM, "every L2 norm is within 1e-3 of 1"),
        _spec("user_vectors", ONE_PER_USER, "exactly one vector per user of `ratings`", reads=("ratings",)),
    ],
    ins={"user_vectors": dg.AssetIn("user_vectors"), "ratings": dg.AssetIn("ratings")},
)
def user_vectors_checks(context: dg.AssetCheckExecutionContext, user_vectors: pl.DataFrame, ratings: pl.LazyFrame):
    asset = "user_vectors"
    dimension = (latest_metadata(context, "content_vectors") or {}).get("dimension")
    yield _result(asset, DIMENSION, rules.vector_dimension(user_vectors, dimension if isinstance(dimension, int)
                                                           else None))
    yield _result(asset, FINITE, rules.finite_vectors(user_vectors))
    yield _result(asset, UNIT_NORM, rules.unit_norms(user_vectors))
    rating_users = ratings.select(pl.col("user_id").unique()).collect()["user_id"]
    yield _result(asset, ONE_PER_USER, rules.one_vector_per_key(user_vectors, "user_id", rating_users,
                                                                "rating users"))


asset_checks = [content_vectors_checks, user_vectors_checks]
