"""The source sensor (`ingestion/sensors.py`, its logic in `ingestion/source_watch.py`) on real release
files and a real DagsterInstance: what it requests, what it waits for, what it skips, what it records.

`tick` evaluates the sensor the way the code server does (`evaluate_tick`) and stores its asset events the
way the daemon does (`report_runless_asset_event`); one test runs the daemon's own sensor iteration.
"""

from __future__ import annotations

import logging
import os
import shutil
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from tv5_assets.core.lake import DataLake
from tv5_assets.core.storage import frame_fingerprint
from tv5_assets.ingestion.assets import movielens_release
from tv5_assets.ingestion.release import release_manifest
from tv5_assets.ingestion.sensors import SENSOR_NAME, newest_seen, served_version, source_release_sensor
from tv5_assets.ingestion.source_watch import (
    CONFIGURED,
    LANDING,
    MARKER,
    DirState,
    Request,
    SeenSource,
    WatchCursor,
    candidates,
    configured_directory,
    observe,
    plan,
    release_fingerprint,
    scan,
)
from tv5_assets.sample.generator import SampleSpec, write_sample_release

TINY = {"movies": 50, "users": 5, "ratings": 100, "tags": 10, "genome_movies": 10, "genome_tags": 20}


def write_release(directory: Path, seed: int = 1, marker: bool = True) -> Path:
    """A tiny MovieLens-format release, delivered a minute ago (and marked complete, last)."""
    write_sample_release(directory, SampleSpec(seed=seed, **TINY))
    if marker:
        (directory / MARKER).write_text("delivered\n")
    age(directory)
    return directory


def age(directory: Path, seconds: float = 60) -> None:
    """Move every file's mtime back (the marker stays the newest), as if delivered `seconds` ago."""
    for path in directory.iterdir():
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def change_a_rating(directory: Path) -> None:
    """A corrected re-delivery of ratings.csv: the last rating changed (one byte more)."""
    lines = (directory / "ratings.csv").read_text().splitlines()
    user, movie, _, stamp = lines[-1].split(",")
    lines[-1] = f"{user},{movie},2.5,{stamp}"
    (directory / "ratings.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def instance(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    inst = dg.DagsterInstance.local_temp(tempdir=str(home), overrides={"telemetry": {"enabled": False}})
    yield inst
    inst.dispose()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing" / "releases"
    path.mkdir(parents=True)
    return path


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None = None):
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    for event in data.asset_events:  # what the daemon does with them (dagster/_daemon/sensor.py)
        instance.report_runless_asset_event(event)
    return data


# ---- the sensor ---------------------------------------------------------------------------------------


def test_the_definition_runs_by_default_every_30_s_on_whole_graph(landing: Path) -> None:
    sensor = source_release_sensor(str(landing), "sample")
    assert sensor.name == SENSOR_NAME
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    assert sensor.job_name == "whole_graph"


def test_nothing_to_request_while_the_folder_is_absent_or_empty(tmp_path: Path, landing: Path, instance) -> None:
    for folder in (tmp_path / "absent", landing):
        data = tick(source_release_sensor(str(folder), "sample"), instance)
        assert data.run_requests == [] and "no new release" in data.skip_message
        assert data.asset_events == []
    assert newest_seen(instance) is None


def test_a_new_release_gives_one_run_and_the_same_content_none(landing: Path, instance) -> None:
    release = write_release(landing / "ml-a")
    fingerprint = frame_fingerprint(release_manifest(release).drop("path"))
    sensor = source_release_sensor(str(landing), "sample")

    first = tick(sensor, instance)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key == f"ml-a:{fingerprint}"
    assert request.job_name == "whole_graph"
    assert request.run_config == {"ops": {"movielens_release": {"config": {"source": str(release)}}}}
    assert request.tags["tv5/source"] == str(release) and request.tags["tv5/source_fingerprint"] == fingerprint
    assert request.tags["tv5/source_watch"] == LANDING

    again = tick(sensor, instance, first.cursor)  # the cursor carried: known content, nothing hashed
    assert again.run_requests == [] and again.asset_events == []
    assert tick(sensor, instance, again.cursor).run_requests == []


