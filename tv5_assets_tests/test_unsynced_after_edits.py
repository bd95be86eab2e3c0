"""What a user sees after editing code: the unsynced (stale) set Dagster computes, edit by edit.

The whole graph is materialized once on the small sample (real engines) into a persistent instance;
then each edit is made to a copy of the package and a fresh interpreter importing that copy prints the
assets Dagster reports unsynced against the same instance, as `dagster dev` started on the edited code
would. Re-materializing goes through the edited copy too.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from tv5_assets.definitions import defs
from tv5_assets.ingestion.day_assets import DAY_GROUP
from tv5_assets.platform.instance import prepare_home
from tv5_assets_tests.harness import SMALL_SAMPLE, materialize, release_config
from tv5_assets_tests.test_code_versions import L1, L2, TOP_K, Edits, edited_copy, run_in_copy

pytestmark = [pytest.mark.neo4j, pytest.mark.extended]

REPO = Path(__file__).resolve().parents[1]
UNSYNCED = """
import json
import dagster as dg
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest
import tv5_assets
from tv5_assets.definitions import defs
instance = dg.DagsterInstance.get()
graph = defs.resolve_asset_graph()
resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
stale = sorted(k.to_user_string() for k in graph.materializable_asset_keys
               if resolver.get_status(k) == StaleStatus.STALE)
print(json.dumps({"package": tv5_assets.__file__, "unsynced": stale}))
"""
REMATERIALIZE = """
import json, sys
from pathlib import Path
import dagster as dg
import tv5_assets
from tv5_assets_tests.harness import materialize
result = materialize(dg.AssetSelection.assets(dg.AssetKey.from_user_string(sys.argv[1])).without_checks(),
                     Path(sys.argv[2]), instance=dg.DagsterInstance.get())
event = result.get_asset_materialization_events()[0].materialization
print(json.dumps({"package": tv5_assets.__file__,
                  "metadata": {k: getattr(v, "value", v) for k, v in event.metadata.items()
                               if isinstance(getattr(v, "value", v), (str, int, float, bool))}}))
"""


def run_in(root: Path, home: Path, script: str, *args: str) -> dict:
    """Run `script` in a fresh interpreter that imports the package under `root` and the instance at `home`."""
    return run_in_copy(root, script, *args, env={"PYTHONPATH": f"{root}{os.pathsep}{REPO}", "DAGSTER_HOME": str(home)})


def readers_of(asset: str) -> set[str]:
    """The unpartitioned readers of `asset` (the arrival days' partitions are never materialized here)."""
    graph = defs.resolve_asset_graph()
    return {key.to_user_string() for key in graph.get(dg.AssetKey.from_user_string(asset)).child_keys
            if graph.get(key).group_name != DAY_GROUP}


@pytest.fixture(scope="module")
def built(neo4j_server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(instance home, lake) after one whole-graph run of the unedited code."""
    # the embedded instance as scripts/materialize prepares it (store pools limited: persistent instances need it)
    home, lake = prepare_home("embedded", tmp_path_factory.mktemp("dagster_home")), tmp_path_factory.mktemp("lake")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert materialize("*", lake, release_config(**SMALL_SAMPLE), instance=instance).success
    return home, lake


def unsynced_after(edits: Edits, built: tuple[Path, Path], root: Path) -> set[str]:
    home, _ = built
    stale = set(run_in(edited_copy(REPO / "tv5_assets", edits, root), home, UNSYNCED)["unsynced"])
    print(f"unsynced after editing {sorted(edits)}: {sorted(stale)}")
    return stale


def test_unsynced_sets_follow_the_edits(built: tuple[Path, Path], tmp_path: Path) -> None:
    home, lake = built
    assert unsynced_after({}, built, tmp_path / "unedited") == set()

    cosmetic = {"ingestion/assets.py": [(TOP_K, TOP_K.replace("keep at most this many tags", "at most this many tags"))],
                "embeddings/encoding.py": [('"""(len(texts), dimension) float32, L2-normalised, in the order of `texts`."""',
                                            '"""Unit-length float32 rows in input order."""  # reworded')]}
    assert unsynced_after(cosmetic, built, tmp_path / "cosmetic") == set()

    assert unsynced_after({"embeddings/encoding.py": [(L2, L1)]}, built, tmp_path / "l1") == {"content_vectors"}

    top_k = {"ingestion/assets.py": [(TOP_K, TOP_K.replace("default=10", "default=15"))]}
    assert unsynced_after(top_k, built, tmp_path / "top_k") == {"genome"}
    # Re-materialized with 15 tags per movie, genome has new data: now exactly its readers are unsynced.
    run_in(tmp_path / "top_k", home, REMATERIALIZE, "genome", str(lake))
    after = set(run_in(tmp_path / "top_k", home, UNSYNCED)["unsynced"])
    print(f"unsynced after re-materializing genome with top_k=15: {sorted(after)}")
    assert after == readers_of("genome")


def test_a_shared_helper_edit_keeps_the_collections(built: tuple[Path, Path], tmp_path: Path) -> None:
    """An edit to core/storage.py moves the code version of every asset whose logic reaches it (they are
    unsynced, as they should be: the helper could change their output), but restaging a Milvus collection
    whose rows are unchanged stages the collection it already staged again, without a build."""
    home, lake = built
    helper = {"core/storage.py": [('suffix=".tmp"', 'suffix=".part"')]}
    stale = unsynced_after(helper, built, tmp_path / "helper")
    assert "milvus/media_vectors" in stale
    with dg.DagsterInstance.from_config(str(home)) as instance:
        before = instance.get_latest_materialization_event(dg.AssetKey(["milvus", "media_vectors"]))
    staged = before.asset_materialization.metadata["staged_version"].value

    rebuilt = run_in(tmp_path / "helper", home, REMATERIALIZE, "milvus/media_vectors", str(lake))["metadata"]
    print(f"milvus/media_vectors after the helper edit: {rebuilt}")
    assert rebuilt["staged_version"] == staged and rebuilt["reused"] is True
    after = set(run_in(tmp_path / "helper", home, UNSYNCED)["unsynced"])
    assert "milvus/media_vectors" not in after and after == stale - {"milvus/media_vectors"}
