"""The synthetic stage run through Dagster: green checks, determinism, tampering, config changes, real data."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tv5_assets.core.storage import file_sha256
from tv5_assets.synthetic import archetypes
from tv5_assets.synthetic import platforms as pf
from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, materialize, release_config

SYNTHETIC = "group:synthetic"
ASSETS = ("demographics", "availability")
N_CHECKS = 17


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def _synthetic_checks(result: dg.ExecuteInProcessResult) -> dict:
    return {key: e for key, e in check_results(result).items() if key[0] in ASSETS}


def _failed(result: dg.ExecuteInProcessResult) -> dict:
    return {key: e.description for key, e in _synthetic_checks(result).items() if not e.passed}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake holding the MovieLens stage of the small sample (copied by each test that writes)."""
    lake = tmp_path_factory.mktemp("ingested")
    assert materialize("group:movielens", lake, release_config(**SMALL_SAMPLE)).success
    return lake


def _lake(ingested: Path, tmp_path: Path, name: str = "lake") -> Path:
    return Path(shutil.copytree(ingested, tmp_path / name))


def test_sample_materializes_with_green_checks_and_readable_metadata(ingested: Path, tmp_path: Path) -> None:
    lake = _lake(ingested, tmp_path)
    result = materialize(SYNTHETIC, lake)
    assert result.success
    assert len(_synthetic_checks(result)) == N_CHECKS and _failed(result) == {}
    users = pl.read_parquet(lake / "demographics.parquet")
    ratings = pl.read_parquet(lake / "ratings.parquet")
    assert users.height == ratings["user_id"].n_unique() == SMALL_SAMPLE["sample_users"]
    meta = _metadata(result, "demographics")
    assert "| Cinephile | 12.0 |" in meta["archetype_shares"]
    assert meta["archetype_chart"].startswith("![Archetype shares (%)](data:image/png;base64,")
    assert set(meta["archetype_pct"]) == set(archetypes.ARCHETYPES)
    assert meta["config"]["seed"] == 20_240_601 and len(meta["content_hash"]) == 24
    meta = _metadata(result, "availability")
    assert "| TV5MONDE | 15.0 |" in meta["platform_coverage"] and "| free |" in meta["platform_coverage"]
    assert meta["platform_chart"].startswith("![Catalogue share per platform (%)](data:image/png;base64,")
    assert meta["coverage_pct"] >= 85.0
    assert meta["platform_pct"] == {p: round(100 * s, 2) for p, s in pf.DEFAULT_SHARES.items()}


def test_two_runs_give_identical_hashes_and_bytes(ingested: Path, tmp_path: Path) -> None:
    first, second = _lake(ingested, tmp_path, "a"), _lake(ingested, tmp_path, "b")
    runs = [materialize(SYNTHETIC, lake) for lake in (first, second)]
    for asset in ASSETS:
        hashes = [_metadata(run, asset)["content_hash"] for run in runs]
        assert hashes[0] == hashes[1]
        assert file_sha256(first / f"{asset}.parquet") == file_sha256(second / f"{asset}.parquet")


def test_determinism_check_fails_on_a_tampered_frame(ingested: Path, tmp_path: Path) -> None:
    lake = _lake(ingested, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(SYNTHETIC, lake, instance=instance).success
    users = pl.read_parquet(lake / "demographics.parquet")
    users.with_columns(pl.when(pl.col("user_id") == users["user_id"][0]).then(pl.lit("Jean Dupont"))
                       .otherwise(pl.col("name")).alias("name")).write_parquet(lake / "demographics.parquet")
    offers = pl.read_parquet(lake / "availability.parquet")
    offers.with_columns(pl.col("available_until") + pl.duration(days=1)).write_parquet(lake / "availability.parquet")
    result = materialize(dg.AssetSelection.checks_for_assets(*ASSETS), lake, instance=instance,
                         raise_on_error=False)
    failed = _failed(result)
    assert set(failed) == {("demographics", "same_config_same_hash"), ("availability", "same_config_same_hash")}
    assert "the stored demographics (hash" in failed[("demographics", "same_config_same_hash")]
    assert "differs from what its materialization wrote" in failed[("availability", "same_config_same_hash")]
    assert _synthetic_checks(result)[("demographics", "same_config_same_hash")].severity == dg.AssetCheckSeverity.ERROR


def test_checks_fail_on_invalid_stored_rows(ingested: Path, tmp_path: Path) -> None:
    lake = _lake(ingested, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(SYNTHETIC, lake, instance=instance).success
    users = pl.read_parquet(lake / "demographics.parquet")
    pl.concat([users.head(1).with_columns(pl.lit("XX").alias("country")), users.slice(1)]).write_parquet(
        lake / "demographics.parquet")
    offers = pl.read_parquet(lake / "availability.parquet")
    offers.filter(pl.col("platform") != "MUBI").write_parquet(lake / "availability.parquet")
    result = materialize(dg.AssetSelection.checks_for_assets(*ASSETS), lake, instance=instance,
                         raise_on_error=False)
    failed = _failed(result)
    assert {("demographics", "valid_country_and_language_codes"), ("demographics", "platforms_offered_in_region"),
            ("availability", "platform_shares")} <= set(failed)
    assert "'MUBI': -10.0" in failed[("availability", "platform_shares")]
    assert "'country': 'XX'" in failed[("demographics", "valid_country_and_language_codes")]


def test_a_config_change_changes_availabilitys_data_version(ingested: Path, tmp_path: Path) -> None:
    lake = _lake(ingested, tmp_path)
    default = materialize("availability", lake)
    changed = materialize("availability", lake, {"ops": {"availability": {"config": {"noise_weight": 0.81}}}})
    assert _metadata(changed, "availability")["config"]["noise_weight"] == 0.81
    versions = [run.get_asset_materialization_events()[-1].materialization.tags["dagster/data_version"]
                for run in (default, changed)]
    assert versions[0] != versions[1]
    assert _failed(changed) == {}  # the checks recompute with the recorded config


@pytest.mark.realdata
def test_real_ml_latest_small_archetypes_follow_behaviour(tmp_path: Path, ml_latest_small: Path) -> None:
    result = materialize("group:movielens or group:synthetic", tmp_path, release_config(source=str(ml_latest_small)))
    assert result.success and _failed(result) == {}
    users = pl.read_parquet(tmp_path / "demographics.parquet")
    assert users.height == 610
    meta = _metadata(result, "demographics")
    for name, share in archetypes.TARGET_SHARES.items():
        assert abs(meta["archetype_pct"][name] - 100 * share) <= 1.0
    by = {row["archetype"]: row for row in meta["behaviour_agreement"]}

    def leader(column: str, pick=max) -> str:
        return pick(by, key=lambda name: by[name][column])

    assert leader("median_ratings") == archetypes.CINEPHILE
    assert leader("mean_genre_entropy", min) == archetypes.GENRE_SPECIALIST
    assert leader("children_animation_share") == archetypes.FAMILY
    assert leader("non_english_share") == archetypes.INTERNATIONAL
    assert leader("pre_1980_share") == archetypes.SENIOR
    assert leader("mean_release_year") == archetypes.YOUNG_ADULT
    assert by[archetypes.CINEPHILE]["median_ratings"] > 2 * by[archetypes.CASUAL]["median_ratings"]
    availability = _metadata(result, "availability")
    assert availability["coverage_pct"] >= 85.0
    for platform, share in pf.DEFAULT_SHARES.items():
        assert abs(availability["platform_pct"][platform] - 100 * share) <= 1.5
