"""Shared fixtures for the core tests: fake installed plugins, a clean registry, CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlcore.registry import Registry, set_registry


@pytest.fixture
def fake_site(tmp_path: Path) -> Callable[..., Path]:
    """Create fake *installed* plugin distributions (dist-info + entry point) under one directory.

    ``fake_site(name, source, api=None)`` writes module ``<name>_plugin.py`` with ``source`` and a
    distribution ``mlcore-<name>`` whose ``mlcore.plugins`` entry point ``<name>`` names it.
    Put the returned directory on ``PYTHONPATH`` of a subprocess to make them discoverable.
    """
    site = tmp_path / "site"
    site.mkdir()

    def make(name: str, source: str, *, module: str | None = None) -> Path:
        mod = module or f"{name.replace('-', '_')}_plugin"
        (site / f"{mod}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        dist = site / f"mlcore_{name.replace('-', '_')}-0.1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: mlcore-{name}\nVersion: 0.1.0\n", encoding="utf-8"
        )
        (dist / "entry_points.txt").write_text(f"[mlcore.plugins]\n{name} = {mod}\n", encoding="utf-8")
        return site

    return make


def run_cli(
    args: list[str], *, pythonpath: Path | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mlcore`` in a fresh interpreter (so entry points and sys.modules are real)."""
    full_env = dict(os.environ)
    full_env.pop("MLCORE_PLUGINS", None)
    if pythonpath is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), full_env.get("PYTHONPATH", "")]))
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mlcore", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The :func:`run_cli` helper as a fixture."""
    return run_cli


@pytest.fixture
def isolated_registry() -> Iterator[Callable[[dict[str, object]], Registry]]:
    """Install a registry made from given plugin objects for the duration of a test."""
    restore: list[Callable[[], None]] = []

    def install(modules: dict[str, object]) -> Registry:
        reg = Registry.from_modules(modules)
        restore.append(set_registry(reg))
        return reg

    yield install
    for r in reversed(restore):
        r()
