"""Maze generation and exact labels, vectorised over many mazes with numpy (no torch import).

The generator follows the reference planning literature (VIN / GPPN / symmetric planning):

1. carve a perfect maze by randomised depth-first search on the cells at odd coordinates, one
   DFS per maze but all mazes stepped together (every maze needs exactly ``2 C^2 - 1`` push/pop
   steps for ``C x C`` cells, so the loop is over steps, not mazes);
2. open every interior wall cell with a per-maze probability ``d ~ U(0, 1)``;
3. draw the goal uniformly over the free cells;
4. label: Dijkstra distances to the goal (:func:`scipy.sparse.csgraph.dijkstra` on one graph holding
   every maze, all goals as sources) and the set of optimal actions at every free cell.

Moves: an action into a wall leaves the agent in place; with 8 actions a diagonal step costs
``sqrt(2)`` and needs only its target cell free (no corner check), as in the reference mechanism.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from mlcore_diffplan_vins.actions import ACTION_OFFSETS

__all__ = [
    "MazeSet",
    "action_costs",
    "carve_mazes",
    "generate_mazes",
    "goal_distances",
    "open_walls",
    "optimal_action_sets",
]

#: Two costs are equal when they differ by less than this (diagonals are irrational).
COST_TOL = 1e-4


def action_costs(num_actions: int) -> np.ndarray:
    """Cost of each action: 1 for axis moves, ``sqrt(2)`` for diagonals."""
    return np.array([math.hypot(dr, dc) for dr, dc in ACTION_OFFSETS[num_actions]], dtype=np.float64)


def carve_mazes(num: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``num`` perfect mazes ``[num, size, size]`` (uint8, 1 = wall) by randomised depth-first search."""
    if size < 5:
        raise ValueError(f"size={size} is too small (at least 5)")
    c = (size - 1) // 2  # cells per side, at grid coordinates 1, 3, ..., 2c - 1
    walls = np.ones((num, size, size), dtype=np.uint8)
    odd = 2 * np.arange(c) + 1
    walls[:, odd[:, None], odd[None, :]] = 0
    cells = np.arange(c * c)
    r, col = cells // c, cells % c
    neighbours = np.full((c * c, 4), -1, dtype=np.int64)
    for d, (dr, dc) in enumerate(ACTION_OFFSETS[4]):
        ok = (r + dr >= 0) & (r + dr < c) & (col + dc >= 0) & (col + dc < c)
        neighbours[ok, d] = (r + dr)[ok] * c + (col + dc)[ok]
    rows = np.arange(num)
    visited = np.zeros((num, c * c), dtype=bool)
    stack = np.zeros((num, c * c), dtype=np.int64)
    start = rng.integers(c * c, size=num)
    stack[:, 0] = start
    visited[rows, start] = True
    depth = np.ones(num, dtype=np.int64)
    for _ in range(2 * c * c - 1):  # c*c - 1 pushes and c*c pops per maze, whatever the random choices
        top = stack[rows, depth - 1]
        cand = neighbours[top]
        ok = (cand >= 0) & ~visited[rows[:, None], np.maximum(cand, 0)]
        score = np.where(ok, rng.random((num, 4)), -1.0)
        nxt = cand[rows, score.argmax(axis=1)]
        push = ok.any(axis=1)
        idx = rows[push]
        n_push, t_push = nxt[push], top[push]
        visited[idx, n_push] = True
        stack[idx, depth[push]] = n_push
        walls[idx, t_push // c + n_push // c + 1, t_push % c + n_push % c + 1] = 0  # the wall between them
        depth += np.where(push, 1, -1)
    return walls


def open_walls(walls: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Open each interior wall cell with a per-maze probability ``d ~ U(0, 1)``; returns ``(walls, d)``."""
    num = walls.shape[0]
    d = np.asarray(rng.random(num))
    inner = walls[:, 1:-1, 1:-1]
    opened = rng.random(inner.shape) < d[:, None, None]
    walls = walls.copy()
    walls[:, 1:-1, 1:-1] = np.where(opened, 0, inner)
    return walls, d


def _sample_goals(walls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One goal ``(row, col)`` per maze, uniform over its free cells."""
    num, size, _ = walls.shape
    score = np.where(walls.reshape(num, -1) == 0, rng.random((num, size * size)), -1.0)
    flat = score.argmax(axis=1)
    return np.stack([flat // size, flat % size], axis=1).astype(np.int64)


def goal_distances(walls: np.ndarray, goals: np.ndarray, num_actions: int = 4, chunk: int = 256) -> np.ndarray:
    """Exact shortest-path cost from every cell to its maze's goal (``inf``: wall or unreachable).

    One undirected graph holds ``chunk`` mazes (disconnected components), and one multi-source
    Dijkstra run from all their goals gives each cell its own goal's distance (chunks of 256
    ran 2x faster than one graph for 10K mazes).
    """
    if walls.shape[0] > chunk:
        return np.concatenate(
            [
                goal_distances(walls[i : i + chunk], goals[i : i + chunk], num_actions, chunk)
                for i in range(0, len(walls), chunk)
            ]
        )
    num, size, _ = walls.shape
    free = walls == 0
    index = np.arange(num * size * size).reshape(num, size, size)
    src, dst, wgt = [], [], []
    for (dr, dc), cost in zip(ACTION_OFFSETS[num_actions], action_costs(num_actions)):
        if (dr, dc) <= (0, 0):  # each undirected edge once: keep the offsets that point "forward"
            continue
        r0, r1 = max(0, -dr), size - max(0, dr)
        c0, c1 = max(0, -dc), size - max(0, dc)
        a = free[:, r0:r1, c0:c1] & free[:, r0 + dr : r1 + dr, c0 + dc : c1 + dc]
        src.append(index[:, r0:r1, c0:c1][a])
        dst.append(index[:, r0 + dr : r1 + dr, c0 + dc : c1 + dc][a])
        wgt.append(np.full(int(a.sum()), cost))
    n = num * size * size
    graph = coo_matrix((np.concatenate(wgt), (np.concatenate(src), np.concatenate(dst))), shape=(n, n)).tocsr()
    sources = index[np.arange(num), goals[:, 0], goals[:, 1]]
    dist = dijkstra(graph, directed=False, indices=sources, min_only=True)
    return np.asarray(dist, dtype=np.float64).reshape(num, size, size)


def optimal_action_sets(walls: np.ndarray, distances: np.ndarray, num_actions: int = 4) -> np.ndarray:
    """``[num, A, size, size]`` uint8: 1 where the action starts a shortest path to the goal.

    Empty at walls, at the goal and at cells that cannot reach it.
    """
    num, size, _ = walls.shape
    pad = np.pad(distances, ((0, 0), (1, 1), (1, 1)), constant_values=np.inf)
    out = np.zeros((num, num_actions, size, size), dtype=np.uint8)
    here = distances
    finite = np.isfinite(here) & (here > 0)
    for a, ((dr, dc), cost) in enumerate(zip(ACTION_OFFSETS[num_actions], action_costs(num_actions))):
        there = pad[:, 1 + dr : 1 + dr + size, 1 + dc : 1 + dc + size]
        with np.errstate(invalid="ignore"):
            out[:, a] = finite & np.isfinite(there) & (np.abs(cost + there - here) < COST_TOL)
    return out


@attrs.define
class MazeSet:
    """Mazes with their labels (all numpy arrays, first axis = maze).

    Attributes:
        walls: ``[N, M, M]`` uint8, 1 = wall.
        goals: ``[N, 2]`` int64 ``(row, col)``.
        distances: ``[N, M, M]`` float64 shortest-path cost to the goal (``inf``: wall/unreachable).
        optimal_actions: ``[N, A, M, M]`` uint8 optimal action sets.
        open_prob: ``[N]`` the per-maze wall-opening probability ``d``.
    """

    walls: np.ndarray
    goals: np.ndarray
    distances: np.ndarray
    optimal_actions: np.ndarray
    open_prob: np.ndarray

    def __len__(self) -> int:
        return int(self.walls.shape[0])

    @property
    def num_actions(self) -> int:
        """A, the number of actions."""
        return int(self.optimal_actions.shape[1])

    @property
    def size(self) -> int:
        """M, the side of the maps."""
        return int(self.walls.shape[1])

    def subset(self, index: Any) -> MazeSet:
        """The mazes at ``index`` (an index array or mask)."""
        return MazeSet(*(getattr(self, f.name)[index] for f in attrs.fields(MazeSet)))

    def goal_maps(self) -> np.ndarray:
        """``[N, M, M]`` one-hot goal maps."""
        out = np.zeros(self.walls.shape, dtype=np.uint8)
        out[np.arange(len(self)), self.goals[:, 0], self.goals[:, 1]] = 1
        return out


def _keys(walls: np.ndarray, goals: np.ndarray) -> list[bytes]:
    packed = np.packbits(walls.reshape(walls.shape[0], -1), axis=1)
    return [p.tobytes() + g.tobytes() for p, g in zip(packed, goals.astype(np.int32))]


def generate_mazes(
    num: int, size: int = 15, num_actions: int = 4, seed: int = 0, min_reachable: float = 0.5
) -> MazeSet:
    """``num`` distinct labelled mazes (no two share walls and goal), deterministic in ``seed``.

    Mazes where fewer than ``min_reachable`` of the free cells can reach the goal are rejected
    and replaced, as are duplicates; generation proceeds in rounds until ``num`` are kept.
    """
    if num_actions not in ACTION_OFFSETS:
        raise ValueError(f"num_actions={num_actions} is not allowed (allowed: 4, 8)")
    rng = np.random.default_rng(seed)
    seen: set[bytes] = set()
    parts: list[MazeSet] = []
    kept = 0
    for _ in range(1000):
        if kept >= num:
            break
        batch = max(16, int((num - kept) * 1.1))
        walls, d = open_walls(carve_mazes(batch, size, rng), rng)
        goals = _sample_goals(walls, rng)
        dist = goal_distances(walls, goals, num_actions)
        free = (walls == 0).sum(axis=(1, 2))
        reach = np.isfinite(dist).sum(axis=(1, 2))
        good = reach >= min_reachable * free
        keep = np.zeros(batch, dtype=bool)
        for i, key in enumerate(_keys(walls, goals)):
            if good[i] and key not in seen and kept + int(keep.sum()) < num:
                seen.add(key)
                keep[i] = True
        kept += int(keep.sum())
        walls, goals, dist, d = walls[keep], goals[keep], dist[keep], d[keep]
        parts.append(MazeSet(walls, goals, dist, optimal_action_sets(walls, dist, num_actions), d))
    if kept < num:
        raise ValueError(f"could only generate {kept} distinct {size}x{size} mazes of {num} requested")
    return MazeSet(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in attrs.fields(MazeSet)))
