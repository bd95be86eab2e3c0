"""The local data lake: where Parquet assets, quarantines and raw releases live."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


class DataLake(dg.ConfigurableResource):
    """Base directory shared with the Parquet IO manager (default `data/`, env TV5_DATA_DIR)."""

    base_dir: str = "data"

    def path(self, *parts: str) -> Path:
        return Path(self.base_dir, *parts)

    @property
    def raw_dir(self) -> Path:
        return self.path("raw")

    def quarantine_path(self, asset_name: str) -> Path:
        """Rejected rows of an asset, stored beside it."""
        return self.path(f"{asset_name}.quarantine.parquet")
