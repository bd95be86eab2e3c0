"""The Milvus resource and the versioned rebuild on real Milvus (Lite and the local 2.3.5 server): round
trips, alias swaps, errors, and the two fault cases (server unreachable; a load interrupted mid-way)."""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tv5_assets.core.pools import apply_limits
from tv5_assets.vector_store.assets import media_vectors
from tv5_assets.vector_store.batching import byte_batches, row_bytes
from tv5_assets.vector_store.rebuild import rebuild
from tv5_assets.vector_store.resources import (
    MilvusConfigError,
    MilvusDimensionError,
    MilvusResource,
    MilvusUnavailableError,
)
from tv5_assets.vector_store.rows import Rows, media_rows, user_rows
from tv5_assets.vector_store.schema import MEDIA, USERS
from tv5_assets_tests.harness import materialize
from tv5_assets_tests.milvus_support import (
    BACKENDS,
    HANG_MARKER,
    FaultyMilvusResource,
    InjectedFault,
    faulty,
    make_resource,
    owned,
    staged_name,
    variant,
    write_source_lake,
)
from tv5_assets_tests.services import free_port

REPO = Path(__file__).resolve().parents[1]
MEDIA_KEY = media_vectors.key
LOAD_ONLY = dg.AssetSelection.assets(MEDIA_KEY).without_checks()


@pytest.fixture(params=BACKENDS)
def milvus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MilvusResource]:
    with owned(make_resource(request.param, tmp_path)) as resource:
        yield resource


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, pl.DataFrame]:
    return write_source_lake(tmp_path / "lake")


def _media(sources: dict[str, pl.DataFrame]) -> Rows:
    return media_rows(sources["content_vectors"], sources["movies"], sources["availability"], MEDIA)


def _build(milvus: MilvusResource, rows: Rows, batch_bytes: int = 1 << 20, spec=MEDIA):
    alias = milvus.alias_name(spec.alias)
    return rebuild(milvus, spec, alias, rows, byte_batches(row_bytes(rows.frame), batch_bytes))


def _ours(milvus: MilvusResource) -> list[str]:
    return sorted(n for n in milvus.list_collections() if n.startswith(milvus.collection_prefix))


def test_rebuild_round_trips_rows_and_swaps_the_alias(milvus: MilvusResource, sources) -> None:
    rows = _media(sources)
    with milvus.connected():
        alias = milvus.alias_name("media_vectors")
        first = _build(milvus, rows, batch_bytes=200_000)
        assert first.batches > 3 and milvus.alias_target(alias) == first.collection
        assert milvus.count(alias) == rows.frame.height == 600
        stored = milvus.client.query(alias, filter="id in [3, 6, 27]", output_fields=["*"])
        expected = rows.frame.filter(pl.col("id").is_in([3, 6, 27])).sort("id")
        stored = sorted(stored, key=lambda r: r["id"])
        for got, want in zip(stored, expected.iter_rows(named=True)):
            assert {k: got[k] for k in ("id", "title", "year")} == {k: want[k] for k in ("id", "title", "year")}
            assert list(got["genres"]) == want["genres"] and list(got["platforms"]) == want["platforms"]
        vectors = milvus.client.query(alias, filter="id >= 0", output_fields=["vector"], limit=1000)
        vectors = np.array([v["vector"] for v in sorted(vectors, key=lambda v: v["id"])], dtype=np.float32)
        assert np.array_equal(vectors, rows.frame["vector"].to_numpy())  # bit-exact through the column payload
        second = _build(milvus, rows)
        assert second.previous == first.collection and second.previous_dropped
        assert milvus.alias_target(alias) == second.collection and milvus.count(alias) == 600
        assert _ours(milvus) == [second.collection]


def test_wrong_dimension_is_a_clear_error(milvus: MilvusResource, sources) -> None:
    rows = _media(sources)
    with milvus.connected():
        name = milvus.alias_name("dimension_probe")
        milvus.create_collection(name, MEDIA, 128)
        with pytest.raises(MilvusDimensionError, match="stores 128-d vectors but the rows carry 384-d"):
            milvus.insert(name, rows.frame.head(5), MEDIA)


def test_an_alias_cannot_take_over_a_collection_name(tmp_path: Path, sources) -> None:
    rows = _media(sources)
    with owned(make_resource("lite", tmp_path)) as milvus, milvus.connected():
        squatter = milvus.alias_name("media_vectors")
        milvus.create_collection(squatter, MEDIA, rows.dimension)
        with pytest.raises(MilvusConfigError, match="an alias cannot share its name"):
            _build(milvus, rows)
        assert _ours(milvus) == [squatter]  # the new version was dropped on the way out


