"""Imports inside the core flow one way: the import graph of ``mlcore`` has no cycle.

Every ``import``/``from ... import`` statement counts, at module level *and* inside functions
(a deferred import is still a dependency: the circle config -> registry -> builtin -> hookspecs ->
components -> config ran through function-level imports). Two kinds are left out, because they
never run as a dependency of the module's code: imports under ``if TYPE_CHECKING:`` and the body
of a module-level ``__getattr__`` (PEP 562 lazy re-exports of names that moved elsewhere).
"""

from __future__ import annotations

import ast
from pathlib import Path

import mlcore

SRC = Path(mlcore.__file__).resolve().parent


def _module_names(root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _excluded_nodes(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skipped |= {id(n) for n in ast.walk(node)}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            skipped |= {id(n) for n in ast.walk(node)}
    return skipped


def import_graph(root: Path) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` for the package at ``root``."""
    modules = _module_names(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _excluded_nodes(tree)
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in names:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``[]`` when there is none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_core_has_no_import_cycle() -> None:
    graph = import_graph(SRC)
    assert {"mlcore.config", "mlcore.registry", "mlcore.pipelines.sections"} <= set(graph)
    cycle = find_cycle(graph)
    assert not cycle, "import cycle in the core: " + " -> ".join(cycle)


def test_a_planted_cycle_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import c\n")  # function-level, relative
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\nimport pkg.a\n")
    (pkg / "d.py").write_text("def __getattr__(name):\n    import pkg.c\n")
    graph = import_graph(pkg)
    assert graph["pkg.c"] == {"pkg.a"} and graph["pkg.d"] == set()
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg)) == []


def test_the_old_circle_would_be_found() -> None:
    graph = import_graph(SRC)
    graph["mlcore.config"] = graph["mlcore.config"] | {"mlcore.registry"}  # what structure() used to import
    cycle = find_cycle(graph)
    assert cycle and "mlcore.config" in cycle and "mlcore.registry" in cycle
