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
        "model/symvin": {"k": 4, "hidden_channels": 2, "q_channels": 3},
        "model/de-vin": {"hidden_channels": 8, "q_channels": 6, "max_iter": 15},
        "model/de-symvin": {"hidden_channels": 2, "q_channels": 3, "max_iter": 15},
        "model/gppn": {"k": 4, "hidden_channels": 8},
        "model/convgppn": {"k": 4, "hidden_channels": 8, "q_channels": 8},
        "model/symgppn": {"k": 4, "hidden_channels": 2, "q_channels": 2},
        # the graph half (part 2)
        "dataset/maze-graphs": {"size": 7, "num": 20},
        "dataset/geometric-graphs": {"nodes": 20, "num": 20, "degree": 4},
        "evaluator/graph-rollout": {"max_graphs": 4},
        "model/mp-vin": {"k": 6, "hidden_channels": 12, "q_channels": 4},
        "model/sym-mp-vin": {"k": 6, "hidden_channels": 12, "q_channels": 4},
        "model/gat-vin": {"k": 6, "hidden_channels": 12, "q_channels": 4},
        "model/gcn-vin-v2": {"k": 6, "hidden_channels": 12, "q_channels": 4},
    }
