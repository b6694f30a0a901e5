"""``neural_ode``: a learned vector field dx/dt = f(x, u, w) integrated by torchdiffeq between samples.

Each sample has its own interval ``dt`` (irregular time stamps are fine): the field is integrated
over ``s`` in ``[0, 1]`` as ``dx/ds = (dt / dt_ref) f(x, u, w)``, which is the same ODE in the time
``t = s · dt`` and lets one solver call serve a batch of different intervals. Action and weather are
held over the interval (as the controller holds its action). The model is Markov: it uses the last
state of the window.
"""

from __future__ import annotations

import torch
from torch import nn

from mlcore_continuous_dynamics.configs import NeuralODEConfig
from mlcore_continuous_dynamics.models.base import DynamicsModel

__all__ = ["NeuralODE", "VectorField"]

FIXED_STEP = ("euler", "midpoint", "rk4")


class VectorField(nn.Module):
    """``f(x, u, w)`` (per reference interval), with the interval's context set before integrating."""

    def __init__(self, cfg: NeuralODEConfig) -> None:
        super().__init__()
        inputs = cfg.state_dim + cfg.action_dim + cfg.weather_dim
        out = nn.Linear(cfg.hidden_dim, cfg.state_dim)
        with torch.no_grad():
            out.weight.mul_(0.1)
            out.bias.zero_()
        self.net = nn.Sequential(
            nn.Linear(inputs, cfg.hidden_dim), nn.SiLU(), nn.Linear(cfg.hidden_dim, cfg.hidden_dim), nn.SiLU(), out
        )
        self.context = torch.empty(0)
        self.scale = torch.empty(0)
        self.evaluations = 0

    def forward(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        return self.scale * self.net(torch.cat([x, self.context], dim=-1))


class NeuralODE(DynamicsModel):
    """Neural ODE over each sample interval (solver, tolerances and the adjoint in the config)."""

    def __init__(self, config: NeuralODEConfig | None = None) -> None:
        cfg = config or NeuralODEConfig()
        super().__init__(cfg)
        self.field = VectorField(cfg)

    def integrate(self, x: torch.Tensor, action: torch.Tensor, weather: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """The state after intervals ``dt (B,)`` from ``x (B, D)`` with action and weather held."""
        from torchdiffeq import odeint, odeint_adjoint

        cfg = self.config
        self.field.context = torch.cat([action, weather], dim=-1)
        self.field.scale = (dt / self.dt_ref).unsqueeze(-1)
        span = torch.tensor([0.0, 1.0], dtype=x.dtype, device=x.device)
        options = {"step_size": cfg.step_fraction} if cfg.solver in FIXED_STEP else None
        solve = odeint_adjoint if cfg.adjoint and self.training else odeint
        kwargs = {"adjoint_params": tuple(self.field.parameters())} if solve is odeint_adjoint else {}
        path = solve(self.field, x, span, method=cfg.solver, rtol=cfg.rtol, atol=cfg.atol, options=options, **kwargs)
        return path[-1]

    def predict(
        self, states: torch.Tensor, actions: torch.Tensor, weather: torch.Tensor, dt: torch.Tensor
    ) -> torch.Tensor:
        return self.integrate(states[:, -1], actions[:, -1], weather[:, -1], dt[:, -1])
