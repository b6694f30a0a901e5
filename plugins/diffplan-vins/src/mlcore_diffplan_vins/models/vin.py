"""Value Iteration Network (Tamar, Wu, Thomas, Levine, Abbeel: "Value Iteration Networks", NeurIPS 2016).

``h = conv(maps)`` (l_h channels), ``r = conv1x1(h)`` (the reward map), then K steps of
``q = conv(r; W_r) + conv(v; W_v)``, ``v = max_a q`` and logits ``= conv1x1(q)`` at every cell.

The reward term ``conv(r; W_r)`` does not change across iterations, so it is computed once;
the textbook implementation concatenates ``[r, v]`` and convolves both every step (the
benchmark ``tools/bench/diffplan.py`` times both on the same network).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlcore_diffplan_vins.models.base import GridPlanner, check_maps
from mlcore_diffplan_vins.models.config import VINConfig

__all__ = ["VIN"]


class VIN(GridPlanner):
    """Value Iteration Network; see the module docstring."""

    def __init__(self, config: VINConfig | None = None) -> None:
        config = config or VINConfig()
        super().__init__(config)
        ks = config.kernel_size
        self.h = nn.Conv2d(2, config.hidden_channels, 3, padding=1, bias=True)
        self.r = nn.Conv2d(config.hidden_channels, 1, 1, bias=False)
        self.q_r = nn.Conv2d(1, config.q_channels, ks, padding=ks // 2, bias=False)
        self.q_v = nn.Conv2d(1, config.q_channels, ks, padding=ks // 2, bias=False)
        self.policy = nn.Conv2d(config.q_channels, config.num_actions, 1, bias=False)
        with torch.no_grad():
            self.q_v.weight.normal_(0.0, 0.01)

    def forward(self, maps: Tensor) -> Tensor:
        """``[B, 2, M, M]`` maps -> ``[B, A, M, M]`` action logits."""
        check_maps(maps)
        r = self.r(self.h(maps))
        qr = self.q_r(r)
        ks = self.config.kernel_size
        q = qr
        v = q.amax(dim=1, keepdim=True)
        for _ in range(self.config.k - 1):
            q = qr + F.conv2d(v, self.q_v.weight, padding=ks // 2)
            v = q.amax(dim=1, keepdim=True)
        q = qr + F.conv2d(v, self.q_v.weight, padding=ks // 2)
        self.last_values = q.amax(dim=1).detach()
        return self.policy(q)
