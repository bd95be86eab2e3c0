"""Asset checks of the taste stage. All block: vectors failing them must not reach Milvus.

Structure (dimension, finite values, unit norms where the layout promises them, one vector per key)
reuses the embeddings stage's rules. Determinism is checked by recomputing a seeded sample from the
stored inputs and comparing bit for bit: the user fold-in and both hybrid layouts (the ALS fit itself
is checked for determinism by a unit test; refitting it here would double its cost).
"""


import dagster as dg
import polars as pl

from tv5_assets.core.checking import RuleResult, check_result
from tv5_assets.embeddings import rules as vector_rules
from tv5_assets.taste import factors, hybrid, rules
from tv5_assets.taste.assets import SETTINGS

DIMENSION = "dimension_as_configured"
FINITE = "no_nan_or_inf"
UNIT_NORM = "unit_norm"
LAYOUT = "parts_within_layout"
ONE_PER_MOVIE = "one_vector_per_movie"
ONE_PER_USER = "one_vector_per_rating_user"
RECOMPUTED = "recomputed_identically"
SAMPLE = 1_000


def _spec(asset: str, name: str, description: str, reads: tuple[str, ...] = ()) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=asset, description=description, blocking=True, additional_deps=reads)


def _result(asset: str, name: str, result: RuleResult) -> dg.AssetCheckResult:
    return check_result(asset, name, result)


def _structure(asset: str, frame: pl.DataFrame, dimension: int) -> list[dg.AssetCheckResult]:
    return [_result(asset, DIMENSION, vector_rules.vector_dimension(frame, dimension)),
            _result(asset, FINITE, vector_rules.finite_vectors(frame))]


@dg.multi_asset_check(
    specs=[
        _spec("collaborative_movie_vectors", DIMENSION, f"vectors are float32 with {SETTINGS.factors} factors"),
        _spec("collaborative_movie_vectors", FINITE, "no vector holds NaN or Inf"),
        _spec("collaborative_movie_vectors", ONE_PER_MOVIE, "exactly one vector per movie of content_vectors",
              reads=("content_vectors",)),
    ],
    ins={"collaborative_movie_vectors": dg.AssetIn("collaborative_movie_vectors"),
         "content_vectors": dg.AssetIn("content_vectors")},
)
def collaborative_movie_vectors_checks(collaborative_movie_vectors: pl.DataFrame, content_vectors: pl.DataFrame):
    asset = "collaborative_movie_vectors"
    yield from _structure(asset, collaborative_movie_vectors, SETTINGS.factors)
    yield _result(asset, ONE_PER_MOVIE, vector_rules.one_vector_per_key(
        collaborative_movie_vectors, "movie_id", content_vectors["movie_id"], "movies of content_vectors"))


@dg.multi_asset_check(
    specs=[
        _spec("collaborative_user_vectors", DIMENSION, f"vectors are float32 with {SETTINGS.factors} factors"),
        _spec("collaborative_user_vectors", FINITE, "no vector holds NaN or Inf"),
        _spec("collaborative_user_vectors", ONE_PER_USER, "exactly one vector per user who rated a movie that has "
              "a collaborative vector", reads=("ratings", "collaborative_movie_vectors")),
        _spec("collaborative_user_vectors", RECOMPUTED, f"{SAMPLE:,} seeded users folded in again from ratings "
              "and the stored movie vectors give the stored vectors, bit for bit",
              reads=("ratings", "collaborative_movie_vectors")),
    ],
    ins={"collaborative_user_vectors": dg.AssetIn("collaborative_user_vectors"), "ratings": dg.AssetIn("ratings"),
         "collaborative_movie_vectors": dg.AssetIn("collaborative_movie_vectors")},
)
def collaborative_user_vectors_checks(collaborative_user_vectors: pl.DataFrame, ratings: pl.LazyFrame,
                                      collaborative_movie_vectors: pl.DataFrame):
    asset = "collaborative_user_vectors"
    movies = collaborative_movie_vectors.select("movie_id", "vector")
    yield from _structure(asset, collaborative_user_vectors, SETTINGS.factors)
    raters = (ratings.join(movies.lazy().select("movie_id"), on="movie_id", how="semi")
              .select(pl.col("user_id").unique()).collect()["user_id"])
    yield _result(asset, ONE_PER_USER, vector_rules.one_vector_per_key(
        collaborative_user_vectors, "user_id", raters, "users who rated a movie with a vector"))
    sample = rules.sample_keys(raters, SAMPLE, seed=0)
    again = factors.user_factors(ratings.join(sample.to_frame().lazy(), on="user_id", how="semi"), movies, SETTINGS)
    yield _result(asset, RECOMPUTED, rules.recomputed_identically(collaborative_user_vectors, again, "user_id"))


