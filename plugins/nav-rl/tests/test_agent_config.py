"""The model configs read without torch or stable-baselines3 (``mlcore show model sac`` stays fast)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_reading_the_model_configs_imports_neither_torch_nor_sb3():
    code = (
        "import sys, mlcore_nav_rl.agent_config as c; c.SACConfig(); c.DQNConfig(); c.TD3Config();"
        "print(sorted(m for m in ('torch', 'stable_baselines3', 'gymnasium') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_her_and_per_together_are_refused_naming_both():
    from mlcore_nav_rl.agent_config import SACConfig

    with pytest.raises(ValueError, match="her=true and per=true"):
        SACConfig(her=True, per=True)
