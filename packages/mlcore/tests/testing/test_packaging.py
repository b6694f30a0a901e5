"""Tests of the packaging check (mlcore/testing/packaging.py)."""

from __future__ import annotations

import pytest

from mlcore.testing import ContractError, check_dependencies_declared
from mlcore.testing.packaging import imported_top_level_modules


def _package(tmp_path, monkeypatch, name: str, source: str) -> None:
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import os\nfrom . import inner\n")
    (pkg / "inner.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_declared_imports_pass(tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch, "pkg_ok", "import attrs\n\ndef f():\n    import pluggy.hooks\n")
    assert imported_top_level_modules(tmp_path / "pkg_ok") == {"attrs", "pluggy"}
    check_dependencies_declared("mlcore", "pkg_ok")


def test_an_undeclared_import_is_named(tmp_path, monkeypatch):
    """gymnasium is installed here (nav-rl) but not a dependency of the core: a fresh install would lack it."""
    pytest.importorskip("gymnasium")
    _package(tmp_path, monkeypatch, "pkg_bad", "import attrs\n\ndef f():\n    from gymnasium import spaces\n")
    with pytest.raises(ContractError, match=r"mlcore imports modules it does not declare.*gymnasium"):
        check_dependencies_declared("mlcore", "pkg_bad")


def test_the_core_declares_what_it_imports():
    """Optional imports (onnx, mlflow, yaml, pytest) count when an extra declares them."""
    check_dependencies_declared("mlcore", "mlcore")
