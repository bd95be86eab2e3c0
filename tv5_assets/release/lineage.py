"""Which source a materialization was built from, read from Dagster's own lineage records.

Every materialization carries, per input, the data version it read and a pointer to the exact upstream
materialization event (`dagster/input_event_pointer/<key>`, its storage id). Following the pointers from a
store back to `movielens_release` gives the release data version(s) that the store's rows come from: exact,
whatever was re-materialized in between, unlike comparing timestamps.
"""

from __future__ import annotations

import dagster as dg

POINTER = "dagster/input_event_pointer/"
DATA_VERSION = "dagster/data_version"


def materialization_at(instance: dg.DagsterInstance, key: dg.AssetKey, storage_id: int | None):
    """The materialization record of `key` at `storage_id` (the latest when None); None when there is none."""
    if storage_id is None:
        records = instance.fetch_materializations(key, limit=1).records
    else:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=storage_id - 1, before_storage_id=storage_id + 1),
            limit=1).records
    return records[0] if records else None


def versions_read(instance: dg.DagsterInstance, key: dg.AssetKey, source: dg.AssetKey,
                  storage_id: int | None = None, _seen: dict | None = None) -> set[str]:
    """The data versions of `source` that `key`'s materialization (the latest, or the one at `storage_id`) was
    built from, through any number of intermediate assets. Empty when the lineage is not recorded."""
    seen = {} if _seen is None else _seen
    record = materialization_at(instance, key, storage_id)
    if record is None:
        return set()
    if (key, record.storage_id) in seen:
        return seen[(key, record.storage_id)]
    tags = record.asset_materialization.tags or {}
    if key == source:
        found = {tags[DATA_VERSION]} if DATA_VERSION in tags else set()
    else:
        found = set()
        for tag, pointer in tags.items():
            if tag.startswith(POINTER) and pointer.isdigit():  # 'NULL': the input was never materialized
                parent = dg.AssetKey.from_user_string(tag[len(POINTER):])
                found |= versions_read(instance, parent, source, int(pointer), seen)
    seen[(key, record.storage_id)] = found
    return found
