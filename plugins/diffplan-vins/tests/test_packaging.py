"""Every import the plugin makes is declared in its own pyproject dependencies (it must install alone)."""

from __future__ import annotations

from mlcore.testing import check_dependencies_declared


def test_every_import_is_a_declared_dependency() -> None:
    check_dependencies_declared("mlcore-diffplan-vins", "mlcore_diffplan_vins")
