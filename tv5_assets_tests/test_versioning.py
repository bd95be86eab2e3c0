"""Code versions are derived from the logic: they move with it, and only with it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tv5_assets.versioning import code_version


def _module(tmp_path: Path, name: str, source: str, module_name: str = "logic"):
    """Load `source` as a module called `module_name` from its own folder `name`."""
    (tmp_path / name).mkdir()
    path = tmp_path / name / f"{module_name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


BASE = '''
"""Docstring."""
def reward(rating):
    """Scale a rating."""
    return (rating - 0.5) / 4.5
'''


def test_logic_change_changes_the_version(tmp_path: Path) -> None:
    before = _module(tmp_path, "logic_a", BASE)
    after = _module(tmp_path, "logic_b", BASE.replace("4.5", "5.0"))
    assert code_version(before) != code_version(after)
    assert code_version(before.reward) != code_version(after.reward)


def test_layout_comments_and_docstrings_do_not(tmp_path: Path) -> None:
    before = _module(tmp_path, "logic_c", BASE)
    cosmetic = BASE.replace('"""Scale a rating."""', '"""Scale a rating to [0, 1]."""  # why').replace(
        "return (rating - 0.5) / 4.5", "return (rating - 0.5) / 4.5  # comment\n\n"
    ).replace('"""Docstring."""', '"""Another docstring."""')
    after = _module(tmp_path, "logic_d", cosmetic)
    assert code_version(before) == code_version(after)


def test_ingestion_assets_carry_derived_versions() -> None:
    from tv5_assets.ingestion import assets, csv_reader, movielens, parsing, titles

    node = assets.movies
    expected = code_version(assets.movies.op.compute_fn.decorated_fn, movielens, csv_reader, parsing,
                            assets.publish, titles)
    assert node.code_versions_by_key[node.key] == expected
