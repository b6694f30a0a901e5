"""The core's conformance kit, run over every component the plugin registers."""

from __future__ import annotations

from mlcore.testing import PluginContract

TINY = {"episodes": 6, "episode_seconds": 3.0, "sequence_length": 5, "horizon": 6, "stride": 2}


class TestConformance(PluginContract):
    plugin = "continuous-dynamics"
    config_overrides = {
        "dataset/vehicle-episodes": TINY,
        "model/gru_dynamics": {"hidden_dim": 16, "sequence_length": 5},
        "model/lstm_predictor": {"hidden_dim": 16, "sequence_length": 5},
        "model/neural_ode": {"hidden_dim": 16, "sequence_length": 5},
        "model/vae_rnn_hybrid": {"hidden_dim": 16, "sequence_length": 5},
        "model/linear_dynamics": {"sequence_length": 5},
        "evaluator/dynamics": {"horizon": 5, "max_rollout_windows": 16},
    }
