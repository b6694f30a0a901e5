"""GAT-VIN and GCN-VIN-v2: shapes, learning, and value information flowing toward the goal's neighbours."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from mlcore_diffplan_vins.graphs.config import GATVINConfig, GCNVINv2Config
from mlcore_diffplan_vins.graphs.data import collate_graphs, graph_items
from mlcore_diffplan_vins.graphs.loss import GraphActionLoss
from mlcore_diffplan_vins.graphs.models import GATVIN, GCNVINv2


@pytest.mark.parametrize(
    "make",
    [
        lambda: GATVIN(GATVINConfig(k=8, hidden_channels=16, q_channels=4)),
        lambda: GCNVINv2(GCNVINv2Config(k=8, hidden_channels=16, q_channels=4)),
    ],
)
def test_shapes_and_learning(maze_graphs_9: Any, make: Any) -> None:
    torch.manual_seed(0)
    model = make()
    batch, targets = collate_graphs(graph_items(maze_graphs_9.subset(slice(0, 8)), False))
    out = model(batch)
    assert out.shape == targets.shape and torch.isfinite(out).all()
    assert model.last_values.shape == (batch.num_nodes,)
    loss_fn = GraphActionLoss()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn(model(batch), targets)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_graphs_do_not_mix_in_a_batch(maze_graphs_9: Any) -> None:
    torch.manual_seed(0)
    model = GATVIN(GATVINConfig(k=5, hidden_channels=8, q_channels=2)).eval()
    items = graph_items(maze_graphs_9.subset(slice(0, 3)), False)
    batch, _ = collate_graphs(items)
    alone, _ = collate_graphs(items[1:2])
    with torch.no_grad():
        together = model(batch)[81:162]
        single = model(alone)
    assert torch.allclose(together, single, atol=1e-5)
