"""The project's Parquet IO manager for polars frames (dagster-polars does not support polars 2)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from tv5_assets.core.releases import CONTENT_SHA256
from tv5_assets.core.storage import file_sha256, frame_fingerprint, write_parquet_atomic


class PolarsParquetIOManager(dg.ConfigurableIOManager):
    """Stores each asset as `<base_dir>/<asset key path>.parquet`, written atomically, with the file's sha256
    in the output metadata.

    Inputs annotated as `pl.LazyFrame` are scanned rather than read, so a consumer of a 25M-row
    asset can stream it. A partitioned asset keeps one file per partition, `<asset key path>/<partition>.parquet`;
    an input of several partitions is a dict of them by partition key.
    """

    base_dir: str = "data"

    def path_for(self, asset_key: dg.AssetKey, partition: str | None = None) -> Path:
        folder = Path(self.base_dir, *asset_key.path)
        return folder.with_suffix(".parquet") if partition is None else folder / f"{partition}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame | None) -> None:
        if obj is None:
            return
        path = self.path_for(context.asset_key, context.asset_partition_key if context.has_asset_partitions else None)
        write_parquet_atomic(obj, path)
        # the file's hash: the release gate re-hashes it, so a file edited outside Dagster never reaches a store
        metadata: dict[str, dg.MetadataValue] = {"path": dg.MetadataValue.path(str(path)),
                                                 CONTENT_SHA256: dg.MetadataValue.text(file_sha256(path))}
        if isinstance(obj, pl.DataFrame):
            metadata["dagster/row_count"] = dg.MetadataValue.int(obj.height)
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame | dict[str, pl.DataFrame]:
        lazy = context.dagster_type.typing_type is pl.LazyFrame
        if not context.has_asset_partitions:
            return self._load(context.asset_key, None, lazy)
        keys = context.asset_partition_keys
        if len(keys) == 1 and context.has_partition_key and context.partition_key == keys[0]:
            return self._load(context.asset_key, keys[0], lazy)
        return {key: self._load(context.asset_key, key, lazy) for key in keys}

    def _load(self, key: dg.AssetKey, partition: str | None, lazy: bool) -> pl.DataFrame | pl.LazyFrame:
        path = self.path_for(key, partition)
        if not path.exists():
            what = key.to_user_string() + ("" if partition is None else f" partition {partition}")
            raise FileNotFoundError(f"asset {what} has no stored value at {path}: materialize it first")
        return pl.scan_parquet(path) if lazy else pl.read_parquet(path)


__all__ = ["PolarsParquetIOManager", "frame_fingerprint"]
