"""Planning graphs and their exact labels (numpy + scipy; no torch import here).

A :class:`GraphSet` holds many graphs in concatenated arrays (``node_ptr`` delimits each
graph's nodes). Node ``i`` has up to ``D`` neighbour *slots* ``nbr[i, s]`` (local node index, ``-1``
for none): the moves it can try. Moving to an obstacle node leaves the agent in place, as a move
into a wall does on the grid. Labels come from one multi-source Dijkstra
(:func:`scipy.sparse.csgraph.dijkstra`) over every graph at once on the *reversed* move graph,
so ``distances[i]`` is the cost of the shortest path from ``i`` to its graph's goal; a slot is
optimal when its edge cost plus the neighbour's distance equals the node's own.

Two sources: :func:`maze_graphs` (part 1's mazes, every cell a node, slots = grid actions) and
:func:`geometric_graphs` (random points, k-nearest-neighbour slots, disc obstacles).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from mlcore_diffplan_vins.actions import ACTION_OFFSETS
from mlcore_diffplan_vins.mazes import COST_TOL, MazeSet

__all__ = ["GraphSet", "geometric_graphs", "label_graphs", "maze_graphs", "slot_costs"]


@attrs.define
class GraphSet:
    """Graphs with their labels in concatenated numpy arrays (``G`` graphs, ``N`` nodes in all, ``D`` slots).

    Attributes:
        node_ptr: ``[G + 1]`` int64; graph ``g`` owns nodes ``node_ptr[g]:node_ptr[g + 1]``.
        pos: ``[N, 2]`` float64 node coordinates.
        obstacle: ``[N]`` uint8, 1 = obstacle (never entered; a move there leaves the agent in place).
        goals: ``[G]`` int64 goal node of each graph (local index).
        nbr: ``[N, D]`` int64 neighbour slots (local index, ``-1`` = no neighbour).
        distances: ``[N]`` float64 shortest-path cost to the goal (``inf``: obstacle or unreachable).
        optimal: ``[N, D]`` uint8, 1 where the slot starts a shortest path (empty at the goal,
            obstacles and nodes that cannot reach the goal).
    """

    node_ptr: np.ndarray
    pos: np.ndarray
    obstacle: np.ndarray
    goals: np.ndarray
    nbr: np.ndarray
    distances: np.ndarray
    optimal: np.ndarray

    def __len__(self) -> int:
        return int(len(self.node_ptr) - 1)

    @property
    def num_slots(self) -> int:
        """D, the neighbour slots per node."""
        return int(self.nbr.shape[1])

    @property
    def graph_of(self) -> np.ndarray:
        """``[N]`` the graph index of every node."""
        return np.repeat(np.arange(len(self)), np.diff(self.node_ptr))

    def global_nbr(self) -> np.ndarray:
        """``[N, D]`` neighbour slots as global node indices (``-1`` = none)."""
        offset = self.node_ptr[:-1][self.graph_of][:, None]
        return np.where(self.nbr >= 0, self.nbr + offset, -1)

    def global_goals(self) -> np.ndarray:
        """``[G]`` the goal of every graph as a global node index."""
        return self.node_ptr[:-1] + self.goals

    def directions(self) -> np.ndarray:
        """``[N, 2]`` float32 unit vector toward the first optimal neighbour (zero where none is optimal)."""
        has = np.asarray(self.optimal.any(axis=1))
        first = self.optimal.argmax(axis=1)
        nb = self.global_nbr()[np.arange(len(self.pos)), first]
        vec = np.where(has[:, None], self.pos[np.maximum(nb, 0)] - self.pos, 0.0)
        norm = np.linalg.norm(vec, axis=1, keepdims=True)
        return np.where(norm > 0, vec / np.maximum(norm, 1e-12), 0.0).astype(np.float32)

    def subset(self, index: Any) -> GraphSet:
        """The graphs at ``index`` (an index array or boolean mask), renumbered."""
        idx = np.arange(len(self))[index]
        sizes = np.diff(self.node_ptr)[idx]
        nodes = (
            np.concatenate([np.arange(self.node_ptr[g], self.node_ptr[g + 1]) for g in idx])
            if len(idx)
            else np.zeros(0, dtype=np.int64)
        )
        return GraphSet(
            node_ptr=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            pos=self.pos[nodes],
            obstacle=self.obstacle[nodes],
            goals=self.goals[idx],
            nbr=self.nbr[nodes],
            distances=self.distances[nodes],
            optimal=self.optimal[nodes],
        )

    @staticmethod
    def concat(parts: list[GraphSet]) -> GraphSet:
        """One set holding the graphs of ``parts`` in order."""
        sizes = np.concatenate([np.diff(p.node_ptr) for p in parts])
        return GraphSet(
            node_ptr=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in parts])
                for f in attrs.fields(GraphSet)
                if f.name != "node_ptr"
            },
        )


def slot_costs(pos: np.ndarray, global_nbr: np.ndarray) -> np.ndarray:
    """``[N, D]`` Euclidean length of each slot's edge (``inf`` where the slot is empty)."""
    diff = pos[np.maximum(global_nbr, 0)] - pos[:, None, :]
    return np.where(global_nbr >= 0, np.linalg.norm(diff, axis=2), np.inf)


