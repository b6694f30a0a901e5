"""Fixtures of the planner tests: real labelled mazes and a few training steps."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from mlcore_diffplan_vins.loss import OptimalSetLoss
from mlcore_diffplan_vins.mazes import generate_mazes


def maze_batch(num: int, size: int, num_actions: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(maps [N, 2, M, M], optimal action sets [N, A, M, M])`` of generated mazes, float32."""
    mazes = generate_mazes(num, size=size, num_actions=num_actions, seed=seed)
    maps = torch.stack([torch.from_numpy(mazes.walls), torch.from_numpy(mazes.goal_maps())], dim=1).float()
    return maps, torch.from_numpy(mazes.optimal_actions).float()


@pytest.fixture(scope="session")
def mazes_9() -> tuple[torch.Tensor, torch.Tensor]:
    """16 real 9x9 mazes with 4 actions."""
    return maze_batch(16, 9)


@pytest.fixture(scope="session")
def mazes_9_a8() -> tuple[torch.Tensor, torch.Tensor]:
    """8 real 9x9 mazes with 8 actions."""
    return maze_batch(8, 9, num_actions=8)


@pytest.fixture(scope="session")
def mazes_15() -> tuple[torch.Tensor, torch.Tensor]:
    """4 real 15x15 mazes with 4 actions."""
    return maze_batch(4, 15)


@pytest.fixture
def train_losses() -> Callable[..., list[float]]:
    """``train_losses(model, maps, targets, steps)``: the loss of each RMSprop step (lr 1e-3, the research setup)."""

    def run(model: nn.Module, maps: torch.Tensor, targets: torch.Tensor, steps: int = 30) -> list[float]:
        torch.manual_seed(0)
        loss_fn = OptimalSetLoss()
        optimiser = torch.optim.RMSprop(model.parameters(), lr=1e-3)
        losses = []
        for _ in range(steps):
            loss = loss_fn(model(maps), targets)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        return losses

    return run
