"""`agentdb` when things go wrong, with the real AgentDB: damaged and truncated files fail every check (ERROR),
an over-size file fails the size check or is never published, a missing Node or agentdb package is named,
a failed run leaves the staged database readable, and a reader holding the served file keeps reading the old
one while a release moves the link to a new one."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tv5_assets.agentdb import checks, content
from tv5_assets.agentdb.node import AgentDBError, NodeRuntime
from tv5_assets.agentdb.writer import OversizeError, write_database
from tv5_assets.core.lake import DataLake
from tv5_assets.release.pointers import AgentDBLink
from tv5_assets_tests.agentdb_support import AGENTDB, UPSTREAM, agentdb_config, staged_file
from tv5_assets_tests.harness import SMALL_SAMPLE, check_results, materialize, release_config

ALL = {checks.ONE_SESSION, checks.STEPS, checks.VECTORS, checks.SEARCH, checks.SIZE}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.DagsterInstance]:
    lake = tmp_path_factory.mktemp("agentdb_faults")
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(UPSTREAM | AGENTDB, lake, release_config(**SMALL_SAMPLE), instance=instance).success
    return lake, instance


@pytest.fixture
def lake(sample, tmp_path: Path) -> Path:
    """A private copy of the sample lake (tests damage or replace its database)."""
    return Path(shutil.copytree(sample[0], tmp_path / "lake"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _agentdb_checks(lake: Path, instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    result = materialize(dg.AssetSelection.checks_for_assets("agentdb"), lake, instance=instance,
                         raise_on_error=False)
    return {name: e for (asset, name), e in check_results(result).items() if asset == "agentdb"}


def _step_errors(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(str(e.event_specific_data.error.message) + "".join(
        c.message for c in (e.event_specific_data.error.cause,) if c) for e in result.get_step_failure_events())


def test_checks_pass_on_the_intact_copy(sample, lake: Path) -> None:
    evaluations = _agentdb_checks(lake, sample[1])
    assert set(evaluations) == ALL and all(e.passed for e in evaluations.values())


def test_damaged_header_fails_every_check(sample, lake: Path) -> None:
    path = staged_file(lake, sample[1])
    with open(path, "r+b") as handle:
        handle.write(b"this is not an AgentDB file" * 40)
    evaluations = _agentdb_checks(lake, sample[1])
    assert set(evaluations) == ALL
    for name, evaluation in evaluations.items():
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR, name
        assert evaluation.description.startswith("AgentDB could not read the file"), name
        assert "file is not a database" in evaluation.description, name


def test_damaged_pages_fail_the_checks(sample, lake: Path) -> None:
    path = staged_file(lake, sample[1])
    size = path.stat().st_size
    with open(path, "r+b") as handle:  # scribble over the middle of the file (table and index pages)
        handle.seek(size // 3)
        handle.write(bytes(range(256)) * (size // 3 // 256))
    evaluations = _agentdb_checks(lake, sample[1])
    failed = {name for name, e in evaluations.items() if not e.passed}
    assert {checks.ONE_SESSION, checks.STEPS, checks.VECTORS} <= failed
    assert all(evaluations[n].severity == dg.AssetCheckSeverity.ERROR for n in failed)
    print({n: evaluations[n].description for n in sorted(failed)})


def test_truncated_file_fails_every_check(sample, lake: Path) -> None:
    path = staged_file(lake, sample[1])
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    evaluations = _agentdb_checks(lake, sample[1])
    assert set(evaluations) == ALL
    for name, evaluation in evaluations.items():
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR, name
    print({n: e.description for n, e in evaluations.items()})


def test_missing_file_fails_every_check(sample, lake: Path) -> None:
    staged_file(lake, sample[1]).unlink()
    evaluations = _agentdb_checks(lake, sample[1])
    assert all(not e.passed and "no database file" in e.description for e in evaluations.values())


def test_file_over_the_configured_bound_fails_the_size_check(lake: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = materialize("agentdb", lake, agentdb_config(max_file_mib=0.25), instance=instance,
                         raise_on_error=False)
    evaluations = {name: e for (asset, name), e in check_results(result).items() if asset == "agentdb"}
    size = evaluations[checks.SIZE]
    assert not size.passed and size.severity == dg.AssetCheckSeverity.ERROR
    assert "against a bound of 0.25 MiB" in size.description
    assert size.metadata["bytes"].value > 0.25 * 2**20
    assert all(e.passed for n, e in evaluations.items() if n != checks.SIZE)  # only the size is wrong


def test_file_agentdb_would_refuse_is_never_published(sample, lake: Path) -> None:
    """Over the hard limit (here lowered to 64 KiB) the writer refuses and the previous file stays."""
    path = staged_file(lake, sample[1])
    before = _sha(path)
    policies = pl.read_parquet(lake / "policies.parquet")
    built = content.build(policies, pl.scan_parquet(lake / "episodes.parquet"),
                          pl.read_parquet(lake / "user_vectors.parquet"), 10)
    with pytest.raises(OversizeError, match="not under 65,536"):
        write_database(path, built.contents, NodeRuntime.locate(), max_bytes=64 * 1024)
    assert _sha(path) == before and [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_missing_node_is_named_by_the_asset_and_the_checks(sample, lake: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-node-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    staged = staged_file(lake, sample[1])
    before = _sha(staged)
    result = materialize("agentdb", lake, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    errors = _step_errors(result)
    assert "AgentDB needs Node.js: no `node` binary on PATH" in errors and "npm ci --ignore-scripts" in errors
    assert _sha(staged) == before  # nothing touched
    checked = materialize(dg.AssetSelection.checks_for_assets("agentdb"), lake, instance=sample[1],
                          raise_on_error=False)
    assert not checked.success and "no `node` binary on PATH" in _step_errors(checked)


def test_failed_run_leaves_the_previous_database_readable(sample, lake: Path) -> None:
    path = staged_file(lake, sample[1])
    node = NodeRuntime.locate()
    before, stats_before = _sha(path), node.stats(path)
    vectors = pl.read_parquet(lake / "user_vectors.parquet")
    pl.concat([vectors, vectors.tail(1)]).write_parquet(lake / "user_vectors.parquet")  # a user twice
    result = materialize("agentdb", lake, instance=sample[1], raise_on_error=False)
    # sessions and steps were already loaded into the new file when the duplicate episode id stopped it
    assert not result.success and "UNIQUE constraint failed: episodes.id" in _step_errors(result)
    after = node.stats(path)
    assert _sha(path) == before and staged_file(lake, sample[1]) == path  # the stage before, unchanged
    assert {k: v for k, v in after.items() if k != "node_peak_rss_mib"} == \
        {k: v for k, v in stats_before.items() if k != "node_peak_rss_mib"}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the failed write's temporary is gone


def test_reader_holding_the_served_file_keeps_reading_it_while_a_release_moves_the_link(sample, lake: Path) -> None:
    """Readers open data/agentdb.db, a link `release` moves (AgentDBLink): one that opened the served version keeps
    reading it, whole, after the link points at a newer one."""
    served = AgentDBLink(DataLake(base_dir=str(lake)))
    first = staged_file(lake, sample[1])
    served.switch(first.name)
    path = lake / "agentdb.db"
    node = NodeRuntime.locate()
    old = node.stats(path)
    reader = node.hold(path)  # AgentDB's reader has the file open, has not read it yet
    try:
        opened = json.loads(reader.stdout.readline())
        assert opened["inode"] == first.stat().st_ino
        instance = dg.DagsterInstance.ephemeral()
        result = materialize("agentdb", lake, agentdb_config(recent_steps_per_user=2), instance=instance)
        assert result.success
        second = staged_file(lake, instance)
        served.switch(second.name)
        new = node.stats(path)
        assert path.stat().st_ino == second.stat().st_ino != opened["inode"] and new["experiences"] < old["experiences"]
        out, err = reader.communicate("go\n", timeout=120)  # now it reads, through what it opened
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    held = json.loads(out.strip().splitlines()[-1])
    assert held["read_after_wait"] and held["integrity"] == "ok"
    assert {k: held[k] for k in ("sessions", "experiences", "embeddings", "file_bytes")} == \
        {k: old[k] for k in ("sessions", "experiences", "embeddings", "file_bytes")}
    print(f"\nreader (served inode {opened['inode']}): {held['experiences']} experiences; "
          f"newly released file (inode {path.stat().st_ino}): {new['experiences']}")


def test_unreadable_file_is_an_agentdb_error_not_an_empty_database(tmp_path: Path) -> None:
    """AgentDB itself would open garbage as an empty database; the project's reader reports the error."""
    bogus = tmp_path / "agentdb.db"
    bogus.write_bytes(b"\0garbage" * 1000)
    with pytest.raises(AgentDBError, match="file is not a database"):
        NodeRuntime.locate().stats(bogus)
