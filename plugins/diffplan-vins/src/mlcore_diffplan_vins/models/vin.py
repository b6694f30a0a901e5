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
from mlcore_diffplan_vins.models.vi_kernel import from_rows, neighbourhoods, value_iteration

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
        batch, _, size, _ = maps.shape
        ks = self.config.kernel_size
        # h and r are both linear (Tamar et al. put no nonlinearity between them), so r = r(h(maps))
        # is one 3x3 conv 2 -> 1 with the composed weight: the same function and gradients, without
        # materialising the l_h-channel hidden map.
        w_r = self.r.weight[:, :, 0, 0]  # [1, l_h]
        weight = torch.einsum("oc,cikl->oikl", w_r, self.h.weight)
        bias = w_r @ self.h.bias if self.h.bias is not None else None
        r = F.conv2d(maps, weight, bias, padding=1)
        # Value iteration in the [channels, B*M*M] layout: a conv is the kernel [l_q, k*k] times the
        # cells' k x k neighbourhoods; the K - 1 inner steps run in one autograd function with a
        # sparse backward (models/vi_kernel.py).
        w_q = self.q_r.weight.reshape(self.q_r.out_channels, -1)  # [l_q, k*k]
        w_v = self.q_v.weight.reshape(self.q_v.out_channels, -1)
        qr = w_q @ neighbourhoods(r.reshape(-1), batch, size, ks)  # [l_q, B*M*M]
        v = value_iteration(qr, w_v, self.config.k - 1, batch, size, ks)
        q = torch.addmm(qr, w_v, neighbourhoods(v, batch, size, ks))
        self.last_values = q.detach().max(dim=0).values.view(batch, size, size)
        logits = self.policy.weight[:, :, 0, 0] @ q  # [A, B*M*M]
        return from_rows(logits, batch, size)
