"""Every import the plugin makes is declared; listing the plugin imports no torch or torchdiffeq."""

from __future__ import annotations

import subprocess
import sys

from mlcore.testing import check_dependencies_declared


def test_every_import_is_a_declared_dependency():
    check_dependencies_declared("mlcore-continuous-dynamics", "mlcore_continuous_dynamics")


def test_listing_and_showing_import_nothing_heavy():
    code = (
        "import sys, mlcore\n"
        "reg = mlcore.get_registry()\n"
        "assert reg.plugin('continuous-dynamics').status == 'ok', reg.plugin('continuous-dynamics')\n"
        "reg.get('pipeline', 'dynamics').config_class()\n"
        "reg.get('model', 'neural_ode').config_class()\n"
        "heavy = [m for m in ('torch', 'torchdiffeq', 'gymnasium', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
