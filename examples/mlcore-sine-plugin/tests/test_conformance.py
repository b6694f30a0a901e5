"""The mlcore conformance kit run on every component of the ``sine`` plugin."""

from __future__ import annotations

from typing import ClassVar

from mlcore.testing import PluginContract


class TestSineConformance(PluginContract):
    plugin = "sine"
    config_overrides: ClassVar = {"dataset/sine": {"num_samples": 256}, "model/sine_mlp": {"hidden": 16}}
    model_datasets: ClassVar = {"sine_mlp": "sine"}
