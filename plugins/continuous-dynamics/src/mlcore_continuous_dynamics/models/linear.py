"""``linear_dynamics``: a linear state-space model, x_{t+1} = A x_t + B u_t + C w_t + d."""

from __future__ import annotations

import torch
from torch import nn

from mlcore_continuous_dynamics.configs import LinearConfig
from mlcore_continuous_dynamics.models.base import DynamicsModel

__all__ = ["LinearDynamics"]


class LinearDynamics(DynamicsModel):
    """Linear baseline on the last state of the window (``A`` starts at the identity: persistence)."""

    def __init__(self, config: LinearConfig | None = None) -> None:
        cfg = config or LinearConfig()
        super().__init__(cfg)
        self.A = nn.Linear(cfg.state_dim, cfg.state_dim, bias=False)
        self.B = nn.Linear(cfg.action_dim, cfg.state_dim, bias=False)
        self.C = nn.Linear(cfg.weather_dim, cfg.state_dim, bias=True)  # its bias is d
        with torch.no_grad():
            self.A.weight.copy_(torch.eye(cfg.state_dim))
            self.B.weight.zero_()
            self.C.weight.zero_()
            self.C.bias.zero_()

    def predict(
        self, states: torch.Tensor, actions: torch.Tensor, weather: torch.Tensor, dt: torch.Tensor
    ) -> torch.Tensor:
        return self.A(states[:, -1]) + self.B(actions[:, -1]) + self.C(weather[:, -1])
