"""Every import the plugin makes is declared in its own pyproject dependencies (it must install alone)."""

from __future__ import annotations

from mlcore.testing import check_dependencies_declared

DIST = "mlcore-trc-control"


def test_every_import_is_a_declared_dependency():
    check_dependencies_declared(DIST, "mlcore_trc_control")
