"""Code versions are derived from the logic: they move with it, and only with it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tv5_assets.versioning import code_version, logic_of


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


def _package(tmp_path: Path, name: str, files: dict[str, str]) -> None:
    """Write a throw-away package `name` and import all its modules fresh."""
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for module, source in files.items():
        (root / f"{module}.py").write_text(source)
    sys.path.insert(0, str(tmp_path))
    try:
        for module in files:
            importlib.import_module(f"{name}.{module}")
    finally:
        sys.path.remove(str(tmp_path))


DEEP = "def scale(x):\n    return x / 4.5\n"
MIDDLE = "from {pkg} import deep\n\ndef reward(x):\n    return deep.scale(x - 0.5)\n"
WIRING = ("from {pkg} import middle\n\ndef _publish(frame):\n    return frame\n\n"
          "def my_asset(frame):\n    return _publish(middle.reward(frame))\n")


def test_a_change_two_imports_deep_changes_the_version(tmp_path: Path) -> None:
    versions = []
    for pkg, deep in (("pkg_a", DEEP), ("pkg_b", DEEP.replace("4.5", "5.0"))):
        _package(tmp_path, pkg, {"deep": deep, "middle": MIDDLE.format(pkg=pkg), "assets": WIRING.format(pkg=pkg)})
        fn = sys.modules[f"{pkg}.assets"].my_asset
        parts = logic_of(fn, package=pkg)
        # the asset, the helper it calls in its own module, and both modules its logic reaches
        assert [getattr(p, "__name__", "") for p in parts] == ["my_asset", "_publish", f"{pkg}.deep", f"{pkg}.middle"]
        versions.append(code_version(*parts))
    assert versions[0] != versions[1]


def test_every_asset_carries_a_derived_version() -> None:
    from tv5_assets.definitions import defs
    from tv5_assets.graph_store import assets as graph_assets
    from tv5_assets.graph_store import cypher, loader
    from tv5_assets.ingestion import assets, csv_reader, movielens, parsing, titles

    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        fn = node.assets_def.op.compute_fn.decorated_fn
        assert node.code_version == code_version(*logic_of(fn)), key
    movies_logic = logic_of(assets.movies.op.compute_fn.decorated_fn)
    assert {movielens, csv_reader, parsing, titles, assets.publish} <= set(movies_logic)
    assert {cypher, loader} <= set(logic_of(graph_assets.graph.op.compute_fn.decorated_fn))
