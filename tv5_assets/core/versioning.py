"""Code versions derived from the code itself, so they cannot drift from the logic they describe.

An asset's `code_version` is a hash of the syntax tree of everything that decides what it writes:
its own function and the helpers in its own module that it calls; the `dg.Config` classes it takes
(field names, types and defaults: changing a default changes the output of a run left on defaults);
the module-level constants of its own (wiring) module that it or those helpers read, found through
the globals their bytecode loads; and every project module its logic reaches through imports,
starting from those and from the modules of the resources it takes (a resource runs logic for the
asset, e.g. the encoder's normalisation), found by walking each module's namespace, so a new import
is picked up without anyone listing it. A logic module that runs code written in another language
names those files in a module-level `LOGIC_FILES` (e.g. the Node script that writes AgentDB's file);
their text counts too, less blank lines, indentation and whole-line comments. Editing any of that
changes the version (Dagster then marks the asset unsynced; its readers follow through their data
versions). Reformatting, comments, docstrings, the asset's decorator arguments (description, owners)
and the `description=` of config and resource fields do not. Dagster wiring (other `assets`/`checks`
modules, definitions) and presentation (metadata, charts, reports) are not logic and are left out.
"""

from __future__ import annotations

import ast
import dis
import hashlib
import importlib.util
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import CodeType, FunctionType, ModuleType
from typing import Any

import dagster as dg


@dataclass(frozen=True)
class Binding:
    """The module-level assignment(s) of `name` in `module`: a wiring module's constant that an asset reads."""

    module: ModuleType
    name: str


@dataclass(frozen=True)
class LogicFile:
    """A file in another language that a logic module runs (named in its `LOGIC_FILES`)."""

    path: Path


Logic = ModuleType | Callable[..., Any] | type | Binding | LogicFile
LOGIC_FILES = "LOGIC_FILES"
# how a whole-line comment starts, by file suffix (JavaScript's `#` starts private fields, not comments)
_LINE_COMMENTS = {".js": "//", ".mjs": "//", ".cjs": "//", ".ts": "//", ".sql": "--", ".sh": "#", ".py": "#"}
PACKAGE = "tv5_assets"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the package's parent: LogicFile labels are relative to it
# presentation and wiring: metadata rendering, charts and reports change how a page looks, not the data
# pools and outages: which runs may touch a store at once and when a step is retried, never what a store holds;
# releases and stages: where a staged version is kept and which process serves it for its audit, never its content
# warm-ups: what a store holds in memory before a step reads it, never what it holds or what the step writes
# hosting: which process runs a store's engine (Milvus Lite's server beside the run), never what it holds
# preloading: when the encoder's model loads (in a thread from the resource's setup on), never what it encodes
NOT_LOGIC = frozenset({"versioning", "metadata", "charts", "report", "definitions", "automation", "io_manager",
                       "pools", "outages", "releases", "stages", "warmup", "hosting", "preloading"})
WIRING = ("assets", "checks")
# resources are `dg.Config`s too, but run logic: their whole module counts, not just their fields
RESOURCES = (dg.ConfigurableResource, dg.ConfigurableIOManagerFactory)


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


