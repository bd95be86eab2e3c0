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
    asset can stream it.
    """

    base_dir: str = "data"

    def path_for(self, asset_key: dg.AssetKey) -> Path:
        return Path(self.base_dir, *asset_key.path).with_suffix(".parquet")

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame | None) -> None:
        if obj is None:
            return
        path = self.path_for(context.asset_key)
        write_parquet_atomic(obj, path)
        # the file's hash: the release gate re-hashes it, so a file edited outside Dagster never reaches a store
        metadata: dict[str, dg.MetadataValue] = {"path": dg.MetadataValue.path(str(path)),
                                                 CONTENT_SHA256: dg.MetadataValue.text(file_sha256(path))}
        if isinstance(obj, pl.DataFrame):
            metadata["dagster/row_count"] = dg.MetadataValue.int(obj.height)
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        path = self.path_for(context.asset_key)
        if not path.exists():
            raise FileNotFoundError(
                f"asset {context.asset_key.to_user_string()} has no stored value at {path}: "
                "materialize it first"
            )
        if context.dagster_type.typing_type is pl.LazyFrame:
            return pl.scan_parquet(path)
        return pl.read_parquet(path)


__all__ = ["PolarsParquetIOManager", "frame_fingerprint"]
