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
    (
        "symvin",
        f"{_P}.symvin:SymVIN",
        f"{_P}.planner_config:SymVINConfig",
        "SymVIN (Zhao et al. 2023): value iteration with D4-equivariant convolutions (hand-written group convs)",
    ),
    (
        "de-vin",
        f"{_P}.deq:DEVIN",
        f"{_P}.planner_config:DEVINConfig",
        "DE-VIN: VIN's value fixed point by Anderson acceleration, implicit-differentiation backward",
    ),
    (
        "de-symvin",
        f"{_P}.deq:DESymVIN",
        f"{_P}.planner_config:DESymVINConfig",
        "DE-SymVIN: SymVIN's equivariant value fixed point by Anderson acceleration, implicit backward",
    ),
    (
        "gppn",
        f"{_P}.gppn:GPPN",
        f"{_P}.planner_config:GPPNConfig",
        "GPPN (Lee et al. 2018): gated path planning, a per-cell LSTM replaces VI's max",
    ),
    (
        "convgppn",
        f"{_P}.gppn:ConvGPPN",
        f"{_P}.planner_config:ConvGPPNConfig",
        "ConvGPPN: GPPN with a convolutional LSTM state",
    ),
    (
        "symgppn",
        f"{_P}.gppn:SymGPPN",
        f"{_P}.planner_config:SymGPPNConfig",
        "SymGPPN: ConvGPPN with D4 group convolutions, equivariant policy",
    ),
]
