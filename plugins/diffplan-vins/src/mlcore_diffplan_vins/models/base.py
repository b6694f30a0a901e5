"""The interface every grid planner implements.

A planner is an ``nn.Module`` built as ``Cls(config)`` from an attrs config (a subclass of
:class:`~mlcore_diffplan_vins.models.config.PlannerConfig`) with::

    forward(maps: Tensor) -> Tensor        # [B, 2, M, M] float -> [B, A, M, M] action logits

``maps[:, 0]`` are the obstacles (1 = wall, 0 = free) and ``maps[:, 1]`` the goal (one-hot).
The logits score every action at every cell, in the order of
:data:`mlcore_diffplan_vins.actions.ACTION_OFFSETS` (``4abs-cc``: N, W, S, E, so a 90°
counter-clockwise rotation of the map is a cyclic shift ``+1`` of the action index).

After each forward a planner may set:

- ``last_values``: ``[B, M, M]`` the value map of its final planning step (reports plot it);
- ``last_convergence``: ``{"iterations": ..., "residual": ...}`` (deep-equilibrium models;
  the pipelines log it).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mlcore.errors import DataError

__all__ = ["GridPlanner", "check_maps", "example_maps"]


def check_maps(maps: Tensor, name: str = "maps") -> None:
    """Raise :class:`DataError` (one line) unless ``maps`` is a finite float ``[B, 2, M, M]`` tensor."""
    if maps.dim() != 4 or maps.shape[1] != 2 or maps.shape[2] != maps.shape[3]:
        raise DataError(f"{name} must be [batch, 2, M, M] (channel 0 = obstacles, 1 = goal); got {list(maps.shape)}")
    if not maps.is_floating_point():
        raise DataError(f"{name} must be a float tensor; got {maps.dtype}")
    if not bool(torch.isfinite(maps).all()):
        raise DataError(f"{name} contain NaN or infinite values")


def example_maps(batch_size: int = 2, size: int = 15) -> Tensor:
    """A tiny valid input: an empty room with a border wall and the goal at the centre."""
    maps = torch.zeros(batch_size, 2, size, size)
    maps[:, 0, 0, :] = maps[:, 0, -1, :] = maps[:, 0, :, 0] = maps[:, 0, :, -1] = 1.0
    maps[:, 1, size // 2, size // 2] = 1.0
    return maps


class GridPlanner(nn.Module):
    """Base class of the grid planners: stores the config and the optional per-forward outputs."""

    config: Any

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.num_actions: int = int(config.num_actions)
        self.last_values: Tensor | None = None
        self.last_convergence: dict[str, float] | None = None

    def example_input(self, batch_size: int = 2) -> Tensor:
        """Input for tracing/export (``mlcore export``) and the conformance kit."""
        return example_maps(batch_size)
