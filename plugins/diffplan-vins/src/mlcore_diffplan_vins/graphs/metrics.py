"""Rollout metrics of a graph policy from every reachable start node (numpy; vectorised over all graphs).

A policy is a *choice* per node: the global index of the neighbour it moves to (``-1``: it does
not move). A move to an obstacle leaves the agent in place, as on the grid. From every free node
that can reach its goal (the goal excluded) the policy is followed until the goal or for as many
steps as the largest graph has nodes (a deterministic policy that has not arrived by then never will).

- ``succ``: share of start nodes whose rollout reaches the goal (%Succ);
- ``opt``: share reaching it at the optimal cost (%Opt; cost = Euclidean length of the edges);
- ``action_accuracy``: share whose chosen neighbour starts a shortest path;
- ``angular_error_deg`` (:func:`angular_errors`, continuous policies): the angle between the
  predicted direction and the closest optimal move.

:func:`choices_from_logits` takes the argmax slot, :func:`choices_from_directions` *snaps* a
direction to the neighbour best aligned with it (largest cosine).
"""

from __future__ import annotations

import numpy as np

from mlcore_diffplan_vins.graphs.build import GraphSet
from mlcore_diffplan_vins.mazes import COST_TOL

__all__ = [
    "GraphRollout",
    "angular_errors",
    "choices_from_directions",
    "choices_from_logits",
    "graph_rollout",
]


class GraphRollout(dict):  # type: ignore[type-arg]
    """``{"opt", "succ", "action_accuracy", "num_starts"}`` plus per-node arrays as attributes."""

    reached: np.ndarray
    optimal: np.ndarray
    starts: np.ndarray


def choices_from_logits(graphs: GraphSet, logits: np.ndarray) -> np.ndarray:
    """``[N]`` global neighbour index of each node's highest-scoring slot (``-1`` when it is empty)."""
    if logits.shape != graphs.nbr.shape:
        raise ValueError(f"logits must be {list(graphs.nbr.shape)}; got {list(logits.shape)}")
    slot = logits.argmax(axis=1)
    return graphs.global_nbr()[np.arange(len(slot)), slot]


def _unit_moves(graphs: GraphSet) -> tuple[np.ndarray, np.ndarray]:
    """``([N, D, 2] unit vector of every slot's move, [N, D] global neighbour)``."""
    gnbr = graphs.global_nbr()
    vec = graphs.pos[np.maximum(gnbr, 0)] - graphs.pos[:, None, :]
    norm = np.linalg.norm(vec, axis=2, keepdims=True)
    return np.where(norm > 0, vec / np.maximum(norm, 1e-12), 0.0), gnbr


def choices_from_directions(graphs: GraphSet, directions: np.ndarray) -> np.ndarray:
    """``[N]`` the neighbour whose move is best aligned with each node's direction (largest cosine)."""
    if directions.shape != (len(graphs.pos), 2):
        raise ValueError(f"directions must be [{len(graphs.pos)}, 2]; got {list(directions.shape)}")
    unit, gnbr = _unit_moves(graphs)
    cos = np.einsum("nds,ns->nd", unit, directions)
    cos = np.where(gnbr >= 0, cos, -np.inf)
    slot = cos.argmax(axis=1)
    return gnbr[np.arange(len(slot)), slot]


def angular_errors(graphs: GraphSet, directions: np.ndarray) -> np.ndarray:
    """``[N]`` degrees between each node's direction and its closest optimal move (NaN at unlabelled nodes).

    A zero direction counts as 90° from every move.
    """
    unit, _ = _unit_moves(graphs)
    norm = np.linalg.norm(directions, axis=1, keepdims=True)
    d = np.where(norm > 0, directions / np.maximum(norm, 1e-12), 0.0)
    cos = np.einsum("nds,ns->nd", unit, d)
    best = np.where(graphs.optimal > 0, cos, -np.inf).max(axis=1)
    labelled = graphs.optimal.any(axis=1)
    with np.errstate(invalid="ignore"):
        return np.where(labelled, np.degrees(np.arccos(np.clip(best, -1.0, 1.0))), np.nan)


def graph_rollout(graphs: GraphSet, choices: np.ndarray) -> GraphRollout:
    """%Opt, %Succ and action accuracy of the policy ``choices [N]`` (global neighbour index or -1)."""
    n = len(graphs.pos)
    if choices.shape != (n,):
        raise ValueError(f"choices must be [{n}]; got {list(choices.shape)}")
    gnbr = graphs.global_nbr()
    if ((choices < -1) | (choices >= n)).any():
        raise ValueError("choices hold a node index out of range")
    here = np.arange(n)
    moved = (choices >= 0) & (graphs.obstacle[np.maximum(choices, 0)] == 0)
    nxt = np.where(moved, choices, here)
    step = np.where(choices >= 0, np.linalg.norm(graphs.pos[np.maximum(choices, 0)] - graphs.pos, axis=1), 0.0)
    goal = graphs.global_goals()[graphs.graph_of]
    dist = graphs.distances
    starts = np.isfinite(dist) & (dist > 0)
    pos = here.copy()
    travelled = np.zeros(n)
    at_goal = pos == goal
    for _ in range(int(np.diff(graphs.node_ptr).max()) if n else 0):
        if at_goal[starts].all():
            break
        travelled = travelled + np.where(at_goal, 0.0, step[pos])
        pos = np.where(at_goal, pos, nxt[pos])
        at_goal = pos == goal
    reached = at_goal & starts
    optimal = reached & (travelled <= dist + COST_TOL)
    chose_optimal = ((gnbr == choices[:, None]) & (graphs.optimal > 0)).any(axis=1)
    n_starts = max(int(starts.sum()), 1)
    out = GraphRollout(
        opt=float(optimal.sum() / n_starts),
        succ=float(reached.sum() / n_starts),
        action_accuracy=float((chose_optimal & starts).sum() / n_starts),
        num_starts=float(starts.sum()),
    )
    out.reached, out.optimal, out.starts = reached, optimal, starts
    return out
