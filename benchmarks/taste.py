"""Benchmark: the taste stage, its Milvus collections and `recommendation_quality` at ml-25m shape.

Run: `python -m benchmarks.taste [--max-users 10000] [--ann-users 2000]`. Targets (2 cores / 24 GiB):
collaborative + hybrid vectors (the four taste assets) <= 5 min and <= 8 GiB; the evaluation <= 5 min
on a seeded sample of `--max-users` users (all their ratings, so 10,000 users ~ 1.5M ratings), of whom
`--ann-users` are also searched through Milvus Lite.

Everything runs through Dagster (`dg.materialize` of the project's own assets and checks, real
resources: Milvus Lite in the benchmark's lake, the packaged encoder) in a spawned process per phase,
so each peak RSS is the phase's own. The input is the generated ml-25m-shaped release (25,000,095
ratings, 162,541 users, 62,423 movies); `content_vectors` is encoded once into the lake's embedding
cache (minutes on this CPU, untimed here: benchmarks.encoder_throughput measures it). Baselines,
measured in the same run: the seed's content `user_vectors` (the asset the hybrid user vectors
extend) for the training phase; for the evaluation, ranking users one at a time in a Python loop
(score every movie, drop the rated ones, sort), timed on 300 users and extrapolated.
"""

from __future__ import annotations

import argparse
import shutil
import time
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from benchmarks.common import BENCH_DIR, measure, ml25m_tables, report
from tv5_assets.core.io_manager import PolarsParquetIOManager
from tv5_assets.core.lake import DataLake
from tv5_assets.core.storage import write_parquet_atomic
from tv5_assets.definitions import defs
from tv5_assets.embeddings.resources import EncoderResource
from tv5_assets.graph_store.resources import Neo4jResource
from tv5_assets.release.warmup import day_warmup
from tv5_assets.synthetic.availability import AvailabilityRules, build_availability, rating_counts
from tv5_assets.synthetic.demographics import build_demographics
from tv5_assets.vector_store.resources import MilvusResource

LAKE = BENCH_DIR / "taste"
TABLES = BENCH_DIR / "tables"
TASTE = ("collaborative_movie_vectors", "collaborative_user_vectors", "hybrid_movie_vectors", "hybrid_user_vectors")
COLLECTIONS = ("milvus/hybrid_media_vectors", "milvus/hybrid_user_vectors")


def _resources() -> dict[str, Any]:
    # every resource key the Definitions name; Neo4j is never opened (no graph asset is selected)
    return {"io_manager": PolarsParquetIOManager(base_dir=str(LAKE)), "lake": DataLake(base_dir=str(LAKE)),
            "encoder": EncoderResource(), "milvus": MilvusResource(uri=str(LAKE / "milvus.db")),
            "neo4j": Neo4jResource(uri="bolt://127.0.0.1:1", user="neo4j", password="unused"),
            "day_warmup": day_warmup}


def _keys(*names: str) -> list[dg.AssetKey]:
    return [dg.AssetKey.from_user_string(n) for n in names]


def _run(selection: dg.AssetSelection, run_config: dict | None = None) -> dict[str, Any]:
    """Materialize `selection` in this process: per-asset wall times, check outcomes, metadata of interest."""
    result = dg.materialize([*defs.assets, *defs.asset_checks], selection=selection, resources=_resources(),
                            run_config=run_config or {}, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)
    checks = [(e.asset_key.to_user_string(), e.check_name, e.passed, e.severity.value, e.description)
              for e in result.get_asset_check_evaluations()]
    metadata = {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()
                                               if not isinstance(v.value, str) or len(v.value) < 400}
                for e in result.get_asset_materialization_events()}
    return {"success": result.success, "checks": checks, "metadata": metadata}


def prepare() -> dict[str, int]:
    """The lake: ratings, movies, genome, demographics, availability, then content and user vectors (untimed)."""
    ml25m_tables()
    LAKE.mkdir(parents=True, exist_ok=True)
    for name in ("ratings", "movies", "genome"):
        if not (LAKE / f"{name}.parquet").exists():
            shutil.copyfile(TABLES / f"{name}.parquet", LAKE / f"{name}.parquet")
    ratings, movies = pl.scan_parquet(LAKE / "ratings.parquet"), pl.read_parquet(LAKE / "movies.parquet")
    if not (LAKE / "demographics.parquet").exists():
        write_parquet_atomic(build_demographics(ratings, movies, 42).users, LAKE / "demographics.parquet")
    if not (LAKE / "availability.parquet").exists():
        write_parquet_atomic(build_availability(movies, rating_counts(ratings), AvailabilityRules()),
                             LAKE / "availability.parquet")
    if not (LAKE / "content_vectors.parquet").exists():
        started = time.perf_counter()
        print("encoding content_vectors once into the benchmark lake (minutes on CPU) ...", flush=True)
        outcome = _run(dg.AssetSelection.assets(*_keys("content_vectors")).without_checks())
        assert outcome["success"], outcome
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return {"ratings": ratings.select(pl.len()).collect().item(), "movies": movies.height,
            "users": ratings.select(pl.col("user_id").n_unique()).collect().item()}


def seed_user_vectors_phase() -> dict[str, Any]:
    return _run(dg.AssetSelection.assets(*_keys("user_vectors")).without_checks())


def taste_phase() -> dict[str, Any]:
    return _run(dg.AssetSelection.assets(*_keys(*TASTE)).without_checks())


