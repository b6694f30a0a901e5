"""MP-VIN and Sym-MP-VIN: value iteration by message passing on the move graph.

Both planners:

1. encode each node's ``(goal, obstacle)`` with an MLP and one message-passing layer over its
   neighbours (messages see the *edge geometry*, below) into ``h``, and read a reward ``r = w·h``;
2. compute, once, for every edge ``i -> j`` a transition of ``q_channels`` channels
   ``(a_ij, b_ij) = MLP(h_i, h_j, geometry_ij)``;
3. iterate ``K`` times the Bellman backup ``Q_ij = r_i + a_ij * V_j + b_ij``,
   ``V_i = max_{j, c} Q_ij^c`` (max over the node's out-edges and the channels);
4. score each edge with ``MLP(Q_ij)``: logits over the node's neighbour slots, or a direction.

The edge geometry is the only difference. MP-VIN sees the relative position ``pos_j - pos_i``,
so nothing ties its outputs to rotations of the input. Sym-MP-VIN sees only
``(|d|, min(|dx|, |dy|), max(|dx|, |dy|))`` of ``d = pos_j - pos_i``, which no element of D4
(the rotations by 90° and the reflections of the grid) changes: its logits and values are
*invariant* and its direction output (``equiv_policy``) *equivariant* under D4, exactly (the test
rotates and reflects the coordinates and compares to 1e-5).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mlcore_diffplan_vins.graphs.config import MPVINConfig, SymMPVINConfig
from mlcore_diffplan_vins.graphs.models.base import (
    EMPTY_LOGIT,
    GraphPlanner,
    check_graph,
    check_slots,
    edge_softmax,
    mlp,
)

__all__ = ["MPVIN", "SymMPVIN"]


class MPVIN(GraphPlanner):
    """MP-VIN (see the module docstring)."""

    config: MPVINConfig
    #: Width of the edge geometry features.
    geometry_dim = 2

    def __init__(self, config: MPVINConfig | None = None) -> None:
        super().__init__(config or MPVINConfig())
        c = self.config
        h, q, g = c.hidden_channels, c.q_channels, self.geometry_dim
        self.embed = mlp(2, h, h)
        self.message = mlp(2 * h + g, h, h)
        self.update = mlp(2 * h, h, h)
        self.reward = nn.Linear(h, 1)
        self.transition = mlp(2 * h + g, h, 2 * q)
        self.policy = mlp(q, h, 1)
        self.free_head = mlp(h + 2 + q, h, 2) if c.cont_action and not c.equiv_policy else None

    def geometry(self, rel: Tensor) -> Tensor:
        """Edge features from the relative positions ``pos_j - pos_i`` (here: the raw offsets)."""
        return rel

    def forward(self, graph: Any) -> Tensor:
        """``[n, D]`` slot logits (or ``[n, 2]`` directions) for a batch of graphs."""
        check_graph(graph)
        from torch_geometric.utils import scatter

        x, pos = graph.x, graph.pos
        src, dst = graph.edge_index
        n = x.shape[0]
        rel = pos[dst] - pos[src]
        geo = self.geometry(rel)
        h0 = self.embed(x)
        msg = self.message(torch.cat([h0[src], h0[dst], geo], dim=1))
        h = self.update(torch.cat([h0, scatter(msg, src, dim=0, dim_size=n, reduce="mean")], dim=1))
        r = self.reward(h)[:, 0]
        a, b = self.transition(torch.cat([h[src], h[dst], geo], dim=1)).chunk(2, dim=1)
        # dense [n, D, Q] layout (gathers and a max over slots instead of scatter-max over edges); empty slots
        # point at a padding node and get a bias of EMPTY_LOGIT, so they never win the max
        slot, d = graph.slot, self.max_degree
        check_slots(slot, d)
        nbr = torch.full((n, d), n, dtype=torch.long, device=x.device).index_put((src, slot), dst)
        a_d = a.new_zeros(n, d, a.shape[1]).index_put((src, slot), a)
        b_d = b.new_full((n, d, b.shape[1]), EMPTY_LOGIT).index_put((src, slot), b)
        v = torch.zeros(n + 1, dtype=h.dtype, device=h.device)
        q_d = r[:, None, None] + b_d
        for _ in range(self.config.k):
            q_d = r[:, None, None] + a_d * v[nbr][..., None] + b_d
            v = torch.cat([q_d.amax(dim=(1, 2)), v.new_zeros(1)])
        self.last_values = v[:n].detach()
        q = q_d[src, slot]
        logits = self.policy(q)[:, 0]
        feats = None
        if self.free_head is not None:
            w = edge_softmax(logits, src, n)[:, None]
            pooled = scatter(w * torch.cat([rel, q], dim=1), src, dim=0, dim_size=n, reduce="sum")
            feats = torch.cat([h, pooled], dim=1)
        return self.output(logits, graph, self.free_head, feats)


class SymMPVIN(MPVIN):
    """Sym-MP-VIN: MP-VIN whose messages see only D4-invariant edge geometry (see the module docstring)."""

    config: SymMPVINConfig
    geometry_dim = 3

    def __init__(self, config: SymMPVINConfig | None = None) -> None:
        super().__init__(config or SymMPVINConfig())

    def geometry(self, rel: Tensor) -> Tensor:
        """``(|d|, min(|dx|, |dy|), max(|dx|, |dy|))``: unchanged by every rotation/reflection of D4."""
        ab = rel.abs()
        return torch.stack([rel.norm(dim=1), ab.amin(dim=1), ab.amax(dim=1)], dim=1)
