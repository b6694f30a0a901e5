"""Graph construction and labels: checked against brute force on small graphs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcore_diffplan_vins.graphs.build import GraphSet, geometric_graphs, label_graphs, maze_graphs
from mlcore_diffplan_vins.mazes import generate_mazes


def brute_force_distances(graphs: GraphSet) -> np.ndarray:
    """Cost to the goal by Bellman-Ford relaxation over every move (no Dijkstra, no reversal trick)."""
    gnbr = graphs.global_nbr()
    free = graphs.obstacle == 0
    dist = np.full(len(graphs.pos), math.inf)
    dist[graphs.global_goals()] = 0.0
    for _ in range(len(graphs.pos)):
        changed = False
        for i in range(len(graphs.pos)):
            if not free[i]:
                continue
            for j in gnbr[i]:
                if j < 0 or not free[j]:
                    continue
                cand = float(np.linalg.norm(graphs.pos[j] - graphs.pos[i])) + dist[j]
                if cand < dist[i] - 1e-9:
                    dist[i], changed = cand, True
        if not changed:
            break
    return dist


def bfs_steps(graphs: GraphSet) -> np.ndarray:
    """Number of moves to the goal by breadth-first search over the *forward* moves (unit costs)."""
    gnbr = graphs.global_nbr()
    free = graphs.obstacle == 0
    goals = set(graphs.global_goals().tolist())
    steps = np.full(len(graphs.pos), math.inf)
    for start in np.flatnonzero(free):
        frontier, seen, depth = [start], {int(start)}, 0
        while frontier:
            if any(f in goals and graphs.graph_of[f] == graphs.graph_of[start] for f in frontier):
                steps[start] = depth
                break
            nxt = []
            for i in frontier:
                for j in gnbr[i]:
                    if j >= 0 and free[j] and int(j) not in seen:
                        seen.add(int(j))
                        nxt.append(int(j))
            frontier, depth = nxt, depth + 1
    return steps


def test_maze_graph_labels_match_bfs(maze_graphs_9: GraphSet) -> None:
    g = maze_graphs_9.subset(slice(0, 4))
    steps = bfs_steps(g)
    assert np.array_equal(np.isfinite(steps), np.isfinite(g.distances))
    assert np.allclose(steps[np.isfinite(steps)], g.distances[np.isfinite(steps)])
    gnbr = g.global_nbr()
    for i in np.flatnonzero(np.isfinite(steps) & (steps > 0)):
        expect = [s for s, j in enumerate(gnbr[i]) if j >= 0 and g.obstacle[j] == 0 and steps[j] == steps[i] - 1]
        assert np.flatnonzero(g.optimal[i]).tolist() == expect


def test_maze_graph_layout(maze_graphs_9: GraphSet) -> None:
    g = maze_graphs_9.subset([0])
    assert g.num_slots == 4 and len(g.pos) == 81
    # node 0 is the top-left cell at (column 0, y = 8); its N and W slots leave the map, S goes to row 1
    assert g.pos[0].tolist() == [0.0, 8.0]
    assert g.nbr[0].tolist() == [-1, -1, 9, 1]
    assert g.obstacle[0] == 1  # the border is wall


def test_general_labeller_agrees_with_the_grid_labels(maze_graphs_9: GraphSet) -> None:
    g = maze_graphs_9
    dist, optimal = label_graphs(g.node_ptr, g.pos, g.obstacle, g.goals, g.nbr)
    assert np.array_equal(np.isfinite(dist), np.isfinite(g.distances))
    assert np.allclose(dist[np.isfinite(dist)], g.distances[np.isfinite(dist)])
    assert np.array_equal(optimal, g.optimal)


def test_geometric_labels_match_brute_force(geo_graphs: GraphSet) -> None:
    g = geo_graphs.subset(slice(0, 4))
    expect = brute_force_distances(g)
    assert np.array_equal(np.isfinite(expect), np.isfinite(g.distances))
    fin = np.isfinite(expect)
    assert np.allclose(expect[fin], g.distances[fin], atol=1e-9)
    # every optimal slot leads one edge closer by exactly its length; every other free slot does not
    gnbr = g.global_nbr()
    for i in np.flatnonzero(fin & (expect > 0)):
        for s, j in enumerate(gnbr[i]):
            ok = j >= 0 and g.obstacle[j] == 0 and np.isfinite(expect[j])
            via = float(np.linalg.norm(g.pos[j] - g.pos[i])) + expect[j] if ok else math.inf
            assert bool(g.optimal[i, s]) == (abs(via - expect[i]) < 1e-4)


def test_geometric_graphs_are_directed_knn_with_obstacles(geo_graphs: GraphSet) -> None:
    g = geo_graphs.subset([0])
    assert (g.nbr >= 0).all() and g.num_slots == 5
    d = np.linalg.norm(g.pos[:, None] - g.pos[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert np.array_equal(np.sort(g.nbr, axis=1), np.sort(np.argsort(d, axis=1)[:, :5], axis=1))
    assert g.obstacle.sum() > 0 and g.obstacle[g.goals[0]] == 0
    reach = np.isfinite(g.distances).sum() / (g.obstacle == 0).sum()
    assert reach >= 0.5


def test_same_seed_same_graphs_other_seed_others() -> None:
    a = geometric_graphs(4, nodes=20, degree=4, seed=3)
    b = geometric_graphs(4, nodes=20, degree=4, seed=3)
    c = geometric_graphs(4, nodes=20, degree=4, seed=4)
    for name in ("pos", "nbr", "goals", "distances", "optimal", "obstacle"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.pos, c.pos)


def test_directions_point_at_the_first_optimal_neighbour(maze_graphs_9: GraphSet) -> None:
    g = maze_graphs_9.subset([0])
    d = g.directions()
    offsets = {0: (0, 1), 1: (-1, 0), 2: (0, -1), 3: (1, 0)}  # N, W, S, E in (x, y) with north = +y
    for i in np.flatnonzero(g.optimal.any(axis=1)):
        assert tuple(d[i]) == offsets[int(g.optimal[i].argmax())]
    assert (d[~g.optimal.any(axis=1)] == 0).all()
    assert np.allclose(np.linalg.norm(d[g.optimal.any(axis=1)], axis=1), 1.0)


def test_subset_and_concat_roundtrip(geo_graphs: GraphSet) -> None:
    parts = [geo_graphs.subset([0, 1]), geo_graphs.subset([2])]
    joined = GraphSet.concat(parts)
    again = geo_graphs.subset([0, 1, 2])
    for name in ("node_ptr", "pos", "nbr", "goals", "optimal"):
        assert np.array_equal(getattr(joined, name), getattr(again, name))


def test_too_many_obstacles_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="could only generate"):
        geometric_graphs(3, nodes=10, degree=3, obstacles=30, obstacle_radius=5.0, seed=0)


def test_maze_graphs_of_8_actions_cost_sqrt2() -> None:
    g = maze_graphs(generate_mazes(3, size=7, num_actions=8, seed=1))
    dist, optimal = label_graphs(g.node_ptr, g.pos, g.obstacle, g.goals, g.nbr)
    fin = np.isfinite(dist)
    assert np.allclose(dist[fin], g.distances[fin]) and np.array_equal(optimal, g.optimal)
