"""Assembles the stages into one `Definitions`; nothing else happens here."""

from __future__ import annotations

import os

import dagster as dg

from tv5_assets.embeddings import assets as embeddings_assets
from tv5_assets.embeddings import checks as embeddings_checks
from tv5_assets.ingestion import assets as ingestion_assets
from tv5_assets.ingestion import checks as ingestion_checks
from tv5_assets.io_manager import PolarsParquetIOManager
from tv5_assets.resources.encoder import EncoderResource
from tv5_assets.resources.lake import DataLake
from tv5_assets.rl import assets as rl_assets
from tv5_assets.rl import checks as rl_checks
from tv5_assets.synthetic import assets as synthetic_assets
from tv5_assets.synthetic import checks as synthetic_checks

DATA_DIR = os.environ.get("TV5_DATA_DIR", "data")

all_assets = [*ingestion_assets.assets, *embeddings_assets.assets, *synthetic_assets.assets, *rl_assets.assets]
all_checks = [*ingestion_checks.asset_checks, *embeddings_checks.asset_checks, *synthetic_checks.asset_checks,
              *rl_checks.asset_checks]

whole_graph_job = dg.define_asset_job(
    "whole_graph", selection=dg.AssetSelection.all(), description="Materialize every asset of the graph."
)
movielens_job = dg.define_asset_job(
    "movielens",
    selection=dg.AssetSelection.groups(ingestion_assets.GROUP),
    description="Ingest a MovieLens release: movielens_release, movies, ratings, tags, genome.",
)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[whole_graph_job, movielens_job],
    resources={
        "io_manager": PolarsParquetIOManager(base_dir=DATA_DIR),
        "lake": DataLake(base_dir=DATA_DIR),
        "encoder": EncoderResource(),
    },
)
