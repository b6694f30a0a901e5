"""Rollout metrics against hand computations on tiny mazes."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore_diffplan_vins.mazes import MazeSet, goal_distances, optimal_action_sets
from mlcore_diffplan_vins.metrics import rollout_metrics, rollout_paths

N, W, S, E = 0, 1, 2, 3

# 5x5, free cells form a 3x3 room minus its centre:
#   row 1: (1,1) (1,2) (1,3)
#   row 2: (2,1)  ###  (2,3)
#   row 3: (3,1) (3,2) (3,3)     goal at (1,1)
WALLS = np.ones((5, 5), dtype=np.uint8)
WALLS[1:4, 1:4] = 0
WALLS[2, 2] = 1
GOAL = (1, 1)


def maze_set(walls: np.ndarray = WALLS, goal: tuple[int, int] = GOAL, actions: int = 4) -> MazeSet:
    w = walls[None]
    g = np.array([goal])
    d = goal_distances(w, g, actions)
    return MazeSet(w, g, d, optimal_action_sets(w, d, actions), np.zeros(1))


def test_hand_distances() -> None:
    m = maze_set()
    expected = {(1, 2): 1, (1, 3): 2, (2, 1): 1, (2, 3): 3, (3, 1): 2, (3, 2): 3, (3, 3): 4}
    for cell, d in expected.items():
        assert m.distances[0][cell] == d
    # (3,3) can go N or W (both 3 steps away); (1,3) only W
    assert set(np.flatnonzero(m.optimal_actions[0, :, 3, 3])) == {N, W}
    assert set(np.flatnonzero(m.optimal_actions[0, :, 1, 3])) == {W}


def policy(assign: dict[tuple[int, int], int]) -> np.ndarray:
    actions = np.full((1, 5, 5), N)
    for cell, a in assign.items():
        actions[0][cell] = a
    return actions


def test_optimal_policy_scores_one() -> None:
    p = policy({(1, 2): W, (1, 3): W, (2, 1): N, (2, 3): N, (3, 1): N, (3, 2): W, (3, 3): W})
    r = rollout_metrics(maze_set(), p)
    assert (r["opt"], r["succ"], r["action_accuracy"], r["num_starts"]) == (1.0, 1.0, 1.0, 7.0)


def test_detour_counts_as_success_not_optimal() -> None:
    # (3,3) goes W (optimal), (3,2) goes E: back to (3,3) -> a loop: both fail.
    # (2,3) goes S (suboptimal, 3 -> 4) then (3,3) W, (3,2) ... make (3,2) W so (2,3) detours.
    p = policy({(1, 2): W, (1, 3): W, (2, 1): N, (2, 3): S, (3, 1): N, (3, 2): W, (3, 3): W})
    r = rollout_metrics(maze_set(), p)
    # (2,3): S,W,W,N,N = 5 steps > 3 -> succeeds, not optimal; the other 6 are optimal.
    assert r["succ"] == 1.0
    assert r["opt"] == pytest.approx(6 / 7)
    assert r["action_accuracy"] == pytest.approx(6 / 7)
    assert not r.optimal[0, 2, 3] and r.reached[0, 2, 3]


def test_loops_and_wall_bumps_fail() -> None:
    # (3,2) E and (3,3) W loop; (1,3) bumps into the border wall going N.
    p = policy({(1, 2): W, (1, 3): N, (2, 1): N, (2, 3): N, (3, 1): N, (3, 2): E, (3, 3): W})
    r = rollout_metrics(maze_set(), p)
    # fail: (1,3) bump, (2,3) -> (1,3) -> bump, (3,2)/(3,3) loop; succeed: (1,2), (2,1), (3,1)
    assert r["succ"] == pytest.approx(3 / 7)
    assert r["opt"] == pytest.approx(3 / 7)
    # first actions: (1,3) N is not optimal; (3,2) E is not; (3,3) W is; (2,3) N is
    assert r["action_accuracy"] == pytest.approx(5 / 7)


def test_unreachable_cells_are_not_start_cells() -> None:
    walls = WALLS.copy()
    walls[1, 2] = walls[2, 1] = 1  # cut the goal off from everything
    r = rollout_metrics(maze_set(walls), policy({}))
    assert r["num_starts"] == 0.0


def test_rollout_path_follows_the_policy() -> None:
    p = policy({(1, 2): W, (1, 3): W, (2, 3): N, (3, 3): N})
    assert rollout_paths(WALLS, p[0], (3, 3), GOAL, 4) == [(3, 3), (2, 3), (1, 3), (1, 2), (1, 1)]


def test_diagonal_costs_in_eight_action_rollouts() -> None:
    walls = np.ones((5, 5), dtype=np.uint8)
    walls[1:4, 1:4] = 0
    m = maze_set(walls, (1, 1), 8)
    actions = np.zeros((1, 5, 5), dtype=np.int64)
    actions[0, 3, 3] = 1  # NW: (2,2)
    actions[0, 2, 2] = 1  # NW: goal -> cost 2 sqrt 2, optimal
    actions[0, 3, 2] = 2  # W to (3,1), then N, N: cost 3 > 1 + sqrt 2: succeeds, not optimal
    r = rollout_metrics(m, actions)
    assert r.optimal[0, 3, 3] and r.optimal[0, 2, 2]
    assert r.reached[0, 3, 2] and not r.optimal[0, 3, 2]


def test_the_labels_own_policy_is_perfect_on_long_paths() -> None:
    from mlcore_diffplan_vins.mazes import generate_mazes

    m = generate_mazes(40, 15, 4, seed=11, min_reachable=0.9)
    assert np.nanmax(np.where(np.isfinite(m.distances), m.distances, np.nan)) > 30  # paths much longer than M
    r = rollout_metrics(m, m.optimal_actions.argmax(axis=1))
    assert (r["opt"], r["succ"], r["action_accuracy"]) == (1.0, 1.0, 1.0)