def _without_cosmetics(tree: ast.AST) -> ast.AST:
    """`tree` less its docstrings and the `description=` of its `Field(...)` calls (documentation, not logic)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Field":
            node.keywords = [k for k in node.keywords if k.arg != "description"]
    return tree


def _dump(tree: ast.AST) -> str:
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _parse(obj: ModuleType | Callable[..., Any] | type) -> ast.Module:
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    if tree.body and isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        tree.body[0].decorator_list = []  # an asset's description or owners are not its logic
    return tree


def _syntax_tree(obj: ModuleType | Callable[..., Any] | type) -> str:
    return _dump(_without_cosmetics(_parse(obj)))


@cache
def _module_tree(module: ModuleType) -> str:
    return _syntax_tree(module)


@cache
def _imported_names(module: ModuleType) -> dict[str, tuple[str, str]]:
    """Names `module` binds with a module-level `from X import name [as alias]` from its own package: (X, name)."""
    if not module.__package__:
        return {}
    imported: dict[str, tuple[str, str]] = {}
    for statement in ast.parse(inspect.getsource(module)).body:
        if isinstance(statement, ast.ImportFrom):
            source = importlib.util.resolve_name("." * statement.level + (statement.module or ""), module.__package__)
            if source.split(".")[0] == module.__name__.split(".")[0]:
                imported.update({alias.asname or alias.name: (source, alias.name) for alias in statement.names})
    return imported


@cache
def _assignments(module: ModuleType) -> dict[str, list[ast.stmt]]:
    """The module-level `Assign`/`AnnAssign` statements of `module`, by each name they bind."""
    bound: dict[str, list[ast.stmt]] = {}
    for statement in ast.parse(inspect.getsource(module)).body:
        targets = statement.targets if isinstance(statement, ast.Assign) else \
            [statement.target] if isinstance(statement, ast.AnnAssign) else []
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    bound.setdefault(node.id, []).append(_without_cosmetics(statement))
    return bound


def _project_path(path: Path) -> str:
    """`path` relative to the project root (the package's parent) where it lies inside it, else as given."""
    resolved = path.resolve()
    return resolved.relative_to(_PROJECT_ROOT).as_posix() if resolved.is_relative_to(_PROJECT_ROOT) else str(path)


def _file_text(path: Path) -> str:
    """The file's lines that carry code: stripped, without blank lines or whole-line comments ("" if missing,
    so a version still computes where the file is not deployed)."""
    if not path.is_file():
        return ""
    comment = _LINE_COMMENTS.get(path.suffix)
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return "\n".join(line for line in lines if line and not (comment and line.startswith(comment)))


def _tree(part: Logic) -> str:
    if isinstance(part, LogicFile):
        return _file_text(part.path)
    if isinstance(part, Binding):
        return "".join(_dump(statement) for statement in _assignments(part.module)[part.name])
    return _module_tree(part) if isinstance(part, ModuleType) else _syntax_tree(part)


def _label(part: Logic) -> str:
    if isinstance(part, LogicFile):
        return f"file:{_project_path(part.path)}"  # not absolute: the same file in another checkout is the same logic
    if isinstance(part, Binding):
        return f"{part.module.__name__}:{part.name}"
    return getattr(part, "__qualname__", getattr(part, "__name__", ""))


def _names(code: CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _names(const)


def _global_loads(code: CodeType) -> Iterator[str]:
    """The global names `code` loads (not attribute names), nested functions and comprehensions included."""
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            yield instruction.argval
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _global_loads(const)


def _tree_names(part: type | Binding) -> set[str]:
    """The names a class body (field types and defaults) or a constant's assignment reads."""
    trees = _assignments(part.module)[part.name] if isinstance(part, Binding) else [_without_cosmetics(_parse(part))]
    return {node.id for tree in trees for node in ast.walk(tree) if isinstance(node, ast.Name)}


def _annotations(fn: Callable[..., Any]) -> list[Any]:
    """The parameter types of `fn` (its config and resources), evaluated when written as strings."""
    try:
        return list(inspect.get_annotations(fn, eval_str=True).values())
    except Exception:  # an annotation that cannot be evaluated here: keep those that can
        return [value for value in inspect.get_annotations(fn).values() if not isinstance(value, str)]


def _is_wiring(module_name: str) -> bool:
    """A stage's Dagster wiring: `assets` and `checks`, and their variants such as `day_assets` (a stage's assets
    of an arrival day), whose descriptions and decorators are not logic."""
    return module_name in WIRING or module_name.endswith(tuple(f"_{kind}" for kind in WIRING))


def _is_logic_module(name: str, package: str) -> bool:
    parts = name.split(".")
    return parts[0] == package and not (set(parts[1:]) & NOT_LOGIC) and not _is_wiring(parts[-1])


class _Reach:
    """Walks what an asset function's logic reaches; `parts` and `modules` are what its version hashes."""

    def __init__(self, home: str, package: str) -> None:
        self.home, self.package = home, package
        self.parts: dict[str, Logic] = {}  # same-module helpers, config classes and constants, by qualified name
        self.modules: dict[str, ModuleType] = {}
        self.pending: list[ModuleType] = []
        self.functions: list[FunctionType] = []

    def add(self, part: Logic, key: str) -> bool:
        """Record `part` under `key`; False when it was already there."""
        if key in self.parts:
            return False
        self.parts[key] = part
        return True

    def read(self, module: ModuleType, name: str) -> None:
        """`name` as code of `module` reads it: followed to the project module it was imported from, where a
        logic module is hashed whole and a wiring module's constant is hashed as its assignment."""
        value = vars(module).get(name)
        source, original = _imported_names(module).get(name, ("", name))
        if source in sys.modules and sys.modules[source] is not module and not isinstance(value, ModuleType):
            self.read(sys.modules[source], original)
            return
        if _is_logic_module(module.__name__, self.package):
            self.pending.append(module)
        elif self._wiring(module) and name in _assignments(module):
            binding = Binding(module, name)
            if self.add(binding, f"{module.__name__}:{name}"):
                for read in _tree_names(binding):
                    self.read(module, read)
        if name in vars(module):
            self.reference(value)

    def _wiring(self, module: ModuleType) -> bool:
        parts = module.__name__.split(".")
        return module.__name__ == self.home or (
            parts[0] == self.package and parts[-1] in ("assets", "checks") and not set(parts[1:]) & NOT_LOGIC)

    def reference(self, value: Any) -> None:
        """A module, function, class or instance the logic uses: queue the code it stands for."""
        if isinstance(value, ModuleType):
            if _is_logic_module(value.__name__, self.package):
                self.pending.append(value)
            return
        if not isinstance(value, (FunctionType, type)):
            value = type(value)  # an instance (e.g. default rules): its class's module holds the logic
        module = getattr(value, "__module__", "") or ""
        if isinstance(value, type) and issubclass(value, dg.Config) and not issubclass(value, RESOURCES):
            self.config(value)
        elif module == self.home and isinstance(value, FunctionType):
            if self.add(value, f"{module}.{value.__qualname__}"):
                self.functions.append(value)
        elif module != self.home and _is_logic_module(module, self.package) and module in sys.modules:
            self.pending.append(sys.modules[module])

    def config(self, cls: type) -> None:
        """A `dg.Config` class of the project, with its project bases, and what their fields read."""
        for base in cls.__mro__:
            module = sys.modules.get(base.__module__)
            if module is None or base.__module__.split(".")[0] != self.package or not issubclass(base, dg.Config) \
                    or issubclass(base, RESOURCES):
                continue
            if self.add(base, f"{base.__module__}.{base.__qualname__}"):
                for name in _tree_names(base):
                    self.read(module, name)
                if _is_logic_module(module.__name__, self.package):
                    self.pending.append(module)

    def function(self, fn: FunctionType) -> None:
        """Follow the globals `fn` loads (helpers, modules, constants) and the other names it uses."""
        module = sys.modules[fn.__module__]
        loads = set(_global_loads(fn.__code__))
        for name in _names(fn.__code__):
            if name in loads:
                self.read(module, name)
            elif name in fn.__globals__:
                self.reference(fn.__globals__[name])

    def walk_modules(self) -> None:
        """Every logic module reachable from the pending ones through their namespaces."""
        while self.pending:
            module = self.pending.pop()
            if module.__name__ in self.modules:
                continue
            self.modules[module.__name__] = module
            for logic_file in (LogicFile(Path(path)) for path in vars(module).get(LOGIC_FILES, ())):
                self.add(logic_file, _label(logic_file))
            for value in vars(module).values():
                if isinstance(value, ModuleType):
                    if _is_logic_module(value.__name__, self.package):
                        self.pending.append(value)
                elif isinstance(value, (FunctionType, type)):
                    owner = getattr(value, "__module__", "") or ""
                    if owner != module.__name__ and _is_logic_module(owner, self.package) and owner in sys.modules:
                        self.pending.append(sys.modules[owner])


def logic_of(fn: Callable[..., Any], package: str = PACKAGE) -> list[Logic]:
    """`fn`, the same-module helpers it calls, the Config classes it takes, the module-level constants of its
    module that these read, and every logic module of `package` reachable from them and from its resources.

    Ordered (function first, then helpers, configs and constants, then modules, each by name) so the version
    is stable across runs.
    """
    reach = _Reach(fn.__module__, package)
    for annotation in _annotations(fn):
        if isinstance(annotation, type):
            reach.reference(annotation)  # config classes; resources: their modules
    reach.add(fn, f"{fn.__module__}.{fn.__qualname__}")
    reach.functions.append(fn)
    while reach.functions:
        reach.function(reach.functions.pop())
    reach.walk_modules()
    parts = {key: part for key, part in reach.parts.items() if part is not fn}
    return [fn, *(parts[k] for k in sorted(parts)), *(reach.modules[k] for k in sorted(reach.modules))]


def code_version(*parts: Logic) -> str:
    """A short hash of the syntax trees of `parts` (functions, classes, constants or whole modules)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(_label(part).encode())
        digest.update(_tree(part).encode())
    return digest.hexdigest()[:16]


def versioned_asset(**asset_kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """`@dg.asset` whose code_version is derived from the decorated function and the logic it reaches
    (`logic_of`)."""

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        return dg.asset(code_version=code_version(*logic_of(fn)), **asset_kwargs)(fn)

    return decorate


def versioned_multi_asset(outs: dict[str, dict[str, Any]], **asset_kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """`@dg.multi_asset` whose outputs (`outs`: each `dg.AssetOut`'s keyword arguments) all take the code version
    `versioned_asset` would give the decorated function."""

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        version = code_version(*logic_of(fn))
        return dg.multi_asset(outs={name: dg.AssetOut(code_version=version, **out) for name, out in outs.items()},
                              **asset_kwargs)(fn)

    return decorate
