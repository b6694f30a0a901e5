"""SymVIN: value iteration with D4-equivariant convolutions (Zhao, Wang, Zhu, Walters, Platt, ICLR 2023).

The layers are VIN's with every convolution replaced by a D4 group convolution
(:mod:`.d4`): ``h`` lifts the (obstacles, goal) maps to regular fields, ``r`` is one regular
field, and each step computes ``q = conv([r, v])`` (``q_channels`` regular fields) and
``v[g] = max_c q[c, g]`` (one regular field, the reference's group-channel-wise max). The
policy head maps Q's regular fields to the actions equivariantly
(:class:`~mlcore_diffplan_vins.models.d4.ActionHead`), so rotating or reflecting the maze
rotates or reflects the predicted policy exactly (up to float rounding), for 4 and 8 actions.

As in :class:`~mlcore_diffplan_vins.models.vin.VIN`, the reward term of Q is computed once and
the group kernel is expanded once per forward, not once per step; the intermediate steps use
:func:`~mlcore_diffplan_vins.models.bellman.bellman_max`, whose backward pass only touches the
maximising Q channel of each value (the same gradient, far fewer multiply-adds).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mlcore_diffplan_vins.models.base import GridPlanner, check_maps
from mlcore_diffplan_vins.models.bellman import bellman_max, cell_patches
from mlcore_diffplan_vins.models.d4 import ORDER, ActionHead, GroupConv, LiftingConv
from mlcore_diffplan_vins.models.planner_config import SymVINConfig

__all__ = ["SymVIN"]


class SymVIN(GridPlanner):
    """D4-equivariant Value Iteration Network; see the module docstring."""

    config: SymVINConfig

    def __init__(self, config: SymVINConfig | None = None) -> None:
        config = config or SymVINConfig()
        super().__init__(config)
        self.h = LiftingConv(2, config.hidden_channels, 3, bias=True)
        self.r = GroupConv(config.hidden_channels, 1, 1)
        self.q = GroupConv(2, config.q_channels, config.kernel_size)  # input fields: [r, v]
        self.policy = ActionHead(config.q_channels, config.num_actions)
        with torch.no_grad():  # a small transition kernel keeps the first iterations' values bounded (as VIN)
            self.q.weight[:, 1].normal_(0.0, 0.01)

    def reward_and_kernel(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        """``(q_r, w_v)``: Q's reward term ``[B, q_channels * 8, M, M]`` and the full kernel applied to ``v``."""
        r = self.r(self.h(maps))
        w = self.q.full_weight()
        q_r = F.conv2d(r, w[:, :ORDER], padding=self.config.kernel_size // 2)
        return q_r, w[:, ORDER:]

    def bellman(self, v: Tensor, q_r: Tensor, w_v: Tensor) -> Tensor:
        """One Bellman backup: the value field ``[B, 8, M, M]`` → Q ``[B, q_channels * 8, M, M]``."""
        return q_r + F.conv2d(v, w_v, padding=self.config.kernel_size // 2)

    @staticmethod
    def value(q: Tensor) -> Tensor:
        """``v[g] = max_c q[c, g]``: Q → the value field ``[B, 8, M, M]`` (equivariant)."""
        b, c8, m, n = q.shape
        return q.reshape(b, c8 // ORDER, ORDER, m, n).amax(dim=1)

    def head(self, q: Tensor) -> Tensor:
        """Q → action logits ``[B, A, M, M]``; also stores the invariant value map ``last_values``."""
        self.last_values = q.detach().amax(dim=1)
        return self.policy(q)

    def forward(self, maps: Tensor) -> Tensor:
        """``[B, 2, M, M]`` maps -> ``[B, A, M, M]`` action logits.

        Computes ``head(bellman(v_K))`` with ``v_{i+1} = value(bellman(v_i))`` and
        ``v_0 = value(q_r)``, on cell-major data (GEMMs instead of convolutions, see
        :mod:`~mlcore_diffplan_vins.models.bellman`); the tests compare it with the plain methods.
        """
        check_maps(maps)
        b, _, m, n = maps.shape
        ks, fields, actions = self.config.kernel_size, self.config.q_channels, self.config.num_actions
        r = self.r(self.h(maps))  # [B, 8, M, N]
        w = self.q.full_weight()  # [C * 8, 16, k, k], rows field-major
        w_v = w[:, ORDER:]
        # rows group-major (g * C + c), the layout of the cell-major Q
        w_gc = w.reshape(fields, ORDER, 2 * ORDER * ks * ks).transpose(0, 1).reshape(fields * ORDER, -1)
        w_r_gc, w_v_gc = w_gc.reshape(fields * ORDER, 2, -1).unbind(dim=1)

        q_r_cells = (cell_patches(r, ks) @ w_r_gc.t()).reshape(b, m * n, ORDER * fields)
        v = q_r_cells.reshape(b, m, n, ORDER, fields).amax(dim=4).permute(0, 3, 1, 2)
        for _ in range(self.config.k - 1):
            v = bellman_max(q_r_cells, v, w_v)  # = self.value(self.bellman(v, q_r, w_v)), sparse backward
        q_cells = q_r_cells.reshape(b * m * n, -1) + cell_patches(v, ks) @ w_v_gc.t()
        self.last_values = q_cells.detach().amax(dim=1).reshape(b, m, n)
        head = self.policy.full_weight().reshape(actions, fields, ORDER).transpose(1, 2).reshape(actions, -1)
        return (q_cells @ head.t()).reshape(b, m, n, actions).permute(0, 3, 1, 2)