def test_the_same_name_with_new_content_gives_one_more_run(landing: Path, instance) -> None:
    release = write_release(landing / "ml-a")
    sensor = source_release_sensor(str(landing), "sample")
    first = tick(sensor, instance)
    old_key = first.run_requests[0].run_key

    change_a_rating(release)  # in place: the old marker is now older than ratings.csv, so it is stale
    waiting = tick(sensor, instance, first.cursor)
    assert waiting.run_requests == [] and "ml-a: new or changed" in waiting.skip_message
    settled = tick(sensor, instance, waiting.cursor)
    assert len(settled.run_requests) == 1
    new_key = settled.run_requests[0].run_key
    assert new_key.startswith("ml-a:") and new_key != old_key
    assert new_key == f"ml-a:{release_fingerprint(release)}"
    assert tick(sensor, instance, settled.cursor).run_requests == []

    # a copier that writes the marker last is taken at once
    (release / "ratings.csv").write_text((release / "ratings.csv").read_text() + "1,1,4.0,1100000000\n")
    age(release)
    (release / MARKER).write_text("delivered again\n")
    marked = tick(sensor, instance, settled.cursor)
    assert [r.run_key for r in marked.run_requests] == [f"ml-a:{release_fingerprint(release)}"]


def test_a_half_copied_release_waits_until_complete(landing: Path, tmp_path: Path, instance) -> None:
    source = write_release(tmp_path / "ml-b", marker=False)
    target = landing / "ml-b"
    target.mkdir()
    sensor = source_release_sensor(str(landing), "sample")
    cursor = None

    for name in ("movies.csv", "links.csv"):  # a copy under way: required files still missing
        shutil.copy2(source / name, target / name)
        data = tick(sensor, instance, cursor)
        assert data.run_requests == [] and "ml-b: not a release yet" in data.skip_message
        cursor = data.cursor
    for name in ("ratings.csv", "tags.csv", "genome-tags.csv", "genome-scores.csv"):  # ratings.csv still growing
        shutil.copy2(source / name, target / name)
    with open(target / "ratings.csv", "a") as handle:
        handle.write("1,1,4.0,1100000000\n")
    data = tick(sensor, instance, cursor)
    assert data.run_requests == [] and "ml-b: new or changed" in data.skip_message
    shutil.copy2(source / "ratings.csv", target / "ratings.csv")  # grew (here: rewritten) since the last tick
    data = tick(sensor, instance, data.cursor)
    assert data.run_requests == []
    done = tick(sensor, instance, data.cursor)  # unchanged for a tick: complete
    assert [r.run_key for r in done.run_requests] == [f"ml-b:{release_fingerprint(target)}"]
    assert release_fingerprint(target) == release_fingerprint(source)


def test_a_marker_makes_a_release_count_at_once_and_only_when_written_last(landing: Path, instance) -> None:
    release = write_release(landing / "ml-c", marker=False)
    (release / MARKER).write_text("done\n")
    os.utime(release / MARKER, ns=(0, (release / "ratings.csv").stat().st_mtime_ns - 1))  # older: stale
    sensor = source_release_sensor(str(landing), "sample")
    assert tick(sensor, instance).run_requests == []
    (release / MARKER).write_text("done\n")  # now written last
    assert len(tick(sensor, instance).run_requests) == 1


def test_a_malformed_release_is_skipped_with_its_name_and_missing_file(landing: Path, instance) -> None:
    broken = write_release(landing / "ml-broken")
    (broken / "ratings.csv").unlink()
    sensor = source_release_sensor(str(landing), "sample")
    data = tick(sensor, instance)
    assert data.run_requests == []
    assert f"{broken}: marked complete (.complete) but missing required file(s) ratings.csv" in data.skip_message

    good = write_release(landing / "ml-good")  # one bad directory does not stop the others
    data = tick(sensor, instance, data.cursor)
    assert [r.run_key for r in data.run_requests] == [f"ml-good:{release_fingerprint(good)}"]


def test_the_same_content_in_two_directories_runs_once(landing: Path, instance) -> None:
    release = write_release(landing / "ml-a")
    shutil.copytree(release, landing / "ml-a-copy")
    data = tick(source_release_sensor(str(landing), "sample"), instance)
    assert [r.run_key for r in data.run_requests] == [f"ml-a:{release_fingerprint(release)}"]


def test_the_configured_source_directory_is_watched(tmp_path: Path, landing: Path, instance) -> None:
    configured = write_release(tmp_path / "ml-configured")
    sensor = source_release_sensor(str(landing), str(configured))
    data = tick(sensor, instance)
    assert [r.run_key for r in data.run_requests] == [f"ml-configured:{release_fingerprint(configured)}"]
    assert data.run_requests[0].tags["tv5/source_watch"] == CONFIGURED
    assert tick(sensor, instance, data.cursor).run_requests == []


