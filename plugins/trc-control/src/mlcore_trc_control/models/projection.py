"""Exact terminal constraint for control-sequence models of a linear system.

``x_N = A^N x_0 + G U`` is linear in the stacked controls ``U``, so the controls that reach the
target form an affine subspace. :class:`TerminalProjection` maps any prediction onto it (the
``R``-weighted least-change correction ``U - R̄⁻¹G'(G R̄⁻¹G')⁻¹ (G U - (r - A^N x_0))``), alternated
with clamping to the box ``|u| <= control_limit`` (alternating projections), ending with the clamp
so the box always holds. Differentiable; exports to ONNX (matrix products and a clamp only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["TerminalProjection"]


class TerminalProjection(nn.Module):
    """Project controls ``(B, N, m)`` onto ``x_N = r`` (and the box) for problems ``[x_0, r, T]``.

    The system is held in buffers set by :meth:`set_system` (so a checkpoint restores it); until
    then — or for a system that cannot reach every target in ``N`` steps — the correction is zero
    and the projection is the identity. ``forward`` has no data-dependent branches (it traces).
    """

    terminal_map: torch.Tensor  # G' (N*m, n)
    free_map: torch.Tensor  # (A^N)' (n, n)
    correction: torch.Tensor  # (R̄⁻¹G'(G R̄⁻¹G')⁻¹)' (n, N*m)
    limit: torch.Tensor  # inf when unbounded

    def __init__(self, state_dim: int, control_dim: int, num_steps: int, iterations: int = 20) -> None:
        super().__init__()
        self.state_dim, self.control_dim, self.num_steps = state_dim, control_dim, num_steps
        self.iterations = iterations
        dim = num_steps * control_dim
        self.register_buffer("terminal_map", torch.zeros(dim, state_dim))
        self.register_buffer("free_map", torch.eye(state_dim))
        self.register_buffer("correction", torch.zeros(state_dim, dim))
        self.register_buffer("limit", torch.tensor(float("inf")))

    @torch.no_grad()
    def set_system(self, system: Any) -> None:
        """Build the maps from a :class:`~mlcore_trc_control.lqr.systems.LinearSystem` (float64, then cast)."""
        a, b, r = (np.asarray(getattr(system, k), dtype=np.float64) for k in ("A", "B", "R"))
        n, steps = self.state_dim, self.num_steps
        powers = [np.eye(n)]
        for _ in range(steps):
            powers.append(a @ powers[-1])
        g = np.concatenate([powers[steps - 1 - j] @ b for j in range(steps)], axis=1)  # (n, N*m)
        w_inv = np.kron(np.eye(steps), np.linalg.inv(r))
        gram = g @ w_inv @ g.T
        limit = float(system.control_limit)
        self.limit.fill_(limit if limit > 0 else float("inf"))
        if np.linalg.matrix_rank(gram) < n:  # not controllable in N steps: no exact projection
            self.correction.zero_()
            return
        self.terminal_map.copy_(torch.as_tensor(g.T))
        self.free_map.copy_(torch.as_tensor(powers[steps].T))
        self.correction.copy_(torch.as_tensor((w_inv @ g.T @ np.linalg.inv(gram)).T))

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        # checkpoints of models trained before the projection existed lack these buffers: keep the
        # current ones (the identity unless set_system ran), so such a model computes what it learnt
        for name, buf in self._buffers.items():
            if buf is not None:
                state_dict.setdefault(prefix + name, buf.detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _project(self, u: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return u - (u @ self.terminal_map - goal) @ self.correction

    def forward(self, problems: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        """The projected controls ``(B, N, m)``."""
        n = self.state_dim
        goal = problems[:, n : 2 * n] - problems[:, :n] @ self.free_map
        u = self._project(controls.reshape(controls.shape[0], -1), goal)
        for _ in range(self.iterations):
            u = self._project(torch.clamp(u, -self.limit, self.limit), goal)
        return torch.clamp(u, -self.limit, self.limit).view(-1, self.num_steps, self.control_dim)