def checks_phase() -> dict[str, Any]:
    """The taste checks and the two hybrid collections with all their checks (Milvus Lite)."""
    return _run(dg.AssetSelection.checks_for_assets(*_keys(*TASTE)) | dg.AssetSelection.assets(*_keys(*COLLECTIONS)))


def evaluation_phase(max_users: int, ann_users: int) -> dict[str, Any]:
    config = {"ops": {"recommendation_quality": {"config": {"max_users": max_users, "ann_max_users": ann_users}}}}
    return _run(dg.AssetSelection.assets(*_keys("recommendation_quality")), config)


def loop_baseline_phase(users: int) -> dict[str, float]:
    """Rank `users` users one at a time with the hybrid vectors: score all movies, mask rated ones, full sort."""
    movies = pl.read_parquet(LAKE / "hybrid_movie_vectors.parquet")
    people = pl.read_parquet(LAKE / "hybrid_user_vectors.parquet").head(users)
    matrix = np.asarray(movies["vector"].to_numpy(), np.float32)
    index = {m: i for i, m in enumerate(movies["movie_id"].to_list())}
    rated = (pl.scan_parquet(LAKE / "ratings.parquet").join(people.lazy().select("user_id"), on="user_id", how="semi")
             .group_by("user_id").agg("movie_id").collect())
    seen = dict(zip(rated["user_id"].to_list(), rated["movie_id"].to_list()))
    started = time.perf_counter()
    for user, vector in zip(people["user_id"].to_list(), people["vector"].to_numpy()):
        scores = matrix @ vector
        scores[[index[m] for m in seen.get(user, []) if m in index]] = -np.inf
        np.argsort(-scores)[:50]
    return {"users": people.height, "seconds": time.perf_counter() - started}


def _wall(outcome: dict[str, Any], asset: str) -> float:
    return float(outcome["metadata"].get(asset, {}).get("wall_time_s", 0.0))


def _check_counts(outcome: dict[str, Any]) -> str:
    passed = sum(1 for *_, ok, _, _ in outcome["checks"] if ok)
    failed = [f"{a}:{c} ({sev}) {d}" for a, c, ok, sev, d in outcome["checks"] if not ok]
    return f"{passed} passed, {len(failed)} failed" + (": " + "; ".join(failed) if failed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-users", type=int, default=10_000)
    parser.add_argument("--ann-users", type=int, default=2_000)
    args = parser.parse_args()
    shape = prepare()
    seed, seed_s, seed_mib = measure(seed_user_vectors_phase)
    taste, taste_s, taste_mib = measure(taste_phase)
    assert taste["success"], taste
    checked, checked_s, checked_mib = measure(checks_phase)
    quality, quality_s, quality_mib = measure(evaluation_phase, args.max_users, args.ann_users)
    loop, _, _ = measure(loop_baseline_phase, 300)
    meta = quality["metadata"].get("recommendation_quality", {})
    evaluated = int(meta.get("users_sampled", 0))
    loop_extrapolated = loop["seconds"] / loop["users"] * evaluated * 6  # six ranked scorers per user
    per_asset = ", ".join(f"{a} {_wall(taste, a):.1f} s" for a in TASTE)
    figures = meta.get("recall_at_20", {})
    report([
        ("input", f"{shape['ratings']:,} ratings, {shape['users']:,} users, {shape['movies']:,} movies"),
        ("seed user_vectors (baseline)", f"{seed_s:.1f} s, peak {seed_mib:,.0f} MiB"),
        ("taste: 4 assets", f"{taste_s:.1f} s, peak {taste_mib:,.0f} MiB (target <= 300 s, <= 8,192 MiB: "
                            f"{'met' if taste_s <= 300 and taste_mib <= 8192 else 'NOT met'})"),
        ("  per asset", per_asset),
        ("  vs seed user_vectors", f"{taste_s / seed_s:.1f}x its time"),
        ("taste checks + hybrid collections", f"{checked_s:.1f} s, peak {checked_mib:,.0f} MiB; checks "
                                              f"{_check_counts(checked)}"),
        ("  collections", ", ".join(f"{c} {checked['metadata'].get(c, {}).get('entity_count', 0):,} entities, "
                                    f"build {checked['metadata'].get(c, {}).get('build_s', 0)} s" for c in COLLECTIONS)),
        ("evaluation", f"{quality_s:.1f} s, peak {quality_mib:,.0f} MiB on {evaluated:,} of "
                       f"{meta.get('users_total', 0):,} users ({meta.get('train_ratings', 0):,} train ratings), "
                       f"{args.ann_users:,} searched through Milvus Lite (target <= 300 s: "
                       f"{'met' if quality_s <= 300 else 'NOT met'}); checks {_check_counts(quality)}"),
        ("  steps", str(meta.get("seconds", {}))),
        ("  recall@20", ", ".join(f"{k} {v}" for k, v in figures.items())),
        ("  served vs most popular / reference", f"{meta.get('served_vs_most_popular')}x / "
                                                  f"{meta.get('served_vs_reference')}x"),
        ("per-user loop (baseline)", f"{loop['seconds']:.2f} s for {loop['users']} users with one scorer; "
                                     f"extrapolated {loop_extrapolated:.0f} s for {evaluated:,} users x 6 scorers "
                                     f"({loop_extrapolated / max(quality_s, 1e-9):.1f}x the evaluation's whole time)"),
    ])


if __name__ == "__main__":
    main()
