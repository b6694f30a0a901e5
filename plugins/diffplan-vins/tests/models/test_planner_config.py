"""The planner configs: one-line errors naming the key, and every model registered and buildable."""

from __future__ import annotations

import importlib

import pytest
import torch

from mlcore.config import structure
from mlcore.errors import ConfigError
from mlcore_diffplan_vins.models import MODEL_SPECS
from mlcore_diffplan_vins.models.base import example_maps
from mlcore_diffplan_vins.models.planner_config import DESymVINConfig, DEVINConfig, SymGPPNConfig, SymVINConfig

OURS = {"symvin", "de-vin", "de-symvin", "gppn", "convgppn", "symgppn"}


@pytest.mark.parametrize(
    ("cls", "data", "key"),
    [
        (SymVINConfig, {"group": "c4"}, "group"),
        (SymGPPNConfig, {"group": "d8"}, "group"),
        (DEVINConfig, {"solver": "broyden"}, "solver"),
        (DESymVINConfig, {"tol": 0.0}, "tol"),
        (DEVINConfig, {"anderson_memory": 1}, "anderson_memory"),
        (DESymVINConfig, {"max_iter": 0}, "max_iter"),
        (SymVINConfig, {"kernel_size": 4}, "kernel_size"),
    ],
)
def test_bad_values_name_the_key(cls: type, data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"model\.{key}=") as info:
        structure(cls, data, where="model.")
    assert "\n" not in str(info.value)


def test_every_planner_is_registered_and_builds_from_its_default_config() -> None:
    entries = {name: (target, config) for name, target, config, _ in MODEL_SPECS}
    assert set(entries) >= OURS
    for name in sorted(OURS):
        target, config = entries[name]
        module, cls_name = target.split(":")
        cfg_module, cfg_name = config.split(":")
        model_cls = getattr(importlib.import_module(module), cls_name)
        cfg = getattr(importlib.import_module(cfg_module), cfg_name)(k=2, hidden_channels=2, q_channels=2)
        with torch.no_grad():
            logits = model_cls(cfg)(example_maps(2))
        assert logits.shape == (2, 4, 15, 15), name
        assert torch.isfinite(logits).all(), name
