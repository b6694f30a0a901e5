"""The core's conformance kit, run over every component the plugin registers."""

from __future__ import annotations

from mlcore.testing import PluginContract


class TestConformance(PluginContract):
    plugin = "trc-control"
    config_overrides = {
        "dataset/lqr": {"num_samples": 128, "test_num_samples": 64},
        "model/trc": {"size": "small", "latent_dim": 32, "hidden_dim": 64, "num_inner_cycles": 2},
        "evaluator/trc": {"timing_problems": 5, "timing_batch_size": 16},
    }
    model_datasets = {"trc": "lqr"}
