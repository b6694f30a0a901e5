"""VIN: the same network as the textbook implementation, and it learns."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mlcore_diffplan_vins.data import maze_tensors
from mlcore_diffplan_vins.loss import OptimalSetLoss
from mlcore_diffplan_vins.mazes import generate_mazes
from mlcore_diffplan_vins.models.config import VINConfig
from mlcore_diffplan_vins.models.vin import VIN


class TextbookVIN(nn.Module):
    """Tamar et al.'s VIN as usually written: h, r, then K x (conv([r, v]) + max), logits from Q."""

    def __init__(self, vin: VIN) -> None:
        super().__init__()
        self.vin = vin

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        m = self.vin
        r = m.r(m.h(maps))
        weight = torch.cat([m.q_r.weight, m.q_v.weight], 1)
        q = m.q_r(r)
        v = q.max(dim=1, keepdim=True).values
        for _ in range(m.config.k - 1):
            q = F.conv2d(torch.cat([r, v], 1), weight, padding=1)
            v = q.max(dim=1, keepdim=True).values
        q = F.conv2d(torch.cat([r, v], 1), weight, padding=1)
        return m.policy(q)


def test_forward_and_gradients_equal_the_textbook_network() -> None:
    torch.manual_seed(0)
    model = VIN(VINConfig(k=7, hidden_channels=12, q_channels=6)).double()
    for p in model.parameters():
        p.data.normal_(0, 0.5)
    maps, targets = maze_tensors(generate_mazes(3, 11, 4, seed=0))
    maps = maps.double()
    ours, ref = model(maps), TextbookVIN(model)(maps)
    torch.testing.assert_close(ours, ref)
    loss = OptimalSetLoss()
    g_ours = torch.autograd.grad(loss(ours, targets.double()), list(model.parameters()))
    g_ref = torch.autograd.grad(loss(TextbookVIN(model)(maps), targets.double()), list(model.parameters()))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)
    assert model.last_values is not None and model.last_values.shape == (3, 11, 11)


def test_eight_actions_and_other_sizes() -> None:
    model = VIN(VINConfig(k=4, hidden_channels=8, q_channels=10, num_actions=8))
    maps, _ = maze_tensors(generate_mazes(2, 28, 8, seed=1))
    assert model(maps).shape == (2, 8, 28, 28)


def test_loss_falls_when_training() -> None:
    torch.manual_seed(0)
    maps, targets = maze_tensors(generate_mazes(64, 9, 4, seed=2))
    model = VIN(VINConfig(k=12, hidden_channels=20, q_channels=10))
    loss = OptimalSetLoss()
    opt = torch.optim.RMSprop(model.parameters(), lr=5e-3)
    first = loss(model(maps), targets).item()
    for _ in range(60):
        opt.zero_grad()
        value = loss(model(maps), targets)
        value.backward()
        opt.step()
    assert value.item() < 0.6 * first
