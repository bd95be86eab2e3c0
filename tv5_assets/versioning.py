"""Code versions derived from the code itself, so they cannot drift from the logic they describe.

An asset's `code_version` is a hash of the syntax tree of its own function, of the helpers in its
own module that it calls, and of every project module its logic reaches through imports (found by
walking the function's global names and each module's namespace, so a new import is picked up
without anyone listing it). Editing that logic changes the version (Dagster then marks the asset
unsynced); reformatting, comments, docstrings and the asset's decorator arguments (description,
owners) do not. Dagster wiring (other `assets`/`checks` modules, definitions) and presentation
(metadata, charts, reports) are not logic and are left out.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator
from functools import cache
from types import CodeType, FunctionType, ModuleType
from typing import Any

import dagster as dg

Logic = ModuleType | Callable[..., Any] | type
PACKAGE = "tv5_assets"
# presentation and wiring: metadata rendering, charts and reports change how a page looks, not the data
NOT_LOGIC = frozenset({"versioning", "metadata", "charts", "report", "definitions", "automation", "io_manager"})


def _syntax_tree(obj: Logic) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if not isinstance(node, ast.Module) and node is tree.body[0]:
            node.decorator_list = []  # an asset's description or owners are not its logic
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]  # nor are docstrings
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


@cache
def _module_tree(module: ModuleType) -> str:
    return _syntax_tree(module)


def _tree(part: Logic) -> str:
    return _module_tree(part) if isinstance(part, ModuleType) else _syntax_tree(part)


def _names(code: CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _names(const)


def _is_logic_module(name: str, package: str) -> bool:
    parts = name.split(".")
    return parts[0] == package and not (set(parts[1:]) & NOT_LOGIC) and parts[-1] not in ("assets", "checks")


def logic_of(fn: Callable[..., Any], *extra: Logic, package: str = PACKAGE) -> list[Logic]:
    """`fn`, the same-module helpers it calls, and every logic module of `package` reachable from them.

    Ordered (function first, then helpers and modules by name) so the version is stable across runs.
    """
    home = fn.__module__
    helpers: dict[str, Logic] = {}
    modules: dict[str, ModuleType] = {}
    pending_modules: list[ModuleType] = [m for m in extra if isinstance(m, ModuleType)]
    for obj in extra:
        if not isinstance(obj, ModuleType):
            helpers[f"{obj.__module__}.{obj.__qualname__}"] = obj

    def reference(value: Any, helper_queue: list[FunctionType]) -> None:
        if isinstance(value, ModuleType):
            if _is_logic_module(value.__name__, package):
                pending_modules.append(value)
            return
        if not isinstance(value, (FunctionType, type)):
            value = type(value)  # an instance (e.g. default rules): its class's module holds the logic
        module = getattr(value, "__module__", "") or ""
        if module == home and isinstance(value, FunctionType):
            key = f"{module}.{value.__qualname__}"
            if key not in helpers:
                helpers[key] = value
                helper_queue.append(value)
        elif module != home and _is_logic_module(module, package):
            pending_modules.append(sys.modules[module])

    queue: list[FunctionType] = [fn]
    while queue:
        current = queue.pop()
        for name in _names(current.__code__):
            if name in current.__globals__:
                reference(current.__globals__[name], queue)
    while pending_modules:
        module = pending_modules.pop()
        if module.__name__ in modules:
            continue
        modules[module.__name__] = module
        for value in vars(module).values():
            if isinstance(value, ModuleType):
                if _is_logic_module(value.__name__, package):
                    pending_modules.append(value)
            elif isinstance(value, (FunctionType, type)):
                owner = getattr(value, "__module__", "") or ""
                if owner != module.__name__ and _is_logic_module(owner, package) and owner in sys.modules:
                    pending_modules.append(sys.modules[owner])
    return [fn, *(helpers[k] for k in sorted(helpers)), *(modules[k] for k in sorted(modules))]


def code_version(*parts: Logic) -> str:
    """A short hash of the syntax trees of `parts` (functions, classes or whole modules)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(getattr(part, "__qualname__", getattr(part, "__name__", "")).encode())
        digest.update(_tree(part).encode())
    return digest.hexdigest()[:16]


def versioned_asset(*, logic: tuple[Logic, ...] = (), **asset_kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """`@dg.asset` whose code_version is derived from the decorated function and the logic it reaches
    (`logic_of`); `logic` adds what the function reaches only indirectly (e.g. through a resource)."""

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        return dg.asset(code_version=code_version(*logic_of(fn, *logic)), **asset_kwargs)(fn)

    return decorate
