"""The example's tests need the plugin installed: its entry point is how mlcore finds it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

INSTALLED = importlib.util.find_spec("mlcore_sine") is not None
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip (with the install command) rather than fail when mlcore-sine is not installed."""
    if INSTALLED:
        return
    mark = pytest.mark.skip(reason="mlcore-sine is not installed: pip install ./examples/mlcore-sine-plugin")
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(mark)
