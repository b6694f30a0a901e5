"""A tiny release built once per test session (two grid entries, one epoch on 9x9 mazes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: The per-pipeline overrides of the tiny release (the quick profile, smaller still).
TINY_SINGLE = [
    "dataset.size=9",
    "dataset.num=60",
    "trainer.epochs=1",
    "trainer.plot=false",
    "trainer.progress=false",
    "evaluator.max_mazes=8",
]


def build_release(out: Path, entries: list[str], **extra: object) -> Path:
    """Run the ``release`` pipeline (quick profile) with ``entries`` and the tiny overrides into ``out``."""
    from mlcore.api import run

    config = {"entries": entries, "overrides": {"single": TINY_SINGLE}, **extra}
    run("diffplan-vins", pipeline="release", profile="quick", config=config, out=out, progress=False)
    return out


@pytest.fixture(scope="session")
def _built_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_release(tmp_path_factory.mktemp("release") / "run", ["VIN_maze15", "SymVIN_maze15"])


@pytest.fixture
def release_run(_built_release: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny release's run directory (tests may damage it)."""
    target = tmp_path / "run"
    shutil.copytree(_built_release, target)
    return target
