"""Per-partition checks of a day's user vectors (content here; the taste stage reuses `day_vector_checks`)."""

import dagster as dg
import polars as pl

from tv5_assets.core.checking import check_result
from tv5_assets.embeddings import day_vectors, rules
from tv5_assets.ingestion.day_checks import day_check_spec

ONE_PER_TOUCHED_USER = "one_row_per_touched_user"
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


asset_checks = [day_vector_checks("day_user_vectors", unit=True)]