@dg.multi_asset_check(
    specs=[
        _spec("hybrid_movie_vectors", DIMENSION, "content dimension + factors", reads=("content_vectors",)),
        _spec("hybrid_movie_vectors", FINITE, "no vector holds NaN or Inf"),
        _spec("hybrid_movie_vectors", LAYOUT, "every vector is a unit content part then a collaborative part of "
              "norm <= 1 (the inner product with a user vector is then the 'for you' score)"),
        _spec("hybrid_movie_vectors", ONE_PER_MOVIE, "exactly one vector per movie of content_vectors",
              reads=("content_vectors",)),
        _spec("hybrid_movie_vectors", RECOMPUTED, f"{SAMPLE:,} seeded movies laid out again from content_vectors and "
              "collaborative_movie_vectors give the stored vectors, bit for bit",
              reads=("content_vectors", "collaborative_movie_vectors")),
    ],
    ins={"hybrid_movie_vectors": dg.AssetIn("hybrid_movie_vectors"), "content_vectors": dg.AssetIn("content_vectors"),
         "collaborative_movie_vectors": dg.AssetIn("collaborative_movie_vectors")},
)
def hybrid_movie_vectors_checks(hybrid_movie_vectors: pl.DataFrame, content_vectors: pl.DataFrame,
                                collaborative_movie_vectors: pl.DataFrame):
    asset = "hybrid_movie_vectors"
    ids, content, collab = hybrid.aligned(content_vectors, collaborative_movie_vectors, "movie_id")
    layout = hybrid.layout_for(content.shape[1], collab, hybrid.CONTENT_WEIGHT)
    yield from _structure(asset, hybrid_movie_vectors, layout.dimension)
    yield _result(asset, LAYOUT, rules.hybrid_movie_parts(hybrid_movie_vectors, content.shape[1]))
    yield _result(asset, ONE_PER_MOVIE, vector_rules.one_vector_per_key(
        hybrid_movie_vectors, "movie_id", content_vectors["movie_id"], "movies of content_vectors"))
    rows = rules.sample_keys(pl.Series(range(len(ids))), SAMPLE, seed=0).to_numpy()
    again = hybrid.frame("movie_id", ids[rows], hybrid.movie_vectors(content[rows], collab[rows], layout))
    yield _result(asset, RECOMPUTED, rules.recomputed_identically(hybrid_movie_vectors, again, "movie_id"))


@dg.multi_asset_check(
    specs=[
        _spec("hybrid_user_vectors", DIMENSION, "content dimension + factors",
              reads=("user_vectors",)),
        _spec("hybrid_user_vectors", FINITE, "no vector holds NaN or Inf"),
        _spec("hybrid_user_vectors", UNIT_NORM, "every L2 norm is within 1e-3 of 1"),
        _spec("hybrid_user_vectors", ONE_PER_USER, "exactly one vector per user of user_vectors",
              reads=("user_vectors",)),
        _spec("hybrid_user_vectors", RECOMPUTED, f"{SAMPLE:,} seeded users laid out again from user_vectors and "
              "collaborative_user_vectors give the stored vectors, bit for bit",
              reads=("user_vectors", "collaborative_user_vectors")),
    ],
    ins={"hybrid_user_vectors": dg.AssetIn("hybrid_user_vectors"), "user_vectors": dg.AssetIn("user_vectors"),
         "collaborative_user_vectors": dg.AssetIn("collaborative_user_vectors")},
)
def hybrid_user_vectors_checks(hybrid_user_vectors: pl.DataFrame, user_vectors: pl.DataFrame,
                               collaborative_user_vectors: pl.DataFrame):
    asset = "hybrid_user_vectors"
    ids, content, collab = hybrid.aligned(user_vectors, collaborative_user_vectors, "user_id")
    yield from _structure(asset, hybrid_user_vectors, content.shape[1] + SETTINGS.factors)
    yield _result(asset, UNIT_NORM, vector_rules.unit_norms(hybrid_user_vectors))
    yield _result(asset, ONE_PER_USER, vector_rules.one_vector_per_key(
        hybrid_user_vectors, "user_id", user_vectors["user_id"], "users of user_vectors"))
    rows = rules.sample_keys(pl.Series(range(len(ids))), SAMPLE, seed=0).to_numpy()
    again = hybrid.frame("user_id", ids[rows], hybrid.user_vectors(content[rows], collab[rows], hybrid.CONTENT_WEIGHT))
    yield _result(asset, RECOMPUTED, rules.recomputed_identically(hybrid_user_vectors, again, "user_id"))


asset_checks = [collaborative_movie_vectors_checks, collaborative_user_vectors_checks, hybrid_movie_vectors_checks,
                hybrid_user_vectors_checks]
