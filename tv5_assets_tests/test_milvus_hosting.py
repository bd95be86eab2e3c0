"""Milvus Lite served from a process of its own (`vector_store.hosting`, installed by the `daily` job's executor), on
real Milvus Lite files: the data goes where it went in-process, the child holds the file's lock while a resource is
open, lets go when it closes, and lets go by itself when the process that started it is killed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import psutil
import pytest
from milvus_lite import server_manager

from tv5_assets.definitions import DAY_EXECUTOR, defs
from tv5_assets.evaluation.ann import SPEC
from tv5_assets.vector_store import hosting
from tv5_assets.vector_store.connection import lite_locked_elsewhere
from tv5_assets.vector_store.resources import MilvusResource
from tv5_assets_tests.milvus_support import make_resource

REPO = Path(__file__).resolve().parents[1]


def _lite_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if "tv5_assets.vector_store.hosting" in " ".join(p.cmdline())]


def _rows(n: int, dim: int = 8) -> pl.DataFrame:
    vectors = np.random.default_rng(7).standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # unit length: each one its own best inner product
    return pl.DataFrame({"id": np.arange(1, n + 1, dtype=np.int64),
                         "vector": pl.Series(vectors, dtype=pl.Array(pl.Float32, dim))})


@pytest.fixture
def beside() -> Iterator[None]:
    """Lite served from child processes for one test (as in a `daily` run), pymilvus's own servers after it."""
    hosting.install()
    yield
    hosting.uninstall()


def test_lite_files_are_served_from_a_child_process_that_holds_the_lock_until_closed(tmp_path: Path, beside: None
                                                                                      ) -> None:
    assert isinstance(server_manager.server_manager_instance, hosting.ProcessServerManager)
    resource = make_resource("lite", tmp_path)
    path = Path(resource.uri)
    with resource.connected() as milvus:
        children = _lite_children()
        assert len(children) == 1 and children[0].pid != os.getpid()
        assert str(path) in " ".join(children[0].cmdline())
        assert lite_locked_elsewhere(path)  # the child holds it (this process never opened the file)
        name = milvus.alias_name("hosted")
        milvus.create_collection(name, SPEC, 8)
        assert milvus.insert(name, _rows(500), SPEC) == 500
        milvus.flush(name)
        milvus.build_index(name, SPEC)
        milvus.load(name)
        assert milvus.count(name) == 500
        hits = milvus.search(name, _rows(500)["vector"].to_numpy()[41:42], limit=1, spec=SPEC)
        assert hits[0][0]["id"] == 42
    assert not children[0].is_running()  # stopped (and reaped) when the resource closed
    assert not _lite_children() and not lite_locked_elsewhere(path)
    with resource.connected() as milvus:  # the data outlived the server process
        milvus.load(name)
        assert milvus.count(name) == 500


KILLED_WHILE_OPEN = textwrap.dedent("""
    import os, signal, sys
    from tv5_assets.vector_store import hosting
    from tv5_assets.vector_store.resources import MilvusResource
    hosting.install()
    with MilvusResource(uri=sys.argv[1]).connected() as milvus:
        milvus.list_collections()
        print("open", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_killed_parent_never_leaves_the_lite_file_locked(tmp_path: Path, beside: None) -> None:
    """The run that started the server dies (killed mid-day, out of memory): its server sees its stdin close,
    closes the database and exits, so the re-run opens the file instead of waiting for a lock nobody frees."""
    path = tmp_path / "milvus.db"
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_OPEN, str(path)], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert killed.returncode == -9 and killed.stdout.strip() == "open", killed.stderr[-2000:]
    deadline = time.monotonic() + 60
    while lite_locked_elsewhere(path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not lite_locked_elsewhere(path)
    orphans = [p for p in psutil.process_iter(["cmdline"])
               if str(path) in " ".join(p.info["cmdline"] or []) and "hosting" in " ".join(p.info["cmdline"] or [])]
    assert not orphans
    with make_resource("lite", tmp_path).connected() as milvus:
        assert milvus.list_collections() == []


def test_a_file_locked_elsewhere_is_refused_without_a_server(tmp_path: Path, beside: None) -> None:
    """The child cannot take a lock another process holds: `start` answers None (pymilvus then raises, and the
    resource waits for the lock as before) and leaves no process behind."""
    path = tmp_path / "milvus.db"
    with make_resource("lite", tmp_path).connected():
        assert hosting.start(str(path), timeout_s=60) is None
        assert len(_lite_children()) == 1  # only the resource's own server


@dg.op
def served_by(milvus: MilvusResource) -> bool:
    milvus.list_collections()
    return bool(_lite_children())  # a child process serves the file


def _served_job(executor: dg.ExecutorDefinition) -> dg.JobDefinition:
    return dg.GraphDefinition("served", node_defs=[served_by]).to_job(
        executor_def=executor, resource_defs={"milvus": MilvusResource(uri=os.environ["TV5_TEST_LITE"])})


def served_on_the_day_executor() -> dg.JobDefinition:
    """A one-op job on Milvus Lite at $TV5_TEST_LITE, on the `daily` job's executor (reconstructable: no args)."""
    return _served_job(DAY_EXECUTOR)


def served_in_process() -> dg.JobDefinition:
    """The same job on Dagster's in-process executor."""
    return _served_job(dg.in_process_executor)


def test_the_daily_jobs_executor_serves_lite_beside_the_run_and_other_runs_keep_it_in_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `daily` job's executor installs the manager before the run's resources open Lite (a run as the daemon
    launches it: `execute_job`, which builds the job's own executor); Dagster's in-process executor (and the step
    processes of multiprocess runs) serve Lite from their own threads."""
    assert defs.resolve_job_def("daily").executor_def is DAY_EXECUTOR
    path = tmp_path / "milvus.db"
    monkeypatch.setenv("TV5_TEST_LITE", str(path))
    try:
        (tmp_path / "dagster").mkdir()
        with dg.DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
            for job, beside_run in ((served_in_process, False), (served_on_the_day_executor, True)):
                with dg.execute_job(dg.reconstructable(job), instance=instance) as result:
                    assert result.success and result.output_for_node("served_by") is beside_run, job.__name__
                assert isinstance(server_manager.server_manager_instance, hosting.ProcessServerManager) is beside_run
                assert not _lite_children() and not lite_locked_elsewhere(path)
    finally:
        hosting.uninstall()
