"""One writer per store across runs, on the embedded (SQLite) instance that `dagster dev` runs.

Two runs of the same store selection with `force_rebuild`, launched at once through the webserver's GraphQL
API (the daemon dequeues them), on Milvus Lite and on the local Milvus server: both succeed, the second's
store steps start only after the first's checks on that store ended (event-log timestamps), and the
collection behind the alias is complete. Then the same through `dagster asset materialize` (in-process,
no queue): the younger run waits in the store resource's set-up, logging one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from tv5_assets.definitions import defs
from tv5_assets.platform.instance import prepare_home
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets_tests.conftest import REPO
from tv5_assets_tests.dagster_runs import (
    dequeued_at, failure_reasons, launch, store_window, wait_finished, wait_http, workload)
from tv5_assets_tests.milvus_support import write_source_lake
from tv5_assets_tests.services import free_port

pytestmark = [pytest.mark.milvus_server, pytest.mark.daemon, pytest.mark.extended]

STORE = "milvus/media_vectors"
MOVIES = 3_000  # enough rows that a build lasts a few seconds on Lite


def store_checks(key: str) -> list[tuple[str, str]]:
    asset_key = dg.AssetKey.from_user_string(key)
    return sorted((key, check.name) for check in defs.resolve_asset_graph().asset_check_keys
                  if check.asset_key == asset_key)


def rebuild_config(milvus: dict | None = None) -> dict:
    config: dict = {"ops": {"milvus__media_vectors": {"config": {"force_rebuild": True}}}}
    if milvus:
        config["resources"] = {"milvus": {"config": milvus}}
    return config


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dg.DagsterInstance, Path]]:
    """`dagster dev` on loopback (webserver + daemon + code server) with its own embedded instance and lake."""
    base = tmp_path_factory.mktemp("collisions")
    home, lake = prepare_home("embedded", base / "dagster_home"), base / "lake"
    write_source_lake(lake, movies=MOVIES)
    env = {**os.environ, "DAGSTER_HOME": str(home), "TV5_DATA_DIR": str(lake), "HF_HUB_OFFLINE": "1",
           "TV5_EXECUTOR": "in_process"}
    env.pop("TV5_MILVUS_URI", None)  # Lite by default; the server runs get the URI through run config
    port, log = free_port(), base / "dagster-dev.log"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/server_info", server, log)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield url, instance, lake
    finally:
        # the whole session: `dagster dev` alone exited on SIGTERM and left its webserver and daemon running
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)


def assert_serialised(instance: dg.DagsterInstance, first: str, second: str, queued: bool = True) -> None:
    runs = wait_finished(instance, [first, second], timeout_s=600)
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * 2, "\n".join(
        f"{run.run_id} {run.status.value}: {failure_reasons(instance, run.run_id)}" for run in runs)
    windows = sorted((store_window(instance, run_id) for run_id in (first, second)), key=lambda w: w.first_start)
    print("store steps of the two runs, from the event log:\n" + "\n".join(w.describe() for w in windows))
    assert windows[1].first_start >= windows[0].last_end, (
        f"run {windows[1].run_id} started a store step {windows[0].last_end - windows[1].first_start:.2f} s before "
        f"run {windows[0].run_id}'s last store step ended")
    if queued:  # the queue held the younger run back: the daemon dequeued it only once the older one was done
        dequeued = dequeued_at(instance, windows[1].run_id)
        assert dequeued is not None and dequeued >= windows[0].last_end, (dequeued, windows[0].last_end)
        print(f"run {windows[1].run_id[:8]} dequeued {dequeued - windows[0].last_end:.2f} s after the older run's "
              "last store step ended")


def assert_staged_complete(milvus: MilvusResource, instance: dg.DagsterInstance, rows: int) -> None:
    """The younger run's staged collection is whole, and it is the store's only version (the older run's stage,
    never published, was dropped by the younger one, not mid-build)."""
    latest = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(STORE))
    staged = latest.asset_materialization.metadata["staged_version"].value
    with milvus.connected() as store:
        assert store.has_collection(staged), f"the staged collection {staged} is gone"
        store.ensure_searchable(staged)
        assert store.count(staged) == rows
        versions = [c for c in store.list_collections() if c.startswith(store.alias_name("media_vectors__v"))]
        assert versions == [staged], f"collections left behind or lost: {versions}"


# CI runs Lite here and the server on Postgres (test_team_runs); `-m matrix` adds the other two pairs
@pytest.mark.parametrize("backend", ["lite", pytest.param("server", marks=pytest.mark.matrix)])
def test_two_store_runs_launched_at_once_through_the_daemon_queue_one_after_the_other(
        dagster_dev, milvus_server, backend: str) -> None:
    url, instance, lake = dagster_dev
    milvus = ({"uri": milvus_server.uri, "collection_prefix": f"coll{uuid.uuid4().hex[:6]}_"}
              if backend == "server" else None)
    config, checks = rebuild_config(milvus), store_checks(STORE)
    assert len(checks) >= 5
    first = launch(url, [STORE], checks, config, tags={"test": f"collision-{backend}-1"})
    second = launch(url, [STORE], checks, config, tags={"test": f"collision-{backend}-2"})
    assert_serialised(instance, first, second)
    resource = MilvusResource(**milvus) if milvus else MilvusResource(uri=str(lake / "milvus.db"))
    assert_staged_complete(resource, instance, MOVIES)


def test_in_process_runs_skip_the_queue_but_wait_for_the_older_run_in_the_store_resource(
        dagster_dev, tmp_path: Path) -> None:
    """`dagster asset materialize` twice at once on one store: the younger run waits (one log line)."""
    url, instance, lake = dagster_dev
    env = {**os.environ, "DAGSTER_HOME": str(instance.root_directory), "TV5_DATA_DIR": str(lake),
           "HF_HUB_OFFLINE": "1", "TV5_EXECUTOR": "in_process"}
    env.pop("TV5_MILVUS_URI", None)
    config = tmp_path / "force.yaml"
    config.write_text("ops:\n  milvus__media_vectors:\n    config:\n      force_rebuild: true\n")
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "tv5_assets.definitions",
               "--select", STORE, "-c", str(config)]
    before = {run.run_id for run in instance.get_runs()}
    runs = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    new = sorted((run for run in workload(instance.get_runs()) if run.run_id not in before),
                 key=lambda run: instance.get_run_record_by_id(run.run_id).create_timestamp)
    assert len(new) == 2
    assert_serialised(instance, new[0].run_id, new[1].run_id, queued=False)
    waits = [line for line in "\n".join(outputs).splitlines() if "waiting for older run(s)" in line]
    assert len(waits) == 1 and new[0].run_id in waits[0], waits
    assert "Traceback" not in "\n".join(outputs)
    assert_staged_complete(MilvusResource(uri=str(lake / "milvus.db")), instance, MOVIES)