def test_wrong_uris_fail_with_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(MilvusConfigError, match="neither a Milvus Lite file"):
        with MilvusResource(uri=str(tmp_path / "milvus.sqlite")).connected():
            pass


def test_unreachable_server_is_a_clear_error_and_leaves_the_staged_version(tmp_path: Path) -> None:
    """Fault 1: the server does not answer. The run fails naming the URI; the version staged before is untouched."""
    lake = tmp_path / "lake"
    write_source_lake(lake)
    good = make_resource("server", tmp_path)
    with owned(good):
        before = staged_name(materialize(LOAD_ONLY, lake, milvus=good), media_vectors.key)
        uri = f"http://127.0.0.1:{free_port()}"
        down = variant(good, uri=uri, connect_timeout_s=2.0)
        started = time.monotonic()
        with pytest.raises(MilvusUnavailableError, match=f"Milvus milvus-server at {uri} is unreachable"):
            with down.connected():
                pass
        with pytest.raises(Exception) as failure:
            materialize(LOAD_ONLY, lake, milvus=down)
        assert time.monotonic() - started < 60
        chain = [failure.value]
        while chain[-1].__cause__ is not None and chain[-1].__cause__ not in chain:  # pymilvus: `raise e from e`
            chain.append(chain[-1].__cause__)
        assert any(isinstance(e, MilvusUnavailableError) and uri in str(e) for e in chain), chain
        with good.connected():
            assert good.count(before) == 600 and _ours(good) == [before]


def test_injected_failure_keeps_the_alias_and_a_rerun_is_exact(tmp_path: Path, sources) -> None:
    """Fault 2a: the 3rd insert batch fails. The half-built version is dropped, the alias stays, a re-run
    builds a complete one. (Milvus Lite; the server gets the harder SIGKILL case below.)"""
    rows = _media(sources)
    milvus = make_resource("lite", tmp_path)
    with milvus.connected():
        alias = milvus.alias_name("media_vectors")
        good = _build(milvus, rows)
    broken = faulty(milvus, fault_at_batch=3)
    with broken.connected():
        with pytest.raises(InjectedFault, match="batch 3"):
            _build(broken, rows, batch_bytes=100_000)
        assert broken.alias_target(alias) == good.collection and broken.count(alias) == 600
        assert _ours(broken) == [good.collection]
    with milvus.connected():
        again = _build(milvus, rows, batch_bytes=100_000)
        assert milvus.alias_target(alias) == again.collection and milvus.count(alias) == 600
        assert _ours(milvus) == [again.collection]


_CHILD = """
import sys
import dagster as dg
from tv5_assets.core.io_manager import PolarsParquetIOManager
from tv5_assets.core.lake import DataLake
from tv5_assets.vector_store.assets import media_vectors
from tv5_assets_tests.milvus_support import FaultyMilvusResource
upstream = [dg.AssetSpec(key) for key in ("content_vectors", "movies", "availability")]
instance = dg.DagsterInstance.from_config(sys.argv[3]) if len(sys.argv) > 3 else None  # the test's, if given
dg.materialize([media_vectors, *upstream], selection=[media_vectors.key], instance=instance, resources={
    "io_manager": PolarsParquetIOManager(base_dir=sys.argv[1]), "lake": DataLake(base_dir=sys.argv[1]),
    "milvus": FaultyMilvusResource.model_validate_json(sys.argv[2])},
    run_config={"ops": {"milvus__media_vectors": {"config": {"force_rebuild": True}}}})  # same rows: build anyway
"""


