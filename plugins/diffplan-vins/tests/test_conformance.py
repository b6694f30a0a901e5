"""The core's conformance kit, run over every component the plugin registers."""

from __future__ import annotations

from mlcore.testing import PluginContract


class TestConformance(PluginContract):
    plugin = "diffplan-vins"
    config_overrides = {
        "dataset/grid-mazes": {"size": 15, "num": 40},
        "evaluator/grid-rollout": {"max_mazes": 4},
        "model/vin": {"k": 6, "hidden_channels": 10, "q_channels": 8},
        "model/cnn": {"k": 2, "hidden_channels": 8},
    }
