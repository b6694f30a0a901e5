"""A planner-free baseline policy: step to the free neighbour closest (Euclidean) to the goal.

It sees walls only one step ahead, so it succeeds in open rooms and fails behind dead ends; every
comparison table lists it beside the learned models.
"""

from __future__ import annotations

import numpy as np

from mlcore_diffplan_vins.actions import ACTION_OFFSETS

__all__ = ["greedy_actions"]


def greedy_actions(walls: np.ndarray, goals: np.ndarray, num_actions: int = 4) -> np.ndarray:
    """``[N, M, M]`` actions towards the free neighbour nearest the goal (walls excluded; ties: lowest index)."""
    num, size, _ = walls.shape
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    pad = np.pad(walls, ((0, 0), (1, 1), (1, 1)), constant_values=1)
    scores = np.empty((num, num_actions, size, size))
    gr, gc = goals[:, 0, None, None], goals[:, 1, None, None]
    for a, (dr, dc) in enumerate(ACTION_OFFSETS[num_actions]):
        blocked = pad[:, 1 + dr : 1 + dr + size, 1 + dc : 1 + dc + size] == 1
        d = np.hypot(rows[None] + dr - gr, cols[None] + dc - gc)
        scores[:, a] = np.where(blocked, np.inf, d)
    return scores.argmin(axis=1)
