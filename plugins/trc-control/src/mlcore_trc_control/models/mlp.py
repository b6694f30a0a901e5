"""A plain MLP control policy, the comparison's same-size baseline for TinyRecursiveControl."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mlcore_trc_control.models.projection import TerminalProjection

__all__ = ["MLPPolicy"]


class MLPPolicy(nn.Module):
    """``[x_0, r, T] -> controls (B, N, m)``: two SiLU hidden layers of ``width``, with TRC's
    input/output normalisation (``net((x - mean) / std) * scale``) and, with ``projection=True``,
    its terminal projection (set by :meth:`set_system`; horizon-aware over ``projection_horizons``
    ``[T_min, T_max]`` when given), so the two compare like for like."""

    mean: torch.Tensor
    std: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self,
        input_dim: int,
        num_steps: int,
        control_dim: int,
        width: int,
        projection: bool = False,
        projection_horizons: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.num_steps, self.control_dim = num_steps, control_dim
        out = num_steps * control_dim
        self.net = nn.Sequential(
            nn.Linear(input_dim, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, out)
        )
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        self.register_buffer("scale", torch.ones(out))
        state_dim = (input_dim - 1) // 2
        self.projection = (
            TerminalProjection(state_dim, control_dim, num_steps, horizons=projection_horizons) if projection else None
        )

    def set_system(self, system: object) -> None:
        """The linear system of the terminal projection (no-op without one)."""
        if self.projection is not None:
            self.projection.set_system(system)

    @torch.no_grad()
    def set_normalisation(self, problems: torch.Tensor, controls: torch.Tensor) -> None:
        """Input mean/std and per-control scale from training tensors ``(M, 2n+1)``, ``(M, N, m)``."""
        self.mean.copy_(problems.mean(0))
        # a constant input (the horizon of a fixed-horizon data set) keeps scale 1, as in TRC: dividing
        # by a clamped ~0 std made any other horizon an input of ~1e6 (closed loop, DAgger, generalisation)
        std = problems.std(0)
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        self.scale.copy_(controls.reshape(-1, self.control_dim).std(0).clamp_min(1e-6).repeat(self.num_steps))

    def num_parameters(self) -> int:
        """Trainable parameter count."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, problems: torch.Tensor) -> torch.Tensor:
        """Controls ``(B, N, m)``."""
        out = (self.net((problems - self.mean) / self.std) * self.scale).view(-1, self.num_steps, self.control_dim)
        return out if self.projection is None else self.projection(problems, out)
