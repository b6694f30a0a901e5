"""The D4 symmetry error of a graph planner, measured on real graphs.

D4 acts on the node coordinates (rotations by 90° and reflections); the graph itself (nodes,
edges, slots) stays the same. A D4-symmetric planner gives the same slot logits and values
(*invariance*) and turns its predicted directions with the coordinates (*equivariance*):
``f(g · pos) = f(pos)`` for logits, ``f(g · pos) = g f(pos)`` for directions.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

__all__ = ["D4_MATRICES", "d4_symmetry_error"]

#: The 8 elements of D4 as 2x2 integer matrices acting on ``(x, y)``: 4 rotations, each with and without a reflection.
D4_MATRICES: list[torch.Tensor] = [
    torch.tensor([[c, -s], [s, c]], dtype=torch.float32) @ torch.diag(torch.tensor([1.0, float(f)]))
    for (c, s), f in itertools.product(((1, 0), (0, 1), (-1, 0), (0, -1)), (1, -1))
]


def d4_symmetry_error(model: nn.Module, batch: Any, *, continuous: bool) -> float:
    """Largest deviation over D4 of the outputs and values from exact invariance/equivariance (eval mode)."""
    was_training = model.training
    model.eval()
    worst = 0.0
    try:
        with torch.no_grad():
            base = model(batch)
            base_values = getattr(model, "last_values", None)
            for g in D4_MATRICES[1:]:
                moved = batch.clone()
                moved.pos = batch.pos @ g.T.to(batch.pos)
                out = model(moved)
                expect = base @ g.T.to(base) if continuous else base
                worst = max(worst, float((out - expect).abs().max()))
                values = getattr(model, "last_values", None)
                if isinstance(values, torch.Tensor) and isinstance(base_values, torch.Tensor):
                    worst = max(worst, float((values - base_values).abs().max()))
    finally:
        model.train(was_training)
    return worst
