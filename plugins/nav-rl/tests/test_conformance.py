"""The core's conformance kit over every nav-rl component."""

from __future__ import annotations

from mlcore.testing import PluginContract

SMALL_AGENT = {"net_arch": [32, 32], "learning_starts": 50, "batch_size": 16, "buffer_size": 2000}


class TestConformance(PluginContract):
    plugin = "nav-rl"
    config_overrides = {
        "dataset/nav": {"demo_steps": 96, "env": {"max_steps": 30}},
        "model/sac": SMALL_AGENT,
        "model/td3": SMALL_AGENT,
        "model/dqn": SMALL_AGENT,
        "trainer/sb3": {"total_timesteps": 120, "eval_freq": 60, "eval_episodes": 2, "progress": False, "plot": False},
        "evaluator/nav": {"episodes": 2, "gif": False},
    }
    evaluator_models = {"nav": "sac"}
    trainer_models = {"sb3": "sac"}
