"""Reference policies beside the learned graph planners: greedy by Euclidean distance, and optimal.

The greedy baseline sees obstacles only one step ahead (it moves to the free neighbour nearest
the goal as the crow flies), so it fails behind dead ends; the optimal planner follows the
Dijkstra labels, so its %Opt is 100 % by construction and checks the rollout code itself.
"""

from __future__ import annotations

import numpy as np

from mlcore_diffplan_vins.graphs.build import GraphSet

__all__ = ["greedy_choices", "optimal_choices"]


def greedy_choices(graphs: GraphSet) -> np.ndarray:
    """``[N]`` the free neighbour closest (Euclidean) to the goal (``-1`` if no neighbour is free; ties: first slot)."""
    gnbr = graphs.global_nbr()
    goal_pos = graphs.pos[graphs.global_goals()[graphs.graph_of]]
    d = np.linalg.norm(graphs.pos[np.maximum(gnbr, 0)] - goal_pos[:, None, :], axis=2)
    ok = (gnbr >= 0) & (graphs.obstacle[np.maximum(gnbr, 0)] == 0)
    d = np.where(ok, d, np.inf)
    slot = d.argmin(axis=1)
    return np.where(ok.any(axis=1), gnbr[np.arange(len(slot)), slot], -1)


def optimal_choices(graphs: GraphSet) -> np.ndarray:
    """``[N]`` the first optimal neighbour of every node (``-1`` where none): the optimal planner."""
    slot = graphs.optimal.argmax(axis=1)
    chosen = graphs.global_nbr()[np.arange(len(slot)), slot]
    return np.where(graphs.optimal.any(axis=1), chosen, -1)
