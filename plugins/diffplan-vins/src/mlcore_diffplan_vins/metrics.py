"""Rollout metrics of a grid policy from every reachable start cell (numpy; vectorised over cells and mazes).

For each maze and each free cell that can reach the goal (the goal itself excluded), the greedy
policy (argmax of the logits) is followed; a move into a wall or off the map leaves the agent in
place (and costs the step). A deterministic policy that has not reached the goal after as many
steps as the map has cells never will, so rollouts stop there.

- ``succ``: share of start cells whose rollout reaches the goal (%Succ);
- ``opt``: share whose rollout reaches it with the optimal cost (%Opt);
- ``action_accuracy``: share of start cells whose chosen action is in the optimal set.
"""

from __future__ import annotations

import numpy as np

from mlcore_diffplan_vins.actions import ACTION_OFFSETS
from mlcore_diffplan_vins.mazes import COST_TOL, MazeSet, action_costs

__all__ = ["RolloutResult", "rollout_metrics", "rollout_paths"]


class RolloutResult(dict):  # type: ignore[type-arg]
    """``{"opt", "succ", "action_accuracy", "num_starts"}`` plus per-cell arrays as attributes."""

    reached: np.ndarray
    optimal: np.ndarray
    starts: np.ndarray


def _successors(walls: np.ndarray, actions: np.ndarray, num_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat index of the next cell and the step cost, for every cell of every maze."""
    num, size, _ = walls.shape
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    offsets = np.array(ACTION_OFFSETS[num_actions])
    dr, dc = offsets[actions, 0], offsets[actions, 1]
    nr, nc = rows[None] + dr, cols[None] + dc
    inside = (nr >= 0) & (nr < size) & (nc >= 0) & (nc < size)
    nr_c, nc_c = np.clip(nr, 0, size - 1), np.clip(nc, 0, size - 1)
    free = walls[np.arange(num)[:, None, None], nr_c, nc_c] == 0
    ok = inside & free
    nxt = np.where(ok, nr_c * size + nc_c, rows[None] * size + cols[None])
    return nxt.reshape(num, -1), action_costs(num_actions)[actions].reshape(num, -1)


def rollout_metrics(mazes: MazeSet, actions: np.ndarray) -> RolloutResult:
    """%Opt, %Succ and action accuracy of the policy ``actions [N, M, M]`` (action index per cell)."""
    num, size, _ = mazes.walls.shape
    num_actions = mazes.num_actions
    if actions.shape != mazes.walls.shape:
        raise ValueError(f"actions must be {list(mazes.walls.shape)}; got {list(actions.shape)}")
    nxt, cost = _successors(mazes.walls, actions, num_actions)
    dist = mazes.distances.reshape(num, -1)
    starts = np.isfinite(dist) & (dist > 0)
    goal_flat = mazes.goals[:, 0] * size + mazes.goals[:, 1]
    rows = np.arange(num)[:, None]
    pos = np.broadcast_to(np.arange(size * size), (num, size * size)).copy()
    travelled = np.zeros((num, size * size))
    at_goal = pos == goal_flat[:, None]
    for _ in range(size * size):
        if at_goal[starts].all():
            break
        step_cost = cost[rows, pos]
        travelled = travelled + np.where(at_goal, 0.0, step_cost)
        pos = np.where(at_goal, pos, nxt[rows, pos])
        at_goal = pos == goal_flat[:, None]
    reached = at_goal & starts
    optimal = reached & (travelled <= dist + COST_TOL)
    chosen = np.take_along_axis(
        mazes.optimal_actions.reshape(num, num_actions, -1), actions.reshape(num, 1, -1), axis=1
    )[:, 0]
    n_starts = max(int(starts.sum()), 1)
    out = RolloutResult(
        opt=float(optimal.sum() / n_starts),
        succ=float(reached.sum() / n_starts),
        action_accuracy=float((chosen.astype(bool) & starts).sum() / n_starts),
        num_starts=float(starts.sum()),
    )
    out.reached = reached.reshape(num, size, size)
    out.optimal = optimal.reshape(num, size, size)
    out.starts = starts.reshape(num, size, size)
    return out


def rollout_paths(
    walls: np.ndarray, actions: np.ndarray, start: tuple[int, int], goal: tuple[int, int], num_actions: int
) -> list[tuple[int, int]]:
    """The cells visited from ``start`` on one maze (for plots), up to the goal or ``M*M`` steps."""
    size = walls.shape[0]
    nxt, _ = _successors(walls[None], actions[None], num_actions)
    pos = start[0] * size + start[1]
    goal_flat = goal[0] * size + goal[1]
    path = [start]
    for _ in range(size * size):
        if pos == goal_flat:
            break
        new = int(nxt[0, pos])
        if new == pos:
            break
        pos = new
        path.append((pos // size, pos % size))
    return path
