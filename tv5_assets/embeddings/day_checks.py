"""Per-partition checks of a day's vectors: the movies gained since the full build, the touched users (content here;
the taste stage reuses `day_vector_checks`)."""

from datetime import date

import dagster as dg
import polars as pl

from tv5_assets.core.checking import check_result
from tv5_assets.core.lake import DataLake
from tv5_assets.embeddings import day_vectors, rules
from tv5_assets.ingestion import day_catalogue
from tv5_assets.ingestion.day_checks import day_check_spec

ONE_PER_TOUCHED_USER = "one_row_per_touched_user"
ONE_PER_GAINED_MOVIE = "one_vector_per_movie_gained"
FINITE = "no_nan_or_inf"
UNIT_NORM = "unit_norm"


def _spec(asset: str, name: str, description: str) -> dg.AssetCheckSpec:
    return day_check_spec(asset, name, description, reads=("day_rating_changes",))


def day_vector_checks(asset: str, unit: bool) -> dg.AssetChecksDefinition:
    """One row per user the day touched (null: removed), finite vectors, and unit norms where `unit`."""
    specs = [_spec(asset, ONE_PER_TOUCHED_USER, "exactly one row per user whose ratings the day changed"),
             _spec(asset, FINITE, "no vector holds NaN or inf")]
    if unit:
        specs.append(_spec(asset, UNIT_NORM, "every vector has L2 norm 1"))

    @dg.multi_asset_check(specs=specs, name=f"{asset}_checks",
                          ins={"vectors": dg.AssetIn(asset), "day_rating_changes": dg.AssetIn("day_rating_changes")})
    def _checks(vectors: pl.DataFrame, day_rating_changes: pl.DataFrame):
        touched = day_vectors.touched_users(day_rating_changes)["user_id"]
        yield check_result(asset, ONE_PER_TOUCHED_USER,
                           rules.one_vector_per_key(vectors, "user_id", touched, "touched user"))
        present = vectors.drop_nulls("vector")
        yield check_result(asset, FINITE, rules.finite_vectors(present))
        if unit:
            yield check_result(asset, UNIT_NORM, rules.unit_norms(present))

    return _checks


@dg.multi_asset_check(
    specs=[day_check_spec("day_content_vectors", ONE_PER_GAINED_MOVIE, "exactly one vector per movie the day's users "
                          "may rate that `movies` lacks (this day's and the other published days')",
                          reads=("day_movies", "movies")),
           day_check_spec("day_content_vectors", FINITE, "no vector holds NaN or inf"),
           day_check_spec("day_content_vectors", UNIT_NORM, "every vector has L2 norm 1")],
    ins={"vectors": dg.AssetIn("day_content_vectors"), "day_movies": dg.AssetIn("day_movies"),
         "movies": dg.AssetIn("movies")},
)
def day_content_vector_checks(context: dg.AssetCheckExecutionContext, lake: DataLake, vectors: pl.DataFrame,
                              day_movies: pl.DataFrame, movies: pl.LazyFrame):
    gained = day_catalogue.extra_movies(lake.base_dir, date.fromisoformat(context.partition_key), movies, day_movies)
    yield check_result("day_content_vectors", ONE_PER_GAINED_MOVIE,
                       rules.one_vector_per_key(vectors, "movie_id", gained["movie_id"], "movies gained"))
    yield check_result("day_content_vectors", FINITE, rules.finite_vectors(vectors))
    yield check_result("day_content_vectors", UNIT_NORM, rules.unit_norms(vectors))


asset_checks = [day_content_vector_checks, day_vector_checks("day_user_vectors", unit=True)]
