"""GPPN, ConvGPPN, SymGPPN: shapes, SymGPPN's exact equivariance, and they learn."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from mlcore_diffplan_vins.models import d4
from mlcore_diffplan_vins.models.gppn import GPPN, ConvGPPN, SymGPPN
from mlcore_diffplan_vins.models.planner_config import ConvGPPNConfig, GPPNConfig, SymGPPNConfig

Mazes = tuple[torch.Tensor, torch.Tensor]


@pytest.mark.parametrize(
    ("cls", "config"),
    [
        (GPPN, GPPNConfig(k=3, hidden_channels=5, num_actions=8)),
        (ConvGPPN, ConvGPPNConfig(k=3, hidden_channels=5, q_channels=6, num_actions=8)),
        (SymGPPN, SymGPPNConfig(k=3, hidden_channels=2, q_channels=2, num_actions=8)),
    ],
)
def test_logits_at_every_cell(cls: type, config: object) -> None:
    maps = torch.zeros(2, 2, 10, 10)
    maps[:, 1, 4, 6] = 1.0
    assert cls(config)(maps).shape == (2, 8, 10, 10)


@pytest.mark.parametrize("num_actions", [4, 8])
def test_symgppn_is_equivariant_on_random_inputs_and_real_mazes(num_actions: int, mazes_15: Mazes) -> None:
    torch.manual_seed(0)
    model = SymGPPN(SymGPPNConfig(k=8, hidden_channels=3, q_channels=3, num_actions=num_actions)).double()
    for maps in (torch.rand(2, 2, 9, 9, dtype=torch.float64), mazes_15[0].double()):
        with torch.no_grad():
            y = model(maps)
            for g in range(8):
                assert (model(d4.transform(maps, g)) - d4.transform_actions(y, g)).abs().max() < 1e-12, g


def test_convgppn_is_not_equivariant(mazes_15: Mazes) -> None:
    torch.manual_seed(1)
    model = ConvGPPN(ConvGPPNConfig(k=8, hidden_channels=8, q_channels=8))
    maps = mazes_15[0]
    with torch.no_grad():
        assert (model(d4.transform(maps, 1)) - d4.transform_actions(model(maps), 1)).abs().max() > 1e-4


@pytest.mark.parametrize(
    ("cls", "config"),
    [
        (GPPN, GPPNConfig(k=10, hidden_channels=16)),
        (ConvGPPN, ConvGPPNConfig(k=10, hidden_channels=16, q_channels=16)),
        (SymGPPN, SymGPPNConfig(k=10, hidden_channels=2, q_channels=2)),
    ],
)
def test_loss_falls_on_a_tiny_maze_batch(
    cls: type, config: object, mazes_9: Mazes, train_losses: Callable[..., list[float]]
) -> None:
    torch.manual_seed(2)
    losses = train_losses(cls(config), mazes_9[0][:8], mazes_9[1][:8], steps=25)
    assert losses[-1] < 0.8 * losses[0], losses[::8]
