"""Code versions are derived from the logic: they move with it, and only with it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tv5_assets.core.versioning import code_version, logic_of


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


def test_a_stages_day_assets_and_day_checks_modules_are_wiring_not_logic(tmp_path: Path) -> None:
    """An asset importing another stage's `day_assets` module (for its partitions) does not hash that module's
    wiring, so a description edited there moves no version; a real logic module it reaches still counts."""
    pkg = "pkg_w"
    other = "PARTS = 'days'\n\ndef describe():\n    return 'the day assets of another stage'\n"
    asset = ("from {pkg} import day_assets, middle\n\ndef my_asset(frame):\n"
             "    return (day_assets.PARTS, middle.reward(frame))\n")
    _package(tmp_path, pkg, {"deep": DEEP, "middle": MIDDLE.format(pkg=pkg), "day_assets": other,
                             "assets": asset.format(pkg=pkg)})
    labels = [getattr(p, "__name__", "") for p in logic_of(sys.modules[f"{pkg}.assets"].my_asset, package=pkg)]
    assert f"{pkg}.day_assets" not in labels and {f"{pkg}.deep", f"{pkg}.middle"} <= set(labels)


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


def _asset_version(tmp_path: Path, variant: str, pkg: str, files: dict[str, str]) -> tuple[str, list[str]]:
    """The code version of `pkg.assets.my_asset`, `pkg` written afresh in its own folder `variant` (the same
    package name for every variant, so that only the edit differs), and the labels of what it hashes."""
    for name in [m for m in sys.modules if m == pkg or m.startswith(f"{pkg}.")]:
        del sys.modules[name]
    (tmp_path / variant).mkdir()
    importlib.invalidate_caches()
    _package(tmp_path / variant, pkg, {name: source.format(pkg=pkg) for name, source in files.items()})
    parts = logic_of(sys.modules[f"{pkg}.assets"].my_asset, package=pkg)
    labels = [getattr(p, "__name__", None) or f"{p.module.__name__}:{p.name}" for p in parts]
    return code_version(*parts), labels


CONSTANTS = ("LIMIT = 10\nUNREAD = 1\n\ndef _cap(x):\n    return min(x, LIMIT)\n\n"
             "def my_asset(x):\n    return _cap(x)\n")


def test_a_constant_the_asset_reads_counts_and_an_unread_one_does_not(tmp_path: Path) -> None:
    base, labels = _asset_version(tmp_path, "base", "pkg_c", {"assets": CONSTANTS})
    assert labels == ["my_asset", "_cap", "pkg_c.assets:LIMIT"]  # read by the helper; UNREAD is not hashed
    limit = CONSTANTS.replace("LIMIT = 10", "LIMIT = 11")
    assert _asset_version(tmp_path, "limit", "pkg_c", {"assets": limit})[0] != base
    unread = CONSTANTS.replace("UNREAD = 1", "UNREAD = 2")
    assert _asset_version(tmp_path, "unread", "pkg_c", {"assets": unread})[0] == base


CONFIG = ("import dagster as dg\nfrom pydantic import Field\n\nDEFAULT_K = 10\n\n"
          "class BaseConfig(dg.Config):\n    floor: float = Field(default=0.5, description=\"lowest score kept\")\n\n"
          "class MyConfig(BaseConfig):\n    \"\"\"How many.\"\"\"\n\n"
          "    top_k: int = Field(default=DEFAULT_K, description=\"keep at most this many\")\n\n"
          "def my_asset(config: MyConfig):\n    return config.top_k\n")


def test_config_defaults_count_and_their_descriptions_do_not(tmp_path: Path) -> None:
    base, labels = _asset_version(tmp_path, "base", "pkg_f", {"assets": CONFIG})
    # the Config class, its project base, and the constant its default reads
    assert labels == ["my_asset", "BaseConfig", "MyConfig", "pkg_f.assets:DEFAULT_K"]
    for variant, old, new, moves in (
        ("constant", "DEFAULT_K = 10", "DEFAULT_K = 15", True),
        ("base_default", "default=0.5", "default=0.6", True),
        ("type", "top_k: int", "top_k: float", True),
        ("description", "keep at most this many", "keep this many at most", False),
        ("docstring", '"""How many."""', '"""How many tags."""  # per movie', False),
    ):
        version = _asset_version(tmp_path, variant, "pkg_f", {"assets": CONFIG.replace(old, new)})[0]
        assert (version != base) is moves, (old, new)


DEEP_NORM = "def normalise(x):\n    return x / abs(x)\n"
RESOURCE = ("import dagster as dg\nfrom pydantic import Field\nfrom {pkg} import norm\n\n"
            "class Encoder(dg.ConfigurableResource):\n    size: int = Field(default=4, description=\"width\")\n\n"
            "    def encode(self, x):\n        return norm.normalise(x)\n")
RESOURCE_ASSET = ("from {pkg}.resource import Encoder\n\n"
                  "def my_asset(encoder: Encoder):\n    return encoder.encode(2.0)\n")


def test_the_logic_a_resource_runs_counts(tmp_path: Path) -> None:
    files = {"norm": DEEP_NORM, "resource": RESOURCE, "assets": RESOURCE_ASSET}
    base, labels = _asset_version(tmp_path, "base", "pkg_l", files)
    assert labels == ["my_asset", "pkg_l.norm", "pkg_l.resource"]  # reached only through the parameter's type
    l2 = {**files, "norm": DEEP_NORM.replace("abs(x)", "(x * x) ** 0.5")}
    assert _asset_version(tmp_path, "l2", "pkg_l", l2)[0] != base
    described = {**files, "resource": RESOURCE.replace('"width"', '"vector width"')}
    assert _asset_version(tmp_path, "described", "pkg_l", described)[0] == base
