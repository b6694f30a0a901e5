"""The grid planners, listed by import path so the plugin can register them without torch.

:data:`MODEL_SPECS` is the one list ``plugin.py`` registers (and the ``compare`` pipeline trains):
``(name, target, config, summary)``. Add a model by appending one entry; keep this module free of
torch imports (the configs live in torch-free modules, see :mod:`.config`).
"""

from __future__ import annotations

__all__ = ["MODEL_SPECS", "ModelEntry"]

#: ``(name, "module:Class", "module:Config", summary)``.
ModelEntry = tuple[str, str, str, str]

_P = "mlcore_diffplan_vins.models"

#: Every registered grid planner, in the order comparison tables list them.
MODEL_SPECS: list[ModelEntry] = [
    (
        "cnn",
        f"{_P}.cnn:PlainCNN",
        f"{_P}.config:CNNConfig",
        "Baseline: a plain CNN from (obstacles, goal) to action logits, no value iteration",
    ),
    (
        "vin",
        f"{_P}.vin:VIN",
        f"{_P}.config:VINConfig",
        "Value Iteration Network (Tamar et al. 2016): K steps of conv + max over actions",
    ),
    # planners (SymVIN, DE-VIN, DE-SymVIN, GPPN, ConvGPPN, SymGPPN): append entries below this line.
]
