"""Every import the plugin makes is declared in its own pyproject dependencies (it must install alone)."""

from __future__ import annotations

from mlcore.testing import check_dependencies_declared
from mlcore.testing.packaging import declared_dependencies

DIST = "mlcore-nav-rl"


def test_every_import_is_a_declared_dependency():
    check_dependencies_declared(DIST, "mlcore_nav_rl")


def test_the_default_progress_bar_has_its_dependencies():
    """SB3's progress bar (``trainer.progress = true`` by default) needs rich and tqdm: declared, not assumed."""
    assert {"rich", "tqdm"} <= declared_dependencies(DIST)
    from stable_baselines3.common.callbacks import ProgressBarCallback

    ProgressBarCallback()  # raises ImportError without tqdm/rich