def test_each_new_content_is_recorded_and_newest_seen_reads_it_back(landing: Path, instance) -> None:
    sensor = source_release_sensor(str(landing), "sample")
    assert newest_seen(instance) is None
    first = write_release(landing / "ml-a")
    before = time.time()
    data = tick(sensor, instance)
    seen = newest_seen(instance)
    assert seen == SeenSource(str(first), "ml-a", release_fingerprint(first), seen.first_seen)
    assert before <= seen.first_seen <= time.time()
    record = instance.fetch_observations(movielens_release.key, limit=1).records[0]
    assert {"source", "fingerprint", "first_seen"} <= set(record.asset_observation.metadata)

    second = write_release(landing / "ml-b", seed=2)
    data = tick(sensor, instance, data.cursor)
    assert newest_seen(instance).fingerprint == release_fingerprint(second) != seen.fingerprint
    tick(sensor, instance, data.cursor)  # nothing new: nothing more recorded
    assert len(instance.fetch_observations(movielens_release.key, limit=10).records) == 2


def test_the_fingerprint_is_the_assets_data_version_and_served_content_is_not_rerun(
    tmp_path: Path, landing: Path, instance
) -> None:
    release = write_release(landing / "ml-a")
    sensor = source_release_sensor(str(landing), "sample")
    request = tick(sensor, instance).run_requests[0]
    result = dg.materialize(
        [movielens_release], run_config=request.run_config, instance=instance,
        resources={"lake": DataLake(base_dir=str(tmp_path / "lake"))},
    )
    assert result.success
    assert served_version(instance) == request.tags["tv5/source_fingerprint"]

    # a sensor starting afresh (no cursor) on content the graph already serves: seen, not requested
    fresh = tick(sensor, instance, None)
    assert fresh.run_requests == [] and len(fresh.asset_events) == 1
    assert newest_seen(instance).fingerprint == served_version(instance) == release_fingerprint(release)


@pytest.mark.timeout(120)
def test_the_daemon_launches_one_run_per_run_key_even_when_the_cursor_is_lost(
    tmp_path: Path, landing: Path, instance
) -> None:
    """The daemon's own sensor iteration: the run is created (queued), the observation stored; with the
    sensor's state deleted (cursor lost) the sensor requests the same run_key again and Dagster creates
    no second run."""
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, create_test_daemon_workspace_context
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.sensor import execute_sensor_iteration

    release = write_release(landing / "ml-a")
    code = tmp_path / "code_location.py"
    code.write_text(textwrap.dedent(f"""
        import dagster as dg
        from tv5_assets.core.lake import DataLake
        from tv5_assets.ingestion.assets import movielens_release
        from tv5_assets.ingestion.sensors import source_release_sensor

        defs = dg.Definitions(
            assets=[movielens_release],
            jobs=[dg.define_asset_job("whole_graph", selection=[movielens_release])],
            sensors=[source_release_sensor({str(landing)!r}, "sample")],
            resources={{"lake": DataLake(base_dir={str(tmp_path / "lake")!r})}},
        )
    """))
    target = InProcessTestWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=str(code), attribute="defs"))
    )
    key = f"ml-a:{release_fingerprint(release)}"
    with create_test_daemon_workspace_context(target, instance) as workspace:
        def daemon_tick() -> None:
            list(execute_sensor_iteration(workspace, logging.getLogger("test_source_sensor"), None, None))

        daemon_tick()
        runs = instance.get_runs()
        assert [run.tags["dagster/run_key"] for run in runs] == [key]
        assert runs[0].run_config["ops"]["movielens_release"]["config"]["source"] == str(release)
        assert runs[0].status == dg.DagsterRunStatus.QUEUED
        assert newest_seen(instance).fingerprint == release_fingerprint(release)  # stored by the daemon

        (state,) = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        assert state.instigator_data.cursor
        instance.delete_instigator_state(state.instigator_origin_id, state.selector_id)
        daemon_tick()
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
        assert len(ticks) == 2 and ticks[0].tick_data.run_keys == [key]  # requested again ...
        assert len(instance.get_runs()) == 1  # ... and not launched again


# ---- the pure logic -----------------------------------------------------------------------------------


def test_observe_signature_marker_and_missing_files(tmp_path: Path) -> None:
    release = write_release(tmp_path / "ml-a")
    seen = observe(release)
    assert seen.path == release.absolute() and seen.name == "ml-a" and seen.kind == LANDING
    assert seen.marked and seen.missing == ()
    assert observe(release) == seen  # cheap and stable: nothing changed
    (release / "notes.txt").write_text("not a release file")
    assert observe(release).signature == seen.signature
    change_a_rating(release)
    changed = observe(release)
    assert changed.signature != seen.signature and not changed.marked  # the marker is older than a file now
    (release / "tags.csv").unlink()
    assert observe(release).missing == ("tags.csv",)


