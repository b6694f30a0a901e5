"""Gated path planning networks: GPPN (Lee, Parisotto, Chaplot, Xing, Salakhutdinov, ICML 2018),
its convolutional-LSTM variant ConvGPPN and the D4-equivariant SymGPPN (Zhao et al., ICLR 2023).

- :class:`GPPN`: value iteration's max is replaced by an LSTM cell per map cell. Each step a
  convolution gathers the neighbours' hidden states into one input per cell, and a shared
  ``LSTMCell(1, l_h)`` updates every cell; the initial state comes from convolutions of the maps.
- :class:`ConvGPPN`: the LSTM itself is convolutional: the four gates are convolutions of the
  reward map ``r`` and the previous state ``q`` (``q_channels`` channels). The reward half of
  the gates is the same every step, so it is computed once.
- :class:`SymGPPN`: ConvGPPN with D4 group convolutions (:mod:`.d4`) and the equivariant action
  head; the gate nonlinearities act pointwise on regular fields, so the network is equivariant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mlcore_diffplan_vins.models.base import GridPlanner, check_maps
from mlcore_diffplan_vins.models.d4 import ActionHead, GroupConv, LiftingConv
from mlcore_diffplan_vins.models.planner_config import ConvGPPNConfig, GPPNConfig, SymGPPNConfig

__all__ = ["GPPN", "ConvGPPN", "SymGPPN"]


class GPPN(GridPlanner):
    """Gated Path Planning Network with a per-cell ``LSTMCell``; see the module docstring."""

    config: GPPNConfig

    def __init__(self, config: GPPNConfig | None = None) -> None:
        config = config or GPPNConfig()
        super().__init__(config)
        width, ks = config.hidden_channels, config.kernel_size
        self.hid = nn.Conv2d(2, width, 3, padding=1, bias=True)
        self.h0 = nn.Conv2d(width, width, 3, padding=1, bias=True)
        self.c0 = nn.Conv2d(width, width, 3, padding=1, bias=True)
        self.conv = nn.Conv2d(width, 1, ks, padding=ks // 2, bias=True)
        self.lstm = nn.LSTMCell(1, width)
        self.policy = nn.Conv2d(width, config.num_actions, 1, bias=False)

    def forward(self, maps: Tensor) -> Tensor:
        """``[B, 2, M, M]`` maps -> ``[B, A, M, M]`` action logits."""
        check_maps(maps)
        b, _, m, n = maps.shape
        width = self.config.hidden_channels
        hid = self.hid(maps)

        def cells(x: Tensor) -> Tensor:  # [B, C, M, N] -> [B*M*N, C]
            return x.permute(0, 2, 3, 1).reshape(b * m * n, -1)

        def grid(x: Tensor) -> Tensor:  # [B*M*N, C] -> [B, C, M, N]
            return x.reshape(b, m, n, -1).permute(0, 3, 1, 2)

        h, c = cells(self.h0(hid)), cells(self.c0(hid))
        for _ in range(self.config.k - 1):
            h, c = self.lstm(cells(self.conv(grid(h))), (h, c))
        return self.policy(grid(h).reshape(b, width, m, n))


class _ConvLSTMPlanner(GridPlanner):
    """The shared forward of ConvGPPN and SymGPPN (the layers differ, the recurrence does not)."""

    h: nn.Module
    r: nn.Module
    q0: nn.Module
    gates_r: nn.Module
    gates_q: nn.Module
    policy: nn.Module

    def forward(self, maps: Tensor) -> Tensor:
        """``[B, 2, M, M]`` maps -> ``[B, A, M, M]`` action logits."""
        check_maps(maps)
        r = self.r(self.h(maps))
        q = self.q0(r)
        cell = q
        from_r = self.gates_r(r)  # the reward half of the gates, fixed across steps
        for _ in range(self.config.k):
            i, f, o, g = (from_r + self.gates_q(q)).chunk(4, dim=1)
            cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
            q = torch.sigmoid(o) * torch.tanh(cell)
        return self.policy(q)


class ConvGPPN(_ConvLSTMPlanner):
    """GPPN with a convolutional LSTM state of ``q_channels`` channels; see the module docstring."""

    config: ConvGPPNConfig

    def __init__(self, config: ConvGPPNConfig | None = None) -> None:
        config = config or ConvGPPNConfig()
        super().__init__(config)
        ks, width = config.kernel_size, config.q_channels
        self.h = nn.Conv2d(2, config.hidden_channels, 3, padding=1, bias=True)
        self.r = nn.Conv2d(config.hidden_channels, 1, 1, bias=False)
        self.q0 = nn.Conv2d(1, width, ks, padding=ks // 2, bias=False)
        self.gates_r = nn.Conv2d(1, 4 * width, ks, padding=ks // 2, bias=True)
        self.gates_q = nn.Conv2d(width, 4 * width, ks, padding=ks // 2, bias=False)
        self.policy = nn.Conv2d(width, config.num_actions, 1, bias=False)


class SymGPPN(_ConvLSTMPlanner):
    """ConvGPPN with D4 group convolutions: rotating/reflecting the maze transforms the policy exactly."""

    config: SymGPPNConfig

    def __init__(self, config: SymGPPNConfig | None = None) -> None:
        config = config or SymGPPNConfig()
        super().__init__(config)
        ks, fields = config.kernel_size, config.q_channels
        self.h = LiftingConv(2, config.hidden_channels, 3, bias=True)
        self.r = GroupConv(config.hidden_channels, 1, 1)
        self.q0 = GroupConv(1, fields, ks)
        self.gates_r = GroupConv(1, 4 * fields, ks, bias=True)
        self.gates_q = GroupConv(fields, 4 * fields, ks)
        self.policy = ActionHead(fields, config.num_actions)
