"""The rows a collection holds, built from the upstream frames (one row per source vector).

No value is cut: a string longer than its field's byte limit (UTF-8 bytes, as Milvus counts them) or a
list longer than its capacity fails the load with an error naming the field, the id and the value. A
cut value would be silently unfindable by a filtered search ("Criterion Channel" stored as
"Criterion Channe" matches no `ARRAY_CONTAINS(platforms, "Criterion Channel")`); the limits in
`schema` are sized from the domain with a margin instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.vector_store.schema import (
    ID_FIELD,
    UNKNOWN_YEAR,
    VECTOR_FIELD,
    CollectionSpec,
    FieldKind,
    ScalarField,
    VectorIndex,
)


class ValueTooLongError(ValueError):
    """A value does not fit its Milvus field: raise the field's limit rather than cut the value."""


@dataclass(frozen=True)
class Rows:
    frame: pl.DataFrame  # id i64, vector array[f32, dim], then the spec's scalar fields

    @property
    def dimension(self) -> int:
        dtype = self.frame.schema[VECTOR_FIELD]
        return dtype.size if isinstance(dtype, pl.Array) else 0


def _vectors(source: pl.DataFrame, id_column: str) -> pl.DataFrame:
    duplicated = source.filter(pl.col(id_column).is_duplicated())
    if duplicated.height:
        raise ValueError(f"{id_column} repeats in the source vectors ({duplicated[id_column].n_unique()} ids): "
                         "Milvus does not enforce primary-key uniqueness, so a load would hold duplicates")
    return source.select(pl.col(id_column).cast(pl.Int64).alias(ID_FIELD), pl.col(VECTOR_FIELD).cast(
        pl.Array(pl.Float32, source.schema[VECTOR_FIELD].size)))


def _oversized(frame: pl.DataFrame, field: ScalarField) -> pl.DataFrame:
    """Rows (id, value) whose `field` does not fit its limits."""
    col = pl.col(field.name)
    if field.kind is FieldKind.VARCHAR:
        too_long = col.str.len_bytes() > field.max_length
    else:
        too_long = (col.list.len() > field.max_capacity) | col.list.eval(
            pl.element().str.len_bytes() > field.max_length).list.any()
    return frame.filter(too_long.fill_null(False)).select(ID_FIELD, field.name)


def fit_to_spec(frame: pl.DataFrame, spec: CollectionSpec) -> Rows:
    """The spec's columns, nulls filled (Milvus 2.3 has no nullable fields); a value that does not fit fails."""
    exprs = []
    for field in spec.scalars:
        col = pl.col(field.name)
        if field.kind is FieldKind.INT32:
            exprs.append(col.cast(pl.Int32).fill_null(UNKNOWN_YEAR))
            continue
        bad = _oversized(frame, field)
        if bad.height:
            first = bad.row(0)
            limit = f"{field.max_length} bytes a value" + (
                f", {field.max_capacity} elements" if field.kind is FieldKind.VARCHAR_ARRAY else "")
            raise ValueTooLongError(
                f"{spec.alias}: {bad.height} row(s) do not fit field {field.name!r} ({limit}); first: id {first[0]} "
                f"with {field.name} = {first[1]!r}. Raise the limit in tv5_assets/vector_store/schema.py")
        if field.kind is FieldKind.VARCHAR:
            exprs.append(col.fill_null(""))
        else:
            exprs.append(col.fill_null([]).list.eval(pl.element().fill_null("")).cast(pl.List(pl.String)))
    return Rows(frame.with_columns(exprs).select(spec.field_names))


def media_rows(content_vectors: pl.DataFrame, movies: pl.DataFrame, availability: pl.DataFrame,
               spec: CollectionSpec) -> Rows:
    """One row per content vector: display title, year, genres, and the platforms offering the movie."""
    platforms = (availability.group_by("movie_id")
                 .agg(pl.col("platform").drop_nulls().unique().sort().alias("platforms")))
    frame = (
        _vectors(content_vectors, "movie_id")
        .join(movies.select(pl.col("movie_id").cast(pl.Int64).alias(ID_FIELD),
                            pl.coalesce("display_title", "title").alias("title"), "year", "genres"),
              on=ID_FIELD, how="left")
        .join(platforms.with_columns(pl.col("movie_id").cast(pl.Int64)).rename({"movie_id": ID_FIELD}),
              on=ID_FIELD, how="left")
        .sort(ID_FIELD)
    )
    return fit_to_spec(frame, spec)


def user_rows(user_vectors: pl.DataFrame, demographics: pl.DataFrame, spec: CollectionSpec) -> Rows:
    """One row per user vector, with the user's archetype and country ("" when demographics lack the user)."""
    frame = (
        _vectors(user_vectors, "user_id")
        .join(demographics.select(pl.col("user_id").cast(pl.Int64).alias(ID_FIELD), "archetype", "country"),
              on=ID_FIELD, how="left")
        .sort(ID_FIELD)
    )
    return fit_to_spec(frame, spec)


def probe_truth(ids: pl.Series, attributes: pl.DataFrame, id_column: str, column: str,
                value: str | None) -> tuple[str | None, pl.Series]:
    """The probe's value and the ids (among `ids`) whose attribute `column` has it: the filter's ground truth.

    `value` is kept when some row has it, else the most frequent non-empty value is used (None: no values).
    """
    known = attributes.select(pl.col(id_column).cast(pl.Int64), column).join(
        ids.cast(pl.Int64).rename(id_column).to_frame(), on=id_column, how="semi")
    counts = known.filter(pl.col(column).is_not_null() & (pl.col(column) != ""))[column].value_counts(sort=True)
    if value is None or value not in counts[column].to_list():
        value = counts[column][0] if counts.height else None
    if value is None:
        return None, known[id_column].head(0)
    matched = known.filter(pl.col(column) == value)[id_column].unique().sort()
    return value, matched


def value_counts(frame: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    """field, value, rows: how many rows hold each distinct non-empty value of each field (arrays: contain it)."""
    parts = []
    for field in fields:
        column = frame.select(ID_FIELD, field)
        if isinstance(frame.schema[field], pl.List):
            column = column.explode(field)
        parts.append(column.filter(pl.col(field).is_not_null() & (pl.col(field) != ""))
                     .group_by(field).agg(pl.col(ID_FIELD).n_unique().alias("rows"))
                     .select(pl.lit(field).alias("field"), pl.col(field).alias("value"), "rows"))
    if not parts:
        return pl.DataFrame(schema={"field": pl.String, "value": pl.String, "rows": pl.UInt32})
    return pl.concat(parts).sort("field", "value")


def content_version(rows: Rows, index: VectorIndex, spec: CollectionSpec) -> str:
    """The collection's data version: its rows, its schema and its index; unchanged inputs give the same one."""
    digest = hashlib.sha256()
    for part in (frame_fingerprint(rows.frame), repr(spec), repr(index.describe())):
        digest.update(part.encode())
    return digest.hexdigest()[:24]
