"""A differentiable PyTorch simulator of a :class:`~mlcore_trc_control.nonlinear.systems.NonlinearSystem`.

The same RK4 step and right-hand side as the NumPy rollout and the CasADi expert (the
expression is shared), batched over problems with a per-problem step ``dt_i = T_i / N`` taken
from the problem vector ``[x_0, r, T]``. Gradients flow through every step, so training losses
can be taken on the true nonlinear trajectory (terminal error, stated cost).

Example::

    sim = TorchSimulator(build_nonlinear_system("pendulum"))
    states = sim.rollout(problems, controls)        # (B, N+1, n)
    cost = sim.cost(problems, controls)             # (B,), differentiable in controls
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mlcore_trc_control.nonlinear.systems import NonlinearSystem, rk4_step

__all__ = ["TorchSimulator", "soft_clamp"]


class TorchSimulator(nn.Module):
    """Batched, differentiable RK4 rollouts and quadratic costs of a nonlinear system.

    The weights are buffers (so they follow ``.to(device)`` and ``.double()``); the system's
    name and physical parameters are plain attributes.
    """

    Q: torch.Tensor
    R: torch.Tensor
    Qf: torch.Tensor

    def __init__(self, system: NonlinearSystem) -> None:
        super().__init__()
        self.system = system
        self.n, self.m = system.n, system.m
        self.register_buffer("Q", torch.as_tensor(system.Q, dtype=torch.float32))
        self.register_buffer("R", torch.as_tensor(system.R, dtype=torch.float32))
        self.register_buffer("Qf", torch.as_tensor(system.Qf, dtype=torch.float32))

    def _rhs(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        parts = self.system.rhs([x[:, i] for i in range(self.n)], [u[:, j] for j in range(self.m)], torch)
        return torch.stack(parts, dim=1)

    def rollout(self, problems: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        """States ``(B, N+1, n)`` from problems ``(B, 2n+1) = [x_0, r, T]`` and controls ``(B, N, m)``."""
        steps = controls.shape[1]
        x = problems[:, : self.n]
        dt = (problems[:, 2 * self.n] / steps).unsqueeze(1)
        states = [x]
        for k in range(steps):
            x = rk4_step(self._rhs, x, controls[:, k], dt)
            states.append(x)
        return torch.stack(states, dim=1)

    def cost(self, problems: torch.Tensor, controls: torch.Tensor, states: torch.Tensor | None = None) -> torch.Tensor:
        """The stated cost ``J`` per problem ``(B,)``."""
        if states is None:
            states = self.rollout(problems, controls)
        err = states - problems[:, None, self.n : 2 * self.n]
        q, r, qf = (w.to(device=states.device, dtype=states.dtype) for w in (self.Q, self.R, self.Qf))
        stage = torch.einsum("bki,ij,bkj->b", err[:, :-1], q, err[:, :-1])
        effort = torch.einsum("bki,ij,bkj->b", controls, r, controls)
        terminal = torch.einsum("bi,ij,bj->b", err[:, -1], qf, err[:, -1])
        return stage + effort + terminal

    def terminal_error(self, problems: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        """``||x_N - r||`` per problem ``(B,)``."""
        final = self.rollout(problems, controls)[:, -1]
        return torch.linalg.vector_norm(final - problems[:, self.n : 2 * self.n], dim=1)

    def extra_repr(self) -> str:
        return f"system={self.system.name!r}, n={self.n}, m={self.m}, N={self.system.num_steps}"


def soft_clamp(u: torch.Tensor, limit: float) -> torch.Tensor:
    """``limit * tanh(u / limit)``: a smooth map into the box (identity when ``limit`` is infinite)."""
    if not math.isfinite(limit) or limit <= 0:
        return u
    return limit * torch.tanh(u / limit)
