"""The seed's Milvus load path, kept only as the baseline `benchmarks.milvus` measures the project against.

The seed inserted pymilvus row dicts (`MilvusClient.insert`, which builds the request row by row and float
by float) in fixed batches of 1,000 rows. The project sends one column-wise request per byte-sized batch
(`tv5_assets.vector_store.payload.insert_request`, `batching.byte_batches`); none of this is used by the
assets.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tv5_assets.vector_store.payload import vector_matrix
from tv5_assets.vector_store.resources import MilvusDimensionError, MilvusResource
from tv5_assets.vector_store.schema import VECTOR_FIELD, CollectionSpec

SEED_BATCH_ROWS = 1_000


def row_batches(n: int, rows: int) -> list[tuple[int, int]]:
    """Fixed-size [start, stop) batches of `rows` rows (the seed's approach)."""
    return [(start, min(start + rows, n)) for start in range(0, n, rows)]


def row_dicts(frame: pl.DataFrame) -> list[dict]:
    """The rows as pymilvus row dicts (what `MilvusClient.insert` takes)."""
    vectors = vector_matrix(frame)
    rows = frame.drop(VECTOR_FIELD).to_dicts()
    for row, vector in zip(rows, vectors):
        row[VECTOR_FIELD] = vector
    return rows


def insert_row_dicts(milvus: MilvusResource, name: str, rows: pl.DataFrame) -> int:
    """Insert through pymilvus's row API (`MilvusClient.insert`): the slow path. Same dimension check, retries
    and error translation as `MilvusResource.insert` (through its `_call`), so only the request building differs."""
    expected, got = milvus.dimension(name), vector_matrix(rows.head(1)).shape[1]
    if got != expected:
        raise MilvusDimensionError(f"{name} stores {expected}-d vectors but the rows carry {got}-d vectors "
                                   "(a different encoder model?); rebuild the collection from the new vectors")
    data = row_dicts(rows)
    return int(milvus._call(f"insert rows into {name}",  # noqa: SLF001 - the resource's retrying call
                            lambda c: c.insert(name, data, timeout=milvus.timeout_s))["insert_count"])


class RowDictStore:
    """The resource with the seed's insert path, behind the rebuild's store interface (`VectorStore`)."""

    def __init__(self, milvus: MilvusResource) -> None:
        self._milvus = milvus

    def __getattr__(self, name: str) -> Any:
        return getattr(self._milvus, name)

    def insert(self, name: str, rows: pl.DataFrame, spec: CollectionSpec, batch_number: int) -> int:
        return insert_row_dicts(self._milvus, name, rows)
