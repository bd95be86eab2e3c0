"""The refit clock: a day's recall against the refit's (`evaluation/drift.py`), the `served_recall_drift` check on
`day_release`, and the sensor and schedule that refit (`release/refit.py`). No store or service is needed."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from dagster._core.test_utils import create_run_for_test

from tv5_assets.definitions import defs
from tv5_assets.evaluation import drift
from tv5_assets.ingestion.day_assets import ARRIVAL_DAYS
from tv5_assets.release import day_checks
from tv5_assets.release.refit import DRIFT_CHECK, DriftEvaluation, latest_evaluation, refit_decision
from tv5_assets_tests.harness import lake_resources

DAY = "2024-03-02"


def _vectors(key: str, rows: dict[int, list[float]]) -> pl.DataFrame:
    width = len(next(iter(rows.values())))
    return pl.DataFrame({key: pl.Series(list(rows), dtype=pl.Int32),
                         "vector": pl.Series([np.asarray(v, np.float32) for v in rows.values()],
                                             dtype=pl.Array(pl.Float32, width))})


def _ratings(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.Int32, "movie_id": pl.Int32, "rating": pl.Float32}, orient="row")


def _pairs(rows: list[tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.Int32, "movie_id": pl.Int32}, orient="row")


# five movies on a plane; user 10 looks along x, user 20 along y
MOVIES = _vectors("movie_id", {1: [1.0, 0.0], 2: [0.9, 0.1], 3: [0.0, 1.0], 4: [0.1, 0.9], 5: [-1.0, 0.0]})
USERS = _vectors("user_id", {10: [1.0, 0.0], 20: [0.0, 1.0], 40: [1.0, 0.0], 50: [1.0, 0.0]})
DAY_RATINGS = _ratings([
    (10, 2, 4.5), (10, 3, 5.0), (10, 5, 2.0),  # user 10 ranks 2, 4, 3, 5 (1 rated before): top 2 = {2, 4}
    (20, 3, 4.0), (20, 99, 5.0),  # user 20 ranks 3 first; movie 99 has no vector: not a positive
    (30, 1, 5.0),  # user 30 is new since the refit: no vector, not scored
    (40, 2, 3.0),  # no positive: not scored
    (50, 1, 5.0),  # rated before the day: excluded from the ranking, so not a positive; nothing left to score
])
RATED_BEFORE = _pairs([(10, 1), (50, 1)])


def test_day_recall_on_a_case_worked_by_hand() -> None:
    # user 10: 1 hit (movie 2) of min(2, 2) positives = 0.5; user 20: 1 of min(2, 1) = 1.0
    assert drift.day_recall(DAY_RATINGS, USERS, MOVIES, RATED_BEFORE, k=2) == (0.75, 2)
    assert drift.day_recall(DAY_RATINGS, USERS.lazy(), MOVIES, RATED_BEFORE, k=2, block=1) == (0.75, 2)
    # k beyond the catalogue: every movie is in the list, so every positive is found
    assert drift.day_recall(DAY_RATINGS, USERS, MOVIES, RATED_BEFORE, k=20) == (1.0, 2)
    # a stricter threshold leaves user 10 only movie 3 (ranked third): a miss
    assert drift.day_recall(DAY_RATINGS, USERS, MOVIES, RATED_BEFORE, k=2, positive_threshold=4.75) == (0.0, 1)


def test_day_recall_of_a_day_with_nothing_to_score_is_zero_users() -> None:
    assert drift.day_recall(DAY_RATINGS.clear(), USERS, MOVIES, RATED_BEFORE) == (0.0, 0)
    assert drift.day_recall(DAY_RATINGS, USERS.clear(), MOVIES, RATED_BEFORE) == (0.0, 0)


def test_drifted_passes_within_the_allowed_drop_and_fails_beyond_it() -> None:
    within = drift.drifted(0.23, 0.25, 0.10, users=1_000)
    assert within.passed and "within the 10% allowed" in within.description
    assert within.metadata["drop_share"] == pytest.approx(0.08)
    beyond = drift.drifted(0.20, 0.25, 0.10, users=1_000)
    assert not beyond.passed and "more than the 10% allowed" in beyond.description
    assert beyond.metadata["drop_share"] == pytest.approx(0.2)
    assert drift.drifted(0.30, 0.25, 0.10, users=1_000).passed  # better than at the refit


def test_drifted_passes_with_too_few_users_or_no_refit_evaluation() -> None:
    few = drift.drifted(0.0, 0.25, 0.10, users=12)
    assert few.passed and "too few users to judge: 12" in few.description and few.metadata["users"] == 12
    assert drift.drifted(0.0, 0.25, 0.10, users=12, min_users=10).passed is False
    none = drift.drifted(0.0, None, 0.10, users=1_000)
    assert none.passed and "no refit evaluation yet" in none.description


def test_the_refit_recall_is_the_served_scorers_figure() -> None:
    metadata = {"recall_at_20": {"most popular": 0.1, "hybrid (served)": 0.25}, "served_scorer": "hybrid (served)"}
    assert day_checks.refit_recall(metadata) == 0.25
    assert day_checks.refit_recall(None) is None
    assert day_checks.refit_recall({**metadata, "served_scorer": "hybrid (served, ANN search)"}) is None


def test_rated_before_is_the_users_current_rows_less_the_days_new_pairs() -> None:
    current = _pairs([(1, 10), (1, 11), (2, 10)])
    assert day_checks.rated_before(current, _ratings([(1, 11, 4.0)])).rows() == [(1, 10), (2, 10)]


def _evaluation(passed: bool, at: float, storage_id: int = 7) -> DriftEvaluation:
    return DriftEvaluation(storage_id, DAY, passed, at)


def test_the_sensor_decides_from_the_latest_evaluation_and_the_latest_refit() -> None:
    assert refit_decision(None, None).run_key is None
    assert refit_decision(_evaluation(True, 100.0), None).run_key is None
    assert refit_decision(_evaluation(False, 100.0), None).run_key == f"served_recall_drift:{DAY}:7"
    assert refit_decision(_evaluation(False, 100.0), 50.0).run_key == f"served_recall_drift:{DAY}:7"
    answered = refit_decision(_evaluation(False, 100.0), 150.0)
    assert answered.run_key is None and "created after the failed evaluation" in answered.reason


def _lake(base: Path, users: int) -> None:
    """A day of `users` users who each rate movie 40, which their refit vector ranks last of 40: recall 0."""
    movies = {m: [1.0, 0.01 * m] for m in range(1, 40)} | {40: [-1.0, 0.0]}
    _vectors("movie_id", movies).write_parquet(base / "hybrid_movie_vectors.parquet")
    ids = list(range(1, users + 1))
    _vectors("user_id", {u: [1.0, 0.0] for u in ids}).write_parquet(base / "hybrid_user_vectors.parquet")
    for asset in ("day_rating_changes", "day_user_ratings"):
        (base / asset).mkdir()
    pl.DataFrame({"user_id": pl.Series(ids, dtype=pl.Int32), "movie_id": pl.Series([40] * users, dtype=pl.Int32),
                  "change": "inserted", "old_rating": pl.Series([None] * users, dtype=pl.Float32),
                  "old_epoch": pl.Series([None] * users, dtype=pl.Int64),
                  "rating": pl.Series([5.0] * users, dtype=pl.Float32),
                  "epoch": pl.Series([1_709_337_600] * users, dtype=pl.Int64)}
                 ).write_parquet(base / "day_rating_changes" / f"{DAY}.parquet")
    pl.DataFrame({"user_id": pl.Series(ids * 2, dtype=pl.Int32),
                  "movie_id": pl.Series([1] * users + [40] * users, dtype=pl.Int32)}
                 ).write_parquet(base / "day_user_ratings" / f"{DAY}.parquet")


def _check(base: Path, instance: dg.DagsterInstance) -> dg.AssetCheckEvaluation:
    """The check alone on the day (its partition as the run's tag: `partition_key` looks for partitioned assets
    among the selected ones, and a check alone selects none)."""
    result = dg.materialize([*(defs.assets or []), *(defs.asset_checks or [])],
                            selection=dg.AssetSelection.checks(DRIFT_CHECK), tags={"dagster/partition": DAY},
                            instance=instance, resources=lake_resources(base))
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_the_check_warns_on_a_drifted_day_and_the_sensor_refits_once(tmp_path: Path) -> None:
    _lake(tmp_path, users=drift.MIN_USERS)
    sensor = defs.resolve_sensor_def("refit_on_recall_drift")
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ARRIVAL_DAYS.name, [DAY])
        first = _check(tmp_path, instance)  # recommendation_quality never ran: nothing to compare with
        assert first.passed and "no refit evaluation yet" in (first.description or "")
        assert sensor(dg.build_sensor_context(instance=instance)).run_requests == []

        instance.report_runless_asset_event(dg.AssetMaterialization("recommendation_quality", metadata={
            "recall_at_20": dg.MetadataValue.json({"hybrid (served)": 0.25}), "served_scorer": "hybrid (served)"}))
        drifted = _check(tmp_path, instance)
        assert not drifted.passed and drifted.severity == dg.AssetCheckSeverity.WARN and drifted.partition == DAY
        assert drifted.metadata["day_recall"].value == 0.0 and drifted.metadata["users"].value == drift.MIN_USERS
        assert drifted.metadata["refit_recall"].value == 0.25 and drifted.metadata["drop_share"].value == 1.0

        [request] = sensor(dg.build_sensor_context(instance=instance)).run_requests
        latest = latest_evaluation(instance)
        assert latest is not None and request.run_key == f"served_recall_drift:{DAY}:{latest.storage_id}"
        create_run_for_test(instance, job_name="whole_graph")  # the daemon launches it (or the weekly schedule)
        skipped = sensor(dg.build_sensor_context(instance=instance))
        assert not skipped.run_requests and "created after" in skipped.skip_reason.skip_message

        # a later failed evaluation (another day's) asks again, under its own key
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=DRIFT_CHECK.asset_key, check_name=DRIFT_CHECK.name, passed=False,
            severity=dg.AssetCheckSeverity.WARN, partition="2024-03-03", description="drifted"))
        [again] = sensor(dg.build_sensor_context(instance=instance)).run_requests
        assert again.run_key.startswith("served_recall_drift:2024-03-03:") and again.run_key != request.run_key
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=DRIFT_CHECK.asset_key, check_name=DRIFT_CHECK.name, passed=True,
            severity=dg.AssetCheckSeverity.WARN, partition="2024-03-04"))
        assert sensor(dg.build_sensor_context(instance=instance)).run_requests == []  # the latest passed
