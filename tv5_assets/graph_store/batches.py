"""Batch planning: which rows go into which write transaction, and their columnar parameters.

Relationship batches are cut only where the start key changes, so one start node (a user and
all their ratings) is written by exactly one transaction, and transactions in flight together
never share a start node. Each batch also lists its distinct end keys once, so an end node (a
popular film rated thousands of times in one batch) is looked up once per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from tv5_assets.graph_store.model import NodeSpec, RelSpec


class WriteBatch(NamedTuple):
    """One write transaction: how many source rows it carries, and its parameters."""

    rows: int
    parameters: dict[str, Any]


def group_starts(keys: np.ndarray) -> np.ndarray:
    """Offsets where a run of equal keys starts (keys sorted), e.g. [1, 1, 2, 5, 5] -> [0, 2, 3]."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


def plan_batches(keys: np.ndarray, target_rows: int) -> list[tuple[int, int]]:
    """Row ranges [start, end) of about `target_rows` rows, cut only where the key changes.

    Each range ends at the first group boundary at or after a multiple of `target_rows` from its
    start, so a group larger than `target_rows` stays whole in a batch of its own.
    """
    if target_rows < 1:
        raise ValueError(f"target_rows must be positive, got {target_rows}")
    n = int(keys.size)
    if n == 0:
        return []
    starts = np.r_[group_starts(keys), n]
    cuts, position = [0], 0
    while position < n:
        # the first group start at or after position + target_rows (n when none is left)
        position = int(starts[min(np.searchsorted(starts, position + target_rows), starts.size - 1)])
        cuts.append(position)
    return list(zip(cuts[:-1], cuts[1:]))


def node_batches(frame: pl.DataFrame, spec: NodeSpec, target_rows: int) -> Iterator[WriteBatch]:
    """Columnar parameters for `cypher.create_nodes(spec)`."""
    for offset in range(0, frame.height, target_rows):
        part = frame.slice(offset, target_rows)
        yield WriteBatch(part.height, {p: part[p].to_list() for p in spec.properties})


def relationship_batches(frame: pl.DataFrame, spec: RelSpec, target_rows: int) -> Iterator[WriteBatch]:
    """Columnar parameters for `cypher.create_relationships(spec)`: groups of rows by start node."""
    keys = frame[spec.start_column].to_numpy()
    for start, end in plan_batches(keys, target_rows):
        part = frame.slice(start, end - start)
        part_keys = keys[start:end]
        firsts = group_starts(part_keys)
        end_keys, end_pos = np.unique(part[spec.end_column].to_numpy(), return_inverse=True)
        parameters = {
            "end_keys": end_keys.tolist(),
            "end_pos": end_pos.tolist(),
            "group_keys": part_keys[firsts].tolist(),
            "group_starts": np.r_[firsts, end - start].tolist(),
            **{p: part[p].to_list() for p in spec.properties},
        }
        yield WriteBatch(end - start, parameters)
