"""Packaging checks: a plugin must install alone, so every import it makes is a declared dependency.

hatch's environments (and a developer's venv) carry packages nobody declared — rich, click, tqdm —
so a missing dependency only shows on a user's fresh install. This check reads the package's
source with :mod:`ast` and compares each imported top-level module with the distribution's
``Requires-Dist``::

    from mlcore.testing import check_dependencies_declared

    def test_every_import_is_a_declared_dependency():
        check_dependencies_declared("mlcore-my-plugin", "mlcore_my_plugin")
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from importlib import metadata
from pathlib import Path

from mlcore.testing.checks import ContractError

__all__ = ["check_dependencies_declared", "declared_dependencies", "imported_top_level_modules"]


def _normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_dependencies(distribution: str) -> set[str]:
    """Normalised names of the distribution's requirements (extras' requirements included)."""
    return {_normalise(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]) for req in metadata.requires(distribution) or []}


def imported_top_level_modules(package_dir: str | Path) -> set[str]:
    """Top-level names of every absolute import in a package's source (module level or inside functions),
    without the standard library and the package itself."""
    package_dir = Path(package_dir)
    names: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", package_dir.name}


def check_dependencies_declared(distribution: str, package: str) -> None:
    """Raise :class:`ContractError` naming every installed module ``package`` imports that
    ``distribution`` does not declare (run it where the plugin's extras are installed too)."""
    __tracebackhide__ = True
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ContractError(f"package {package!r} is not importable")
    declared = declared_dependencies(distribution)
    providers = metadata.packages_distributions()
    missing = {
        module: providers.get(module, ["?"])
        for module in sorted(imported_top_level_modules(Path(spec.origin).parent))
        # a module not installed here cannot be traced to a distribution (an optional import such as
        # `yaml` from the `yaml` extra): only installed modules are checked. One counts as declared
        # when a distribution providing it, or one named after it, is (mlflow: mlflow or mlflow-skinny)
        if module in providers and not declared & {_normalise(d) for d in [*providers[module], module]}
    }
    if missing:
        raise ContractError(
            f"{distribution} imports modules it does not declare in its dependencies: "
            + ", ".join(f"{m} (from {'/'.join(d)})" for m, d in missing.items())
        )
