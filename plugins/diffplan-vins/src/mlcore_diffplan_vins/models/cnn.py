"""Baseline without planning: a plain CNN from (obstacles, goal) to action logits at every cell.

Its receptive field is ``2k + 1`` cells, so it cannot see a goal further away than ``k`` steps;
comparison tables list it beside the planners as the simple learned baseline.
"""

from __future__ import annotations

from torch import Tensor, nn

from mlcore_diffplan_vins.models.base import GridPlanner, check_maps
from mlcore_diffplan_vins.models.config import CNNConfig

__all__ = ["PlainCNN"]


class PlainCNN(GridPlanner):
    """``k`` 3×3 conv + ReLU layers of width ``hidden_channels``, then a 1×1 conv to the logits."""

    def __init__(self, config: CNNConfig | None = None) -> None:
        config = config or CNNConfig()
        super().__init__(config)
        layers: list[nn.Module] = []
        width = 2
        for _ in range(config.k):
            layers += [nn.Conv2d(width, config.hidden_channels, 3, padding=1), nn.ReLU()]
            width = config.hidden_channels
        layers.append(nn.Conv2d(width, config.num_actions, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, maps: Tensor) -> Tensor:
        """``[B, 2, M, M]`` maps -> ``[B, A, M, M]`` action logits."""
        check_maps(maps)
        return self.net(maps)