def label_graphs(
    node_ptr: np.ndarray, pos: np.ndarray, obstacle: np.ndarray, goals: np.ndarray, nbr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(distances [N], optimal [N, D])``: exact shortest-path labels of every graph (see the module docstring)."""
    n = len(pos)
    sizes = np.diff(node_ptr)
    offset = np.repeat(node_ptr[:-1], sizes)[:, None]
    gnbr = np.where(nbr >= 0, nbr + offset, -1)
    cost = slot_costs(pos, gnbr)
    free = obstacle == 0
    src = np.repeat(np.arange(n), nbr.shape[1]).reshape(n, -1)
    ok = (gnbr >= 0) & free[:, None] & free[np.maximum(gnbr, 0)]
    # reversed edges (neighbour -> node), so Dijkstra from each goal gives the cost *to* the goal
    graph = coo_matrix((cost[ok], (gnbr[ok], src[ok])), shape=(n, n)).tocsr()
    dist = np.asarray(dijkstra(graph, directed=True, indices=node_ptr[:-1] + goals, min_only=True), dtype=np.float64)
    dist[~free] = np.inf
    there = dist[np.maximum(gnbr, 0)]
    here = dist[:, None]
    with np.errstate(invalid="ignore"):
        optimal = ok & np.isfinite(here) & (here > 0) & np.isfinite(there) & (np.abs(cost + there - here) < COST_TOL)
    return dist, optimal.astype(np.uint8)


def maze_graphs(mazes: MazeSet) -> GraphSet:
    """Part 1's mazes as graphs: every cell a node at ``(column, M - 1 - row)``, slots = the grid actions.

    The labels are the mazes' own (Dijkstra on the grid), moved to the node layout.
    """
    num, size, _ = mazes.walls.shape
    a = mazes.num_actions
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    pos1 = np.stack([cols.ravel(), size - 1 - rows.ravel()], axis=1).astype(np.float64)
    nbr1 = np.full((size * size, a), -1, dtype=np.int64)
    for s, (dr, dc) in enumerate(ACTION_OFFSETS[a]):
        r, c = rows.ravel() + dr, cols.ravel() + dc
        inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
        nbr1[inside, s] = r[inside] * size + c[inside]
    return GraphSet(
        node_ptr=np.arange(num + 1, dtype=np.int64) * size * size,
        pos=np.tile(pos1, (num, 1)),
        obstacle=mazes.walls.reshape(-1).astype(np.uint8),
        goals=(mazes.goals[:, 0] * size + mazes.goals[:, 1]).astype(np.int64),
        nbr=np.tile(nbr1, (num, 1)),
        distances=mazes.distances.reshape(-1).astype(np.float64),
        optimal=mazes.optimal_actions.transpose(0, 2, 3, 1).reshape(-1, a).astype(np.uint8),
    )


def _one_geometric(
    rng: np.random.Generator, nodes: int, degree: int, obstacles: int, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(pos, obstacle, nbr, goal)`` of one random geometric graph."""
    from scipy.spatial import cKDTree

    side = float(np.sqrt(nodes))
    pos = rng.random((nodes, 2)) * side
    centres = rng.random((obstacles, 2)) * side
    if obstacles:
        inside = (np.linalg.norm(pos[:, None, :] - centres[None], axis=2) < radius).any(axis=1)
    else:
        inside = np.zeros(nodes, dtype=bool)
    k = min(degree, nodes - 1)
    _, idx = cKDTree(pos).query(pos, k=k + 1)
    nbr = np.full((nodes, degree), -1, dtype=np.int64)
    nbr[:, :k] = np.asarray(idx)[:, 1:]  # column 0 is the node itself
    free = np.flatnonzero(~inside)
    goal = int(free[rng.integers(len(free))]) if len(free) else 0
    return pos, inside.astype(np.uint8), nbr, goal


def geometric_graphs(
    num: int,
    nodes: int = 100,
    degree: int = 8,
    obstacles: int = 4,
    obstacle_radius: float = 1.2,
    seed: int = 0,
    min_reachable: float = 0.5,
) -> GraphSet:
    """``num`` labelled random geometric graphs, deterministic in ``seed``.

    See :class:`~mlcore_diffplan_vins.graphs.config.GeometricGraphsConfig` for the parameters.

    Graphs where fewer than ``min_reachable`` of the free nodes reach the goal (or with fewer than
    two free nodes) are rejected and redrawn.
    """
    if nodes < 3:
        raise ValueError(f"nodes={nodes} is too small (at least 3)")
    rng = np.random.default_rng(seed)
    kept: list[GraphSet] = []
    count = 0
    for _ in range(1000):
        if count >= num:
            break
        batch = max(8, int((num - count) * 1.2))
        drawn = [_one_geometric(rng, nodes, degree, obstacles, obstacle_radius) for _ in range(batch)]
        ptr = np.arange(batch + 1, dtype=np.int64) * nodes
        pos = np.concatenate([d[0] for d in drawn])
        obstacle = np.concatenate([d[1] for d in drawn])
        nbr = np.concatenate([d[2] for d in drawn])
        goals = np.array([d[3] for d in drawn], dtype=np.int64)
        dist, optimal = label_graphs(ptr, pos, obstacle, goals, nbr)
        free = (obstacle == 0).reshape(batch, nodes).sum(axis=1)
        reach = np.isfinite(dist).reshape(batch, nodes).sum(axis=1)
        good = (free >= 2) & (reach >= 2) & (reach >= min_reachable * free)
        keep = np.flatnonzero(good)[: num - count]
        full = GraphSet(ptr, pos, obstacle, goals, nbr, dist, optimal)
        kept.append(full.subset(keep))
        count += len(keep)
    if count < num:
        raise ValueError(f"could only generate {count} geometric graphs of {num} requested (too many obstacles?)")
    return GraphSet.concat(kept)
