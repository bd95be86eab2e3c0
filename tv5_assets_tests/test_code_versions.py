"""Real edits to a copy of the package move exactly the code versions they should, and cosmetic edits none.

Each case copies `tv5_assets/` (once, then from that copy, so that edits made meanwhile in the working
tree cannot leak in), edits the copy's source text, and reads every asset's `code_version` from
`tv5_assets.definitions` in a fresh interpreter, as `dagster dev` would compute it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tv5_assets"
# files in other languages that the package's logic runs (its modules' LOGIC_FILES), copied beside it
AGENTDB_SCRIPT = Path("services", "agentdb", "tv5-agentdb.mjs")
PRINT_VERSIONS = """
import json
import tv5_assets
from tv5_assets.definitions import defs
graph = defs.resolve_asset_graph()
versions = {key.to_user_string(): graph.get(key).code_version for key in graph.materializable_asset_keys}
print(json.dumps({"package": tv5_assets.__file__, "versions": versions}))
"""
Edits = dict[str, list[tuple[str, str]]]  # file under tv5_assets/ (or ../services/...) -> (old, new), each old unique


def run_in_copy(root: Path, script: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """The JSON last printed by `script` in a fresh interpreter importing the package copied under `root`
    (`env` adds variables; PYTHONPATH may add paths after `root`)."""
    env = {**os.environ, "PYTHONPATH": str(root), **(env or {})}
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(printed["package"]).resolve().is_relative_to(root.resolve())  # the copy, not the checkout
    return printed


def copy_package(package: Path, root: Path) -> None:
    """`package` to `root/tv5_assets`, and the non-Python files its logic runs to the same place beside it."""
    shutil.copytree(package, root / "tv5_assets", ignore=shutil.ignore_patterns("__pycache__"))
    (root / AGENTDB_SCRIPT).parent.mkdir(parents=True)
    shutil.copy2(package.parent / AGENTDB_SCRIPT, root / AGENTDB_SCRIPT)


def edited_copy(package: Path, edits: Edits, root: Path) -> Path:
    """`package` copied to `root/tv5_assets` with `edits` applied (each old text must occur once); `root`."""
    copy_package(package, root)
    for file, replacements in edits.items():
        path = root / "tv5_assets" / file
        text = path.read_text()
        for old, new in replacements:
            assert text.count(old) == 1, (file, old)
            text = text.replace(old, new)
        path.write_text(text)
    return root


def versions(root: Path) -> dict[str, str]:
    """Every asset's code_version, computed by a fresh interpreter importing the package under `root`."""
    found = run_in_copy(root, PRINT_VERSIONS)["versions"]
    assert all(found.values()), found
    return found


@pytest.fixture(scope="module")
def unedited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the package and its versions."""
    root = tmp_path_factory.mktemp("unedited")
    copy_package(PACKAGE, root)
    return root, versions(root)


def changed_by(edits: Edits, unedited: tuple[Path, dict[str, str]], tmp_path: Path) -> set[str]:
    """The assets whose code_version `edits` change (printed, for the record)."""
    source, before = unedited
    after = versions(edited_copy(source / "tv5_assets", edits, tmp_path))
    assert after.keys() == before.keys()
    moved = {key for key in before if after[key] != before[key]}
    print(f"code versions changed by {sorted(edits)}: {sorted(moved)}")
    return moved


TOP_K = 'top_k: int = Field(default=10, description="keep at most this many tags per movie, best first")'
L2 = "out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))"
L1 = "out /= np.maximum(np.abs(out).sum(axis=1, keepdims=True), np.float32(1e-12))"


def test_a_config_default_changes_its_assets_version_only(unedited, tmp_path: Path) -> None:
    edit = {"ingestion/assets.py": [(TOP_K, TOP_K.replace("default=10", "default=15"))]}
    # Only genome's own code changed; its readers become unsynced through genome's new data version.
    assert changed_by(edit, unedited, tmp_path) == {"genome"}


def test_a_constant_read_through_a_config_default_counts(unedited, tmp_path: Path) -> None:
    edit = {"agentdb/assets.py": [("DEFAULT_RECENT_STEPS = 10\n", "DEFAULT_RECENT_STEPS = 12\n")]}
    # day_release falls back to it for a served file whose build recorded no setting
    assert changed_by(edit, unedited, tmp_path) == {"agentdb", "day_release"}


def test_the_encoders_normalisation_changes_content_vectors(unedited, tmp_path: Path) -> None:
    # encoding.py is reached through the `encoder: EncoderResource` parameter (embeddings/resources.py imports it)
    moved = changed_by({"embeddings/encoding.py": [(L2, L1)]}, unedited, tmp_path)
    assert "content_vectors" in moved
    assert moved.isdisjoint({"ratings", "movies", "genome", "graph", "user_vectors", "episodes", "availability"})


def test_cosmetic_edits_change_no_version(unedited, tmp_path: Path) -> None:
    edits = {
        "ingestion/assets.py": [
            ('"""Which release to ingest. Default', '"""Which MovieLens release to ingest. Default'),  # docstring
            ('"""Refuse a file that is mostly bad,', '"""Refuse a file that is mostly bad (a wrong file),'),
            ('"is above `min_relevance` (default 0.5), ranked', '"is above `min_relevance` (0.5 unless set), ranked'),
            ('    source = release_path(movielens_release, "genome-scores.csv")\n',  # a comment and a reformat
             '    # the scores file\n    source = release_path(\n        movielens_release,\n'
             '        "genome-scores.csv",\n    )\n'),
        ],
        "embeddings/encoding.py": [
            ('"""(len(texts), dimension) float32, L2-normalised, in the order of `texts`."""',
             '"""(len(texts), dimension) float32, L2-normalised (unit length), in input order."""  # why: the cache'),
        ],
    }
    assert changed_by(edits, unedited, tmp_path) == set()


def test_field_descriptions_change_no_version(unedited, tmp_path: Path) -> None:
    edits = {
        "ingestion/assets.py": [(TOP_K, TOP_K.replace("keep at most this many tags", "at most this many tags"))],
        "embeddings/resources.py": [('description="texts per batch;', 'description="texts per encoder batch;')],
    }
    assert changed_by(edits, unedited, tmp_path) == set()


def test_the_agentdb_node_script_counts_but_its_comments_do_not(unedited, tmp_path: Path) -> None:
    script = "../" + AGENTDB_SCRIPT.as_posix()  # runs in Node: named by agentdb/node.py's LOGIC_FILES
    tables = "  new lib.LearningSystem(handle, noEmbedder);  // its constructor adds its own tables\n"
    # `create` (the writer's first call) without LearningSystem's tables: the file the asset writes changes
    # day_release reads a day's AgentDB rows back through the same script
    assert changed_by({script: [(tables, "")]}, unedited, tmp_path / "a") == {"agentdb", "day_release"}
    cosmetic = {script: [("async function feedback(db, stepsFile) {\n",
                          "\n  // reformatted, commented\nasync function feedback(db, stepsFile) {\n\n")]}
    assert changed_by(cosmetic, unedited, tmp_path / "b") == set()


def test_a_logic_files_text_drops_only_its_languages_whole_line_comments(tmp_path: Path) -> None:
    from tv5_assets.core.versioning import _file_text

    script = tmp_path / "x.mjs"
    script.write_text("class A {\n  #count = 0;  // a private field, not a comment\n\n  // a comment\n}\n")
    assert _file_text(script) == "class A {\n#count = 0;  // a private field, not a comment\n}"
    assert _file_text(tmp_path / "missing.mjs") == ""
