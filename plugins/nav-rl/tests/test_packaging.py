"""Every import the plugin makes is declared in its own pyproject dependencies (it must install alone)."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import mlcore_nav_rl

DIST = "mlcore-nav-rl"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level_modules(package_dir: Path) -> set[str]:
    """Top-level names of every absolute import in the package's source (module level or inside functions)."""
    names: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", package_dir.name}


def test_every_import_is_a_declared_dependency():
    declared = {_norm(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]) for req in metadata.requires(DIST) or []}
    providers = metadata.packages_distributions()
    missing = {
        module: providers.get(module, ["?"])
        for module in imported_top_level_modules(Path(mlcore_nav_rl.__file__).parent)
        if not declared & {_norm(d) for d in providers.get(module, [module])}
    }
    assert not missing, f"imported but not in {DIST}'s dependencies: {missing}"


def test_the_default_progress_bar_has_its_dependencies():
    """SB3's progress bar (``trainer.progress = true`` by default) needs rich and tqdm: declared, not assumed."""
    declared = {_norm(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]) for req in metadata.requires(DIST) or []}
    assert {"rich", "tqdm"} <= declared
    from stable_baselines3.common.callbacks import ProgressBarCallback

    ProgressBarCallback()  # raises ImportError without tqdm/rich
