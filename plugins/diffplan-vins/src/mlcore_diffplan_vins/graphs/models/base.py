"""The interface every graph planner implements, and the pieces they share.

A planner is an ``nn.Module`` built as ``Cls(config)`` with::

    forward(graph: Batch) -> Tensor   # [n, D] logits over each node's neighbour slots
                                      # ([n, 2] directions when config.cont_action)

``graph`` has ``x [n, 2]`` (goal, obstacle), ``pos [n, 2]``, ``edge_index [2, E]`` (row 0 the
node, row 1 the neighbour it can move to) and ``slot [E]``. Empty slots get the logit
:data:`EMPTY_LOGIT` (finite, so losses stay finite; its probability is 0 in float32). After each
forward ``last_values [n]`` holds the planner's value of every node.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mlcore.errors import DataError

__all__ = [
    "EMPTY_LOGIT",
    "GraphPlanner",
    "check_graph",
    "check_slots",
    "edge_softmax",
    "example_graphs",
    "mlp",
    "slot_logits",
]

#: The logit of an empty neighbour slot.
EMPTY_LOGIT = -1e4


def mlp(*sizes: int) -> nn.Sequential:
    """Linear layers of ``sizes`` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def check_graph(graph: Any, name: str = "graph") -> None:
    """Raise :class:`DataError` (one line) unless ``graph`` has finite ``x [n, 2]``, ``pos [n, 2]``, edges and slots."""
    for key in ("x", "pos", "edge_index", "slot"):
        if not isinstance(getattr(graph, key, None), Tensor):
            raise DataError(f"{name} has no tensor {key!r} (expected a batch of the maze-graphs/geometric-graphs data)")
    x, pos, ei, slot = graph.x, graph.pos, graph.edge_index, graph.slot
    if x.dim() != 2 or x.shape[1] != 2:
        raise DataError(f"{name}.x must be [nodes, 2] (goal, obstacle); got {list(x.shape)}")
    if pos.shape != (x.shape[0], 2):
        raise DataError(f"{name}.pos must be [nodes, 2] = [{x.shape[0]}, 2]; got {list(pos.shape)}")
    if ei.dim() != 2 or ei.shape[0] != 2 or slot.shape != (ei.shape[1],):
        raise DataError(f"{name}.edge_index must be [2, E] and slot [E]; got {list(ei.shape)} and {list(slot.shape)}")
    if not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(pos).all())):
        raise DataError(f"{name}.x or {name}.pos contain NaN or infinite values")


def check_slots(slot: Tensor, max_degree: int) -> None:
    """One-line :class:`DataError` when the graph has more neighbour slots than the model."""
    if slot.numel() and int(slot.max()) >= max_degree:
        raise DataError(
            f"the graph has neighbour slot {int(slot.max())} but model.max_degree={max_degree}; "
            "set model.max_degree to the data's degree"
        )


def slot_logits(edge_logits: Tensor, src: Tensor, slot: Tensor, num_nodes: int, max_degree: int) -> Tensor:
    """``[n, D]`` logits: each edge's logit at ``(src, slot)``, :data:`EMPTY_LOGIT` in empty slots."""
    check_slots(slot, max_degree)
    out = edge_logits.new_full((num_nodes, max_degree), EMPTY_LOGIT)
    return out.index_put((src, slot), edge_logits)


def edge_softmax(edge_logits: Tensor, src: Tensor, num_nodes: int) -> Tensor:
    """Softmax of the edge logits over each node's out-edges."""
    from torch_geometric.utils import softmax

    return softmax(edge_logits, src, num_nodes=num_nodes)


def example_graphs(batch_size: int = 2, size: int = 7, max_degree: int = 4) -> Any:
    """A tiny valid batch: ``batch_size`` empty rooms with a border of obstacles, goal at the centre.

    Slot ``s`` is the ``s``-th move of the 8-connected grid (4-connected first), up to ``max_degree``.
    """
    from torch_geometric.data import Batch, Data

    from mlcore_diffplan_vins.actions import ACTION_OFFSETS

    offsets = list(ACTION_OFFSETS[4]) + [o for o in ACTION_OFFSETS[8] if o not in ACTION_OFFSETS[4]]
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    r, c = rows.ravel(), cols.ravel()
    src_l, dst_l, slot_l = [], [], []
    for s, (dr, dc) in enumerate(offsets[:max_degree]):
        ok = (r + dr >= 0) & (r + dr < size) & (c + dc >= 0) & (c + dc < size)
        src_l.append(np.flatnonzero(ok))
        dst_l.append((r + dr)[ok] * size + (c + dc)[ok])
        slot_l.append(np.full(int(ok.sum()), s))
    obstacle = ((r == 0) | (r == size - 1) | (c == 0) | (c == size - 1)).astype(np.float32)
    goal = np.zeros(size * size, dtype=np.float32)
    goal[(size // 2) * size + size // 2] = 1.0
    data = Data(
        x=torch.from_numpy(np.stack([goal, obstacle], axis=1)),
        pos=torch.from_numpy(np.stack([c, size - 1 - r], axis=1).astype(np.float32)),
        edge_index=torch.from_numpy(np.stack([np.concatenate(src_l), np.concatenate(dst_l)]).astype(np.int64)),
        slot=torch.from_numpy(np.concatenate(slot_l).astype(np.int64)),
        num_nodes=size * size,
    )
    return Batch.from_data_list([data.clone() for _ in range(batch_size)])


class GraphPlanner(nn.Module):
    """Base class of the graph planners: config, checks, the dense slot output and the direction head."""

    config: Any

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.max_degree = int(config.max_degree)
        self.cont_action = bool(getattr(config, "cont_action", False))
        self.equiv_policy = bool(getattr(config, "equiv_policy", False))
        self.last_values: Tensor | None = None

    def example_input(self, batch_size: int = 2) -> Any:
        """A batch for the conformance kit and quick checks (see :func:`example_graphs`)."""
        return example_graphs(batch_size, max_degree=self.max_degree)

    def output(self, edge_logits: Tensor, graph: Any, free_head: nn.Module | None = None, feats: Any = None) -> Tensor:
        """The planner's output from its edge logits: ``[n, D]`` slot logits, or ``[n, 2]`` directions.

        With ``cont_action`` the direction is either ``sum_j softmax(logits)_ij * unit(pos_j - pos_i)``
        (``equiv_policy``: it turns with the graph) or ``free_head(feats)`` (an MLP, no symmetry).
        """
        src, dst = graph.edge_index
        n = graph.x.shape[0]
        if not self.cont_action:
            return slot_logits(edge_logits, src, graph.slot, n, self.max_degree)
        if self.equiv_policy or free_head is None:
            rel = graph.pos[dst] - graph.pos[src]
            unit = rel / rel.norm(dim=1, keepdim=True).clamp_min(1e-6)
            w = edge_softmax(edge_logits, src, n)
            out = torch.zeros(n, 2, dtype=unit.dtype, device=unit.device)
            return out.index_add(0, src, w[:, None] * unit)
        return free_head(feats)  # type: ignore[no-any-return]
