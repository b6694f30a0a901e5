"""The maze generator and the exact labels, checked against brute force."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from mlcore_diffplan_vins.actions import ACTION_OFFSETS
from mlcore_diffplan_vins.mazes import (
    action_costs,
    carve_mazes,
    generate_mazes,
    goal_distances,
    open_walls,
    optimal_action_sets,
)


def bfs(walls: np.ndarray, goal: tuple[int, int]) -> np.ndarray:
    """Plain-Python breadth-first search (4 neighbours) as the reference."""
    dist = np.full(walls.shape, np.inf)
    dist[goal] = 0
    todo = deque([goal])
    while todo:
        r, c = todo.popleft()
        for dr, dc in ACTION_OFFSETS[4]:
            nr, nc = r + dr, c + dc
            if 0 <= nr < walls.shape[0] and 0 <= nc < walls.shape[1] and walls[nr, nc] == 0 and dist[nr, nc] == np.inf:
                dist[nr, nc] = dist[r, c] + 1
                todo.append((nr, nc))
    return dist


def test_dfs_carves_a_spanning_tree_of_the_cells() -> None:
    walls = carve_mazes(20, 15, np.random.default_rng(0))
    c = 7
    for w in walls:
        free = int((w == 0).sum())
        assert free == c * c + (c * c - 1)  # every cell, plus one passage per tree edge
        assert (w[0] == 1).all() and (w[-1] == 1).all() and (w[:, 0] == 1).all() and (w[:, -1] == 1).all()
        dist = bfs(w, (1, 1))
        assert np.isfinite(dist[w == 0]).all()  # connected


def test_mazes_differ_and_even_sizes_work() -> None:
    walls = carve_mazes(50, 28, np.random.default_rng(1))
    assert len({w.tobytes() for w in walls}) == 50
    assert walls.shape == (50, 28, 28)


def test_open_walls_uses_a_per_maze_probability() -> None:
    rng = np.random.default_rng(2)
    walls = carve_mazes(400, 15, rng)
    opened, d = open_walls(walls, rng)
    inner_before = walls[:, 1:-1, 1:-1].sum(axis=(1, 2))
    inner_after = opened[:, 1:-1, 1:-1].sum(axis=(1, 2))
    share = 1 - inner_after / inner_before
    assert np.corrcoef(share, d)[0, 1] > 0.95  # the opened share follows each maze's own d
    assert (opened[:, 0] == 1).all() and (opened[:, :, -1] == 1).all()  # the border stays closed
    assert (opened <= walls).all()  # opening never adds a wall


def test_dijkstra_distances_match_brute_force_bfs() -> None:
    m = generate_mazes(30, 15, 4, seed=3)
    for i in range(len(m)):
        np.testing.assert_array_equal(m.distances[i], bfs(m.walls[i], tuple(m.goals[i])))


def test_eight_action_distances_use_diagonal_cost() -> None:
    walls = np.ones((1, 5, 5), dtype=np.uint8)
    walls[0, 1:4, 1:4] = 0
    dist = goal_distances(walls, np.array([[1, 1]]), 8)
    assert dist[0, 3, 3] == pytest.approx(2 * np.sqrt(2))
    assert dist[0, 3, 1] == pytest.approx(2.0)
    assert dist[0, 2, 3] == pytest.approx(1 + np.sqrt(2))


def test_optimal_sets_are_exactly_the_distance_decreasing_moves() -> None:
    for actions in (4, 8):
        m = generate_mazes(20, 15, actions, seed=4)
        costs = action_costs(actions)
        for i in range(len(m)):
            d = m.distances[i]
            for r in range(15):
                for c in range(15):
                    for a, (dr, dc) in enumerate(ACTION_OFFSETS[actions]):
                        there = d[r + dr, c + dc] if 0 <= r + dr < 15 and 0 <= c + dc < 15 else np.inf
                        expected = np.isfinite(d[r, c]) and d[r, c] > 0 and abs(costs[a] + there - d[r, c]) < 1e-4
                        assert bool(m.optimal_actions[i, a, r, c]) == expected, (i, a, r, c)


def test_any_walk_along_optimal_actions_reaches_the_goal_in_exactly_the_distance() -> None:
    m = generate_mazes(10, 15, 4, seed=5)
    rng = np.random.default_rng(0)
    for i in range(len(m)):
        starts = np.argwhere(np.isfinite(m.distances[i]) & (m.distances[i] > 0))
        for r0, c0 in starts[:: max(1, len(starts) // 15)]:
            r, c, steps = int(r0), int(c0), 0
            while (r, c) != tuple(m.goals[i]) and steps <= 225:
                dr, dc = ACTION_OFFSETS[4][rng.choice(np.flatnonzero(m.optimal_actions[i, :, r, c]))]
                r, c, steps = r + dr, c + dc, steps + 1
            assert (r, c) == tuple(m.goals[i])
            assert steps == m.distances[i, r0, c0]


def test_generation_is_deterministic_distinct_and_reachable() -> None:
    a = generate_mazes(300, 15, 4, seed=7, min_reachable=0.9)
    b = generate_mazes(300, 15, 4, seed=7, min_reachable=0.9)
    np.testing.assert_array_equal(a.walls, b.walls)
    np.testing.assert_array_equal(a.goals, b.goals)
    keys = {w.tobytes() + g.tobytes() for w, g in zip(a.walls, a.goals)}
    assert len(keys) == 300
    reach = np.isfinite(a.distances).sum(axis=(1, 2)) / (a.walls == 0).sum(axis=(1, 2))
    assert (reach >= 0.9).all()
    c = generate_mazes(300, 15, 4, seed=8)
    assert not np.array_equal(a.walls, c.walls)


def test_goal_is_free_and_uniform_over_free_cells() -> None:
    m = generate_mazes(3000, 7, 4, seed=9)
    rows = np.arange(len(m))
    assert (m.walls[rows, m.goals[:, 0], m.goals[:, 1]] == 0).all()
    free = (m.walls == 0).astype(float)
    expected = (free / free.sum(axis=(1, 2), keepdims=True)).sum(axis=0)  # E[goal count] per cell if uniform
    observed = np.zeros((7, 7))
    np.add.at(observed, (m.goals[:, 0], m.goals[:, 1]), 1)
    inner = expected > 0
    assert np.abs(observed[inner] - expected[inner]).max() < 4 * np.sqrt(expected[inner].max())
    assert (observed[~inner] == 0).all()


def test_sizes_28_and_50_work() -> None:
    for size in (28, 50):
        m = generate_mazes(5, size, 4, seed=1)
        assert m.walls.shape == (5, size, size) and m.optimal_actions.shape == (5, 4, size, size)
        assert m.optimal_actions.any(axis=1).sum() > 0


def test_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError, match="num_actions"):
        generate_mazes(3, 15, 6)
    with pytest.raises(ValueError, match="too small"):
        carve_mazes(1, 3, np.random.default_rng(0))
    assert optimal_action_sets(np.ones((1, 5, 5), np.uint8), np.full((1, 5, 5), np.inf)).sum() == 0
