"""Imports between the stage packages run one way: plumbing <- ingestion <- synthetic / embeddings <- taste
<- stores / rl <- agentdb <- evaluation; `definitions` alone sees them all. The operations side: core <-
platform (instance, pools) <- local_services (the services, the team stack) <- graph_store. Every import of every module is
read from its syntax tree (function-level imports too), so a lazy import running back up fails as well.

`python -m tv5_assets_tests.test_import_direction` prints each stage's imports and any that run back up.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "tv5_assets"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
# rank of each top-level part of the package; a module may import only parts of a lower rank (or its own)
RANK = {
    "core": 0, "sample": 0,
    "ingestion": 1, "platform": 1,  # platform: the Dagster instance and the stores' pools (core only)
    "synthetic": 2, "embeddings": 2, "local_services": 2,  # local_services prepares the team instance (platform)
    "taste": 3,
    "vector_store": 4, "graph_store": 4, "rl": 4,
    "agentdb": 5,
    "evaluation": 6,
    "release": 7,  # what is served: reads every stage's keys and lineage
    "definitions": 8,
}


def part_of(module: str) -> str | None:
    """The top-level part (`core`, a stage, `definitions`) of a `tv5_assets` module name."""
    names = module.split(".")
    return names[1] if names[0] == PACKAGE and len(names) > 1 else None


def imported_modules(source: str, module: str) -> set[str]:
    """Every `tv5_assets` module that `source` (the text of `module`) imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module.split(".")[: -node.level]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == PACKAGE}


def back_imports(modules: dict[str, str]) -> list[str]:
    """`importer -> part (first module named)` for each part of the same or a higher rank that a module imports."""
    wrong = []
    for module, source in sorted(modules.items()):
        src = part_of(module)
        offending: dict[str, str] = {}
        for target in sorted(imported_modules(source, module)):
            dst = part_of(target)
            if src is None or dst is None or dst == src or dst not in RANK:
                continue
            if src not in RANK or RANK[dst] >= RANK[src]:
                offending.setdefault(dst, target)
        wrong.extend(f"{module} -> {dst} ({target})" for dst, target in sorted(offending.items()))
    return wrong


def package_modules(root: Path = ROOT) -> dict[str, str]:
    """Module name -> source text of every module of the package."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        names = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if names[-1] == "__init__":
            names.pop()
        modules[".".join(names)] = path.read_text()
    return modules


def test_every_part_has_a_rank() -> None:
    parts = {path.name for path in ROOT.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    parts |= {path.stem for path in ROOT.glob("*.py") if path.stem != "__init__"}
    assert parts == set(RANK), f"give each part a rank: {sorted(parts ^ set(RANK))}"


def test_imports_run_one_way() -> None:
    assert back_imports(package_modules()) == []


def test_a_back_import_is_caught() -> None:
    modules = {
        "tv5_assets.ingestion.rules": "from tv5_assets.core.checking import RuleResult\n",
        "tv5_assets.synthetic.people": "import numpy\n\ndef f():\n    from tv5_assets.taste import hybrid\n",
        "tv5_assets.core.storage": "from tv5_assets.vector_store.schema import MEDIA\n",
        "tv5_assets.vector_store.rows": "from ..embeddings import texts\nfrom tv5_assets.graph_store import cypher\n",
    }
    assert back_imports(modules) == [
        "tv5_assets.core.storage -> vector_store (tv5_assets.vector_store.schema)",
        "tv5_assets.synthetic.people -> taste (tv5_assets.taste)",
        "tv5_assets.vector_store.rows -> graph_store (tv5_assets.graph_store)",
    ]


def main() -> int:
    modules = package_modules()
    edges: dict[str, set[str]] = {}
    for module, source in modules.items():
        src = part_of(module)
        for target in imported_modules(source, module):
            dst = part_of(target)
            if src and dst and dst != src:
                edges.setdefault(src, set()).add(dst)
    for src in sorted(edges, key=lambda part: (RANK.get(part, 99), part)):
        print(f"{src} (rank {RANK.get(src)}) imports: {', '.join(sorted(edges[src], key=RANK.get))}")
    wrong = back_imports(modules)
    print("imports running back up:", wrong or "none")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
