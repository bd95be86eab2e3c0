"""Code versions derived from the code itself, so they cannot drift from the logic they describe.

An asset's `code_version` is a hash of the syntax tree of its own function and of the pure modules
holding its logic. Editing that logic changes the version (Dagster then marks the asset unsynced);
reformatting, comments, docstrings and the asset's decorator arguments (description, owners) do not.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable
from types import ModuleType
from typing import Any

import dagster as dg

Logic = ModuleType | Callable[..., Any] | type


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


def code_version(*parts: Logic) -> str:
    """A short hash of the syntax trees of `parts` (functions, classes or whole modules)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(getattr(part, "__qualname__", getattr(part, "__name__", "")).encode())
        digest.update(_syntax_tree(part).encode())
    return digest.hexdigest()[:16]


def versioned_asset(*, logic: tuple[Logic, ...] = (), **asset_kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """`@dg.asset` whose code_version is derived from the decorated function plus its `logic` modules."""

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        return dg.asset(code_version=code_version(fn, *logic), **asset_kwargs)(fn)

    return decorate
