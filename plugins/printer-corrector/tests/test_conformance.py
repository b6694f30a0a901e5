"""The core's conformance kit, run over every component the plugin registers."""

from __future__ import annotations

from mlcore.testing import PluginContract

SMALL_DATA = {
    "parts": ["boat"],
    "layers": "sampled:4",
    "sequence_length": 10,
    "stride": 4,
    "slicing": {"layer_height": 1.5},
}


class TestConformance(PluginContract):
    plugin = "printer-corrector"
    config_overrides = {
        "dataset/printer_layers": SMALL_DATA,
        "model/realtime_corrector": {"hidden_size": 8, "sequence_length": 10},
        "evaluator/tracking_error": {"latency_repeats": 10, "plots": False},
    }
    model_datasets = {"realtime_corrector": "printer_layers"}
