"""Assembles the stages into one `Definitions`; nothing else happens here."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from tv5_assets.core.automation import SERVING_STORES, serving_stores_sensor
from tv5_assets.core.io_manager import PolarsParquetIOManager
from tv5_assets.core.lake import DataLake
from tv5_assets.core.settings import Settings
from tv5_assets.embeddings import day_assets as embeddings_day_assets
from tv5_assets.embeddings import day_checks as embeddings_day_checks
from tv5_assets.embeddings.preloading import PreloadingEncoderResource
from tv5_assets.graph_store.resources import neo4j_from_env
from tv5_assets.ingestion import assets as ingestion_assets
from tv5_assets.ingestion import day_assets, day_checks
from tv5_assets.ingestion.day_assets import DAY_GROUP, LANDING_DAYS
from tv5_assets.ingestion.day_sensor import DAILY_JOB, arrival_days_sensor
from tv5_assets.ingestion.sensors import source_release_sensor
from tv5_assets.platform.housekeeping import purge_old_runs, purge_old_runs_daily
from tv5_assets.release import assets as release_assets
from tv5_assets.release.catalog import stage_assets, stage_checks
from tv5_assets.release import day_assets as release_day_assets
from tv5_assets.release import day_checks as release_day_checks
from tv5_assets.release.refit import WHOLE_GRAPH, refit_on_recall_drift, weekly_refit
from tv5_assets.release.warmup import day_warmup
from tv5_assets.rl import day_assets as rl_day_assets
from tv5_assets.rl import day_checks as rl_day_checks
from tv5_assets.synthetic import day_assets as synthetic_day_assets
from tv5_assets.synthetic import day_checks as synthetic_day_checks
from tv5_assets.taste import day_assets as taste_day_assets
from tv5_assets.taste import day_checks as taste_day_checks
from tv5_assets.vector_store import hosting
from tv5_assets.vector_store.resources import milvus_from_env

SETTINGS = Settings()  # every environment setting, read once here (tv5_assets/core/settings.py)
DATA_DIR = SETTINGS.tv5_data_dir
# Runs launched from the UI use the multiprocess executor (one process per step, steps in parallel);
# TV5_EXECUTOR=in_process runs every step in the run's own process: on a small machine (2 cores) it
# saves the ~3 s each of the ~90 step processes (assets and checks) spend importing the stack.
EXECUTORS = {"multiprocess": dg.multiprocess_executor, "in_process": dg.in_process_executor}

# the daily deliveries, partitioned by arrival day, stay out of the catalog: a full release's gate reads none of them
all_assets = [*stage_assets, *release_assets.assets, *day_assets.assets, *embeddings_day_assets.assets,
              *taste_day_assets.assets, *rl_day_assets.assets, *synthetic_day_assets.assets,
              *release_day_assets.assets]
all_checks = [*stage_checks, *day_checks.asset_checks, *embeddings_day_checks.asset_checks,
              *taste_day_checks.asset_checks, *rl_day_checks.asset_checks, *synthetic_day_checks.asset_checks,
              *release_day_checks.asset_checks]
DAYS = dg.AssetSelection.groups(DAY_GROUP)

whole_graph_job = dg.define_asset_job(
    WHOLE_GRAPH, selection=dg.AssetSelection.all() - DAYS,
    description="Materialize every asset of the graph (the daily deliveries apart: the `daily` job). It is also the "
    "refit of the global models: weekly (`weekly_refit`) and when a day's served recall drifts "
    "(`refit_on_recall_drift`).",
)


def _day_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    hosting.install()  # before any resource opens Milvus Lite: its server then runs beside the run, not in it
    return dg.in_process_executor.executor_creation_fn(init_context)


# A day is small: its steps run in the run's own process rather than paying ~3 s of imports each, and `day_release`
# runs the stores side by side in threads of it; Milvus Lite (pure Python) is served from a child process there, so
# its server does not hold the GIL those threads need (docs/days.md). A step process of a multiprocess run has no
# such threads and keeps Lite in-process (a child costs ~1 s to start).
DAY_EXECUTOR = dg.ExecutorDefinition(
    name="in_process_lite_beside", config_schema=dg.in_process_executor.config_schema,
    executor_creation_fn=_day_executor,
    description="in-process execution, Milvus Lite's server in a child process (vector_store/hosting.py)")
daily_job = dg.define_asset_job(
    DAILY_JOB, selection=DAYS, executor_def=DAY_EXECUTOR,
    description="Bring one arrival day's delivery in: read its day files strictly and compute, against what the "
    "stores serve, the current ratings of the users it changes and, for those users only, their vectors and "
    "episodes, policies, and a person for each new user, every step audited per partition; then `day_release` "
    "journals, applies and audits the touched users' rows in the graph, both user collections and AgentDB, and "
    "publishes the day (one day at a time: the `days` and `release` pools).",
)
movielens_job = dg.define_asset_job(
    "movielens",
    selection=dg.AssetSelection.groups(ingestion_assets.GROUP),
    description="Ingest a MovieLens release: movielens_release, movies, ratings, tags, genome.",
)

serving_stores_job = dg.define_asset_job(
    "serving_stores",
    selection=SERVING_STORES,
    description="Stage the serving stores (Milvus collections, the Neo4j graph, AgentDB) from the stored Parquet "
    "assets, audit them and publish them together (`release`), e.g. after pointing the resources at a new server.",
)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[whole_graph_job, movielens_job, serving_stores_job, daily_job, purge_old_runs, *release_assets.jobs],
    schedules=[purge_old_runs_daily, weekly_refit],
    sensors=[serving_stores_sensor(), source_release_sensor(SETTINGS.landing_dir(), SETTINGS.tv5_movielens_source),
             arrival_days_sensor(str(Path(DATA_DIR, *LANDING_DAYS))), refit_on_recall_drift()],
    executor=EXECUTORS[SETTINGS.tv5_executor],
    resources={
        "io_manager": PolarsParquetIOManager(base_dir=DATA_DIR),
        "lake": DataLake(base_dir=DATA_DIR),
        "encoder": PreloadingEncoderResource(),
        "milvus": milvus_from_env(SETTINGS),
        "neo4j": neo4j_from_env(SETTINGS),
        "day_warmup": day_warmup,
    },
)
