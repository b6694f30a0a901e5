"""GAT-VIN and GCN-VIN-v2: value iteration whose Bellman backup is a standard torch-geometric layer.

Both encode the nodes like MP-VIN (MLP, then one layer of the same kind over the neighbours), read
a reward per node and ``q_channels`` Q maps, and iterate ``K`` times::

    Q = r + Layer([h, V], neighbours)      # [n, channels]
    V = max over channels of Q

The layer aggregates the *neighbours'* values into each node (messages flow ``j -> i`` for every
move ``i -> j``). GAT-VIN uses :class:`~torch_geometric.nn.GATConv` (attention over the
neighbours, conditioned on their value and the relative position, so it can learn to attend to the
best one); GCN-VIN-v2 uses :class:`~torch_geometric.nn.GCNConv` (a fixed degree-normalised average,
with a residual MLP on the node's own features). A shared edge head scores each move from both
ends' features, their values and the relative position.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mlcore_diffplan_vins.graphs.config import GATVINConfig, GCNVINv2Config
from mlcore_diffplan_vins.graphs.models.base import GraphPlanner, check_graph, mlp

__all__ = ["GATVIN", "GCNVINv2"]


class _LayerVIN(GraphPlanner):
    """Shared flow of GAT-VIN and GCN-VIN-v2; subclasses build ``encoder`` and ``backup`` and define ``_layer``."""

    encoder: nn.Module
    backup: nn.Module
    channels: int

    def _init_heads(self) -> None:
        h = self.config.hidden_channels
        self.embed = mlp(2, h, h)
        self.reward = nn.Linear(h, self.channels)
        self.policy = mlp(2 * h + 2 * self.channels + 2, h, 1)

    def _layer(self, layer: nn.Module, feats: Tensor, flow: Tensor, rel_flow: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, graph: Any) -> Tensor:
        """``[n, D]`` slot logits for a batch of graphs."""
        check_graph(graph)
        x, pos = graph.x, graph.pos
        src, dst = graph.edge_index
        n = x.shape[0]
        flow = torch.stack([dst, src])  # messages from the neighbour to the node that can move there
        rel = pos[dst] - pos[src]
        h0 = self.embed(x)
        h = torch.relu(self._layer(self.encoder, h0, flow, rel)) + h0
        r = self.reward(h)
        v = torch.zeros(n, 1, dtype=h.dtype, device=h.device)
        q = r
        for _ in range(self.config.k):
            q = r + self._layer(self.backup, torch.cat([h, v], dim=1), flow, rel)
            v = q.amax(dim=1, keepdim=True)
        self.last_values = v[:, 0].detach()
        edge = torch.cat([h[src], h[dst], q[src], q[dst], rel], dim=1)
        return self.output(self.policy(edge)[:, 0], graph)


class GATVIN(_LayerVIN):
    """GAT-VIN (see the module docstring)."""

    config: GATVINConfig

    def __init__(self, config: GATVINConfig | None = None) -> None:
        from torch_geometric.nn import GATConv

        super().__init__(config or GATVINConfig())
        c = self.config
        self.channels = c.q_channels * c.heads
        self.encoder = GATConv(c.hidden_channels, c.hidden_channels, heads=1, edge_dim=2, add_self_loops=False)
        self.backup = GATConv(c.hidden_channels + 1, c.q_channels, heads=c.heads, edge_dim=2, add_self_loops=False)
        self._init_heads()

    def _layer(self, layer: nn.Module, feats: Tensor, flow: Tensor, rel_flow: Tensor) -> Tensor:
        out: Tensor = layer(feats, flow, edge_attr=rel_flow)
        return out


class GCNVINv2(_LayerVIN):
    """GCN-VIN-v2 (see the module docstring)."""

    config: GCNVINv2Config

    def __init__(self, config: GCNVINv2Config | None = None) -> None:
        from torch_geometric.nn import GCNConv

        super().__init__(config or GCNVINv2Config())
        c = self.config
        self.channels = c.q_channels
        self.encoder = GCNConv(c.hidden_channels, c.hidden_channels)
        self.backup = GCNConv(c.hidden_channels + 1, c.q_channels)
        self.self_term = mlp(c.hidden_channels + 1, c.hidden_channels, c.q_channels)
        self._init_heads()

    def _layer(self, layer: nn.Module, feats: Tensor, flow: Tensor, rel_flow: Tensor) -> Tensor:
        out: Tensor = layer(feats, flow)
        if layer is self.backup:
            out = out + self.self_term(feats)
        return out
