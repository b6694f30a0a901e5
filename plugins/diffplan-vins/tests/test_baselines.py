"""The greedy baseline: perfect in an open room, fails behind a wall."""

from __future__ import annotations

import numpy as np

from mlcore_diffplan_vins.baselines import greedy_actions
from mlcore_diffplan_vins.mazes import MazeSet, goal_distances, optimal_action_sets
from mlcore_diffplan_vins.metrics import rollout_metrics


def maze(walls: np.ndarray, goal: tuple[int, int]) -> MazeSet:
    w, g = walls[None], np.array([goal])
    d = goal_distances(w, g)
    return MazeSet(w, g, d, optimal_action_sets(w, d), np.zeros(1))


def test_open_room_is_solved_optimally() -> None:
    walls = np.ones((9, 9), dtype=np.uint8)
    walls[1:-1, 1:-1] = 0
    m = maze(walls, (4, 4))
    r = rollout_metrics(m, greedy_actions(m.walls, m.goals))
    assert r["opt"] == 1.0


def test_dead_end_behind_a_wall_traps_it() -> None:
    walls = np.ones((7, 7), dtype=np.uint8)
    walls[1:-1, 1:-1] = 0
    walls[3, 1:5] = 1  # a wall between the goal's rows and the start's, open only at column 5
    m = maze(walls, (1, 2))
    actions = greedy_actions(m.walls, m.goals)
    assert actions[0, 4, 2] == 1 and actions[0, 4, 1] == 3  # W then E: a two-cell loop under the wall
    r = rollout_metrics(m, actions)
    assert np.isfinite(m.distances[0, 4, 2]) and not r.reached[0, 4, 2]
    assert r.reached[0, 2, 4]  # above the wall it walks straight to the goal