def _materialize_until_killed(lake: Path, resource: FaultyMilvusResource, timeout: float = 120,
                              home: Path | None = None) -> str:
    """Run the materialization in a child process (on the instance in `home`, if given), SIGKILL it once it hangs
    at its injected fault."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(lake), resource.model_dump_json(),
                              *([str(home)] if home else [])], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([child.stderr], [], [], 1.0)[0]:
                continue
            line = child.stderr.readline()
            if not line:
                break
            if HANG_MARKER in line:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(30)
                return line.split("collection=")[1].split()[0]
        raise AssertionError(f"the child never reached the fault (exit {child.poll()})")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(30)
        child.stderr.close()


def test_killed_load_is_cleaned_up_and_a_rerun_is_exact(tmp_path: Path) -> None:
    """Fault 2b, on the server: the materializing process dies (SIGKILL) after two batches. The version staged
    before stays whole; the next materialization drops the half-built collection and stages the complete one
    again (same rows), with exact counts."""
    lake = tmp_path / "lake"
    write_source_lake(lake)
    resource = make_resource("server", tmp_path, batch_bytes=80_000)
    home = tmp_path / "dagster_home"  # one instance for both runs: the child knows what the first one staged
    home.mkdir()
    with owned(resource), dg.DagsterInstance.local_temp(str(home)) as instance:
        apply_limits(instance)
        staged = staged_name(materialize(LOAD_ONLY, lake, instance=instance, milvus=resource), media_vectors.key)
        half_built = _materialize_until_killed(lake, faulty(resource, fault_at_batch=3, fault_mode="hang"),
                                               home=home)
        with resource.connected():
            assert half_built in _ours(resource) and half_built != staged
            assert resource.count(staged) == 600
        result = materialize(LOAD_ONLY, lake, instance=instance, milvus=resource)
        meta = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
        assert meta["dropped_leftovers"] == [half_built] and meta["staged_version"] == staged and meta["reused"]
        with resource.connected():
            assert resource.count(staged) == 600 and _ours(resource) == [staged]


def test_user_rows_load_with_their_attributes(tmp_path: Path, sources) -> None:
    rows = user_rows(sources["user_vectors"], sources["demographics"], USERS)
    with owned(make_resource("lite", tmp_path)) as milvus, milvus.connected():
        report = _build(milvus, rows, spec=USERS)
        alias = milvus.alias_name("user_vectors")
        assert report.entities == milvus.count(alias) == 250
        assert milvus.count_where(alias, 'country == "FR"') == 125
        hit = milvus.search(alias, rows.frame["vector"].to_numpy()[:1], 1, output_fields=["archetype", "country"])
        assert hit[0][0]["id"] == 1 and hit[0][0]["entity"] == {"archetype": "Cinephile", "country": "FR"}


_HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_lite_waits_while_another_process_has_the_file_open(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Milvus Lite lets one process at a time open a file (Dagster runs each step in its own process): the wait
    logs one line when it starts and one when it ends, not a traceback per probe."""
    resource = make_resource("lite", tmp_path, lite_lock_wait_s=30)
    with resource.connected():
        pass  # creates the data directory and its LOCK file
    lock = Path(resource.uri) / "LOCK"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(lock), "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(MilvusConfigError, match="stayed open in another process for 0 s"):
            with variant(resource, lite_lock_wait_s=0.2).connected():
                pass
        caplog.clear()
        caplog.set_level(logging.DEBUG)
        started = time.monotonic()
        with resource.connected() as milvus:
            assert milvus.list_collections() == []
        assert time.monotonic() - started > 1.0  # it waited for the holder to let go
        messages = [record.getMessage() for record in caplog.records]
        assert sum("waiting for its lock" in m for m in messages) == 1, messages
        assert sum("free after" in m for m in messages) == 1, messages
        assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()], messages
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()


def test_values_where_returns_every_match_past_one_querys_cap(milvus: MilvusResource) -> None:
    """More matches than one server query may return (16,384): the server reads in batches, Lite in one query
    (it has no cap, and evaluates the filter once per query); both return every matching entity once."""
    n = 20_000
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((n, 8)).astype(np.float32)
    frame = pl.DataFrame({
        "id": np.arange(1, n + 1, dtype=np.int64),
        "vector": pl.Series(vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).cast(pl.Array(pl.Float32, 8)),
        "title": [f"t{i}" for i in range(n)], "year": np.full(n, 2000, dtype=np.int32),
        "genres": [["Drama"] if i % 4 else ["Drama", "Comedy"] for i in range(n)],
        "platforms": [["MUBI"] if i % 2 else [] for i in range(n)]})
    with milvus.connected():
        alias = milvus.alias_name("media_vectors")
        rebuild(milvus, MEDIA, alias, Rows(frame), byte_batches(row_bytes(frame), milvus.batch_bytes))
        drama = milvus.values_where(alias, 'ARRAY_CONTAINS_ANY(genres, ["Drama"])', "genres")
        assert drama.height == n and drama["id"].n_unique() == n
        comedy = milvus.values_where(alias, 'ARRAY_CONTAINS(genres, "Comedy")', "genres")
        assert sorted(comedy["id"].to_list()) == list(range(1, n + 1, 4))
        mubi = milvus.values_where(alias, 'ARRAY_CONTAINS(platforms, "MUBI")', "platforms")
        assert mubi.height == n // 2