def test_scan_ignores_staging_and_plain_files(tmp_path: Path, landing: Path) -> None:
    assert scan(tmp_path / "absent") == []
    for name in ("b", "a", ".a.partial", "_tmp"):
        (landing / name).mkdir()
    (landing / "readme.txt").write_text("x")
    assert [c.name for c in scan(landing)] == ["a", "b"]


def test_configured_directory_only_for_a_local_directory(tmp_path: Path, landing: Path) -> None:
    assert configured_directory("sample") is None
    assert configured_directory("ml-25m") is None and configured_directory("ml-latest-small") is None
    assert configured_directory(str(tmp_path / "absent")) is None
    assert configured_directory(str(tmp_path)) == tmp_path.absolute()
    (landing / "ml-a").mkdir()
    both = candidates(landing, str(landing / "ml-a"))  # the configured source is a landing directory
    assert [(c.name, c.kind) for c in both] == [("ml-a", LANDING)]


def test_cursor_round_trip_and_unreadable_cursors() -> None:
    cursor = WatchCursor({"/x/ml-a": DirState("abc", "fp1"), "/x/ml-b": DirState("def", None)}, {"fp1": 12.5})
    assert WatchCursor.from_json(cursor.to_json()) == cursor
    for text in (None, "", "not json", "[1, 2]", '{"v": 99, "dirs": {}}', '{"dirs": {"/x": {}}}'):
        assert WatchCursor.from_json(text) == WatchCursor()


def test_plan_hashes_only_when_the_signature_changes(tmp_path: Path) -> None:
    release = write_release(tmp_path / "ml-a")
    reads: list[Path] = []

    def counted(directory: Path) -> str:
        reads.append(directory)
        return release_fingerprint(directory)

    first = plan([observe(release)], WatchCursor(), now=100.0, fingerprint=counted)
    assert len(reads) == 1 and first.hashed == (str(release),)
    assert [r.run_key for r in first.requests] == [f"ml-a:{release_fingerprint(release)}"]
    assert first.sightings == (SeenSource(str(release), "ml-a", release_fingerprint(release), 100.0),)
    second = plan([observe(release)], first.cursor, now=130.0, fingerprint=counted)
    assert len(reads) == 1 and second.hashed == () and second.requests == () and second.sightings == ()
    assert second.cursor == first.cursor
    (release / MARKER).touch()  # touching the marker forces a re-hash (same content: nothing requested)
    third = plan([observe(release)], second.cursor, now=160.0, fingerprint=counted)
    assert len(reads) == 2 and third.requests == ()


def test_plan_skips_served_content_forgets_gone_directories_and_bounds_seen(tmp_path: Path) -> None:
    release = write_release(tmp_path / "ml-a")
    fingerprint = release_fingerprint(release)
    served = plan([observe(release)], WatchCursor(), now=1.0, served=fingerprint)
    assert served.requests == () and [s.fingerprint for s in served.sightings] == [fingerprint]
    gone = plan([], served.cursor, now=2.0)
    assert gone.cursor.dirs == {} and gone.cursor.seen == {fingerprint: 1.0}
    many = WatchCursor(seen={f"fp{i}": float(i) for i in range(5)})
    assert list(plan([], many, now=9.0, seen_limit=3).cursor.seen) == ["fp2", "fp3", "fp4"]


def test_plan_reports_an_unreadable_release_instead_of_raising(tmp_path: Path) -> None:
    release = write_release(tmp_path / "ml-a")
    looked = observe(release)
    (release / "ratings.csv").unlink()  # gone between the look and the read
    result = plan([looked], WatchCursor(), now=1.0)
    assert result.requests == () and len(result.problems) == 1
    assert str(release) in result.problems[0] and "ratings.csv" in result.problems[0]


def test_request_names_run_key_config_and_tags() -> None:
    request = Request("/data/landing/ml-a", "ml-a", "0123abcd", LANDING)
    assert request.run_key == "ml-a:0123abcd"
    assert request.run_config == {"ops": {"movielens_release": {"config": {"source": "/data/landing/ml-a"}}}}
    assert request.tags == {"tv5/source": "/data/landing/ml-a", "tv5/source_name": "ml-a",
                            "tv5/source_fingerprint": "0123abcd", "tv5/source_watch": LANDING}
